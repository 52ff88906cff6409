// llama2.c checkpoints: the header and the tensor layout it implies.
#include "checkpoint.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lockstep;
  static fuzz::MemoryFile memory;
  (void)runtime::OpenLlama2cCheckpoint(memory.Set(data, size));
  return 0;
}
