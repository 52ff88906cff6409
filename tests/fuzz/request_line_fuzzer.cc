// The request file parser: every line of any input becomes a request or an
// error record, and every error record is valid JSON (one line).
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "fuzz_input.h"
#include "lockstep/job/request.h"
#include "lockstep/job/result_writer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lockstep;
  partitioner::ModelConfig config;
  config.vocab_size = 1000;
  config.max_position_embeddings = 4096;
  const runtime::RequestFile file =
      runtime::ParseRequestText(fuzz::AsText(data, size), "fuzz.jsonl", &config, nullptr);
  for (const runtime::RequestError& e : file.errors) {
    const std::string record = runtime::FormatErrorLine(e);
    if (record.find('\n') != std::string::npos) std::abort();
    if (!nlohmann::json::accept(record)) std::abort();
  }
  for (const runtime::Request& r : file.requests) {
    if (r.prompt_tokens.empty() && !r.prompt_text) std::abort();
  }
  return 0;
}
