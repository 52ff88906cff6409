#include "read_counter.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace lockstep::runtime {
namespace {

// Reads rchar of the calling thread. Reading the proc file is itself a read:
// the kernel formats the file (with the value before this read) and then adds
// the length it returned to rchar. `own_bytes` reports that length so the
// caller can take it out of the next difference.
bool SampleRchar(uint64_t* rchar, uint64_t* own_bytes) {
  int fd = open("/proc/thread-self/io", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[512];
  ssize_t n = read(fd, buffer, sizeof(buffer) - 1);
  close(fd);
  if (n <= 0) return false;
  buffer[n] = '\0';
  const char* line = std::strstr(buffer, "rchar:");
  if (line == nullptr) return false;
  *rchar = std::strtoull(line + 6, nullptr, 10);
  *own_bytes = static_cast<uint64_t>(n);
  return true;
}

}  // namespace

ReadCounter::ReadCounter(uint64_t* total) : total_(total) {
  uint64_t own = 0;
  ok_ = SampleRchar(&start_, &own);
  start_ += own;  // this sample's own read is not part of the measured region
}

ReadCounter::~ReadCounter() {
  if (!ok_) return;
  uint64_t end = 0, own = 0;
  if (!SampleRchar(&end, &own)) return;
  if (end >= start_) *total_ += end - start_;
}

bool ReadCounter::available() {
  uint64_t rchar = 0, own = 0;
  return SampleRchar(&rchar, &own);
}

}  // namespace lockstep::runtime
