// Progress of `lockstep convert` on stderr: tensors and bytes done, speed
// and time left. On a terminal a bar is redrawn in place (at most 5 times a
// second); otherwise a plain log line ("convert" component) is written every
// `plain_interval_s` seconds and at the end. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "lockstep/base/progress.h"

namespace lockstep::runtime {

class ConvertProgress {
 public:
  ConvertProgress(int64_t total_tensors, int64_t total_bytes, bool enabled, bool terminal,
                  double plain_interval_s = 5.0);

  void Update(int64_t tensors_done, int64_t bytes_done);
  void Finish(int64_t tensors_done, int64_t bytes_done);

  // The text of a report (no newline), for tests: "[#####     ] 12/39
  // tensors, 1.2/3.4 GB, 85 MB/s, ETA 10s".
  static std::string Format(int64_t tensors_done, int64_t total_tensors, int64_t bytes_done,
                            int64_t total_bytes, double elapsed_s, bool bar);

 private:
  void Print(int64_t tensors_done, int64_t bytes_done, bool final);

  int64_t total_tensors_;
  int64_t total_bytes_;
  ProgressLine line_;
};

// VmHWM of /proc/self/status in bytes (the peak resident memory of this
// process so far), or 0 where that is not available: what the memory bound
// of a conversion or quantization is measured by.
int64_t PeakRssBytes();

}  // namespace lockstep::runtime
