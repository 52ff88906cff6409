// GGUF files: the container parser, every metadata value and tensor view.
#include <vector>

#include "fuzz_input.h"
#include "lockstep/formats/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lockstep;
  lockstep::Result<runtime::GgufFile> file =
      runtime::GgufFile::Parse(std::vector<uint8_t>(data, data + size), "fuzz.gguf");
  if (!file.ok()) return 0;
  for (const runtime::GgufTensorInfo& t : file->tensors()) {
    std::span<const uint8_t> bytes = file->TensorData(t);
    if (bytes.size() != t.bytes) std::abort();
  }
  for (const char* key : {"general.architecture", "llama.block_count", "llama.rope.freq_base",
                          "tokenizer.ggml.tokens", "tokenizer.ggml.scores"}) {
    (void)file->GetString(key);
    (void)file->GetInt(key);
    (void)file->GetFloat(key);
    (void)file->GetStringArray(key);
    (void)file->GetIntArray(key);
    (void)file->GetFloatArray(key);
  }
  return 0;
}
