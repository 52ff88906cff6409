// The HDF5 model file, opened from a file image: every open-time check, then
// a read of every tensor (chunk checksums, digests, finite values).
#include <cstring>
#include <vector>

#include "fuzz_input.h"
#include "lockstep/model/model_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lockstep::runtime;
  std::vector<std::byte> image(size);
  if (size > 0) std::memcpy(image.data(), data, size);
  lockstep::Result<ModelFile> file = ModelFile::OpenImage("fuzz.h5", std::move(image));
  if (!file.ok()) return 0;
  std::vector<uint8_t> buffer;
  for (const TensorInfo& t : file->tensors()) {
    if (t.bytes() > (int64_t{64} << 20)) continue;  // sizes are checked against the config
    buffer.resize(static_cast<size_t>(t.bytes()));
    (void)file->ReadAll(t.path, buffer.data());
  }
  if (file->has_tokenizer()) (void)file->ReadTokenizer();
  return 0;
}
