#include "lockstep/formats/input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace lockstep::runtime {

InputFile::~InputFile() {
  if (fd_ >= 0) close(fd_);
}

InputFile::InputFile(InputFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      size_(std::exchange(other.size_, 0)),
      path_(std::move(other.path_)) {}

InputFile& InputFile::operator=(InputFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = std::exchange(other.size_, 0);
    path_ = std::move(other.path_);
  }
  return *this;
}

Result<InputFile> InputFile::Open(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    if (error == ENOENT) return NotFound("{}: file not found", path);
    return IoError("{}: cannot open: {}", path, std::strerror(error));
  }
  InputFile file;
  file.fd_ = fd;
  file.path_ = path;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return IoError("{}: cannot stat: {}", path, std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) return InvalidArgument("{}: is a directory, expected a file", path);
  if (!S_ISREG(st.st_mode)) return InvalidArgument("{}: not a regular file", path);
  file.size_ = static_cast<uint64_t>(st.st_size);
  return file;
}

Status InputFile::ReadAt(uint64_t offset, uint64_t count, void* dst, std::string_view what) const {
  if (!Contains(offset, count)) {
    return DataLoss("{}: truncated: {} needs bytes [{}, {}) but the file has {} bytes", path_, what,
                    offset, offset + count, size_);
  }
  char* out = static_cast<char*>(dst);
  while (count > 0) {
    const ssize_t n = pread(fd_, out, count, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("{}: read failed ({}): {}", path_, what, std::strerror(errno));
    }
    if (n == 0) {  // the file shrank since it was opened
      return DataLoss("{}: truncated while reading {} (file changed during conversion?)", path_,
                      what);
    }
    out += n;
    offset += static_cast<uint64_t>(n);
    count -= static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

}  // namespace lockstep::runtime
