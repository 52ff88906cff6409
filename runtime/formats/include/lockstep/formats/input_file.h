// A read-only file read with pread at explicit offsets: the byte source of
// the checkpoint readers (safetensors, GGUF, llama2.c).
//
// Every read is bounds-checked against the size the file had when it was
// opened, so a header that lies about offsets or sizes gives a kDataLoss
// Status naming the file and what was being read -- never a read past the
// end. Data are read into caller buffers (no mmap): the resident memory of a
// conversion is the caller's buffers, whatever the size of the checkpoint.
//
// Thread safety: ReadAt may be called from several threads at once (pread
// has no shared file position). Move-only; the descriptor is closed by the
// destructor.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lockstep/base/status.h"

namespace lockstep::runtime {

class InputFile {
 public:
  InputFile() = default;
  ~InputFile();
  InputFile(InputFile&& other) noexcept;
  InputFile& operator=(InputFile&& other) noexcept;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // Opens a regular file. kNotFound if it does not exist, kInvalidArgument if
  // it is a directory or not a regular file, kIo for other failures.
  static Result<InputFile> Open(const std::string& path);

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }

  // Reads bytes [offset, offset + count) into `dst`. If that range is not
  // inside the file: kDataLoss "<path>: truncated: <what> needs bytes [a, b)
  // but the file has <size> bytes". `what` names the thing being read.
  Status ReadAt(uint64_t offset, uint64_t count, void* dst, std::string_view what) const;

  // Whether [offset, offset + count) lies inside the file (no overflow).
  bool Contains(uint64_t offset, uint64_t count) const {
    return offset <= size_ && count <= size_ - offset;
  }

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string path_;
};

}  // namespace lockstep::runtime
