// tokenizer.json (Hugging Face): loading, then encoding and decoding.
#include "fuzz_input.h"
#include "lockstep/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lockstep::runtime;
  TokenizerData t;
  t.kind = TokenizerKind::kHuggingFace;
  t.data.assign(reinterpret_cast<const char*>(data), size);
  t.source = "fuzz/tokenizer.json";
  lockstep::Result<std::unique_ptr<Tokenizer>> made = CreateTokenizer(t);
  if (!made.ok()) return 0;
  lockstep::Result<std::vector<int32_t>> ids = (*made)->Encode("Hello wörld <s> 12", true);
  if (ids.ok()) {
    for (int32_t id : *ids) (void)(*made)->DecodeToken(id);
  }
  return 0;
}
