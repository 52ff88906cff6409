// safetensors headers (the 8-byte length and the JSON that follows).
#include "fuzz_input.h"
#include "lockstep/formats/input_file.h"
#include "lockstep/formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lockstep;
  static fuzz::MemoryFile memory;
  lockstep::Result<runtime::InputFile> file = runtime::InputFile::Open(memory.Set(data, size));
  if (!file.ok()) std::abort();
  (void)runtime::ReadSafetensorsHeader(*file);
  return 0;
}
