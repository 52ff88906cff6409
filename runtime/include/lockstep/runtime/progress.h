// Progress of a batch job on stderr, for the person watching it: requests
// done, generation speed and the estimated time left.
//
// On a terminal one status line is redrawn in place (at most 5 times a
// second); otherwise (a log file, CI) a plain log line is written every
// `plain_interval_s` seconds, so logs stay readable. Only rank 0 reports
// (IsRankZero()). Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lockstep::runtime {

class ProgressReporter {
 public:
  // `enabled` false: silent. `terminal`: whether stderr is a terminal.
  ProgressReporter(int64_t total_requests, bool enabled, bool terminal,
                   double plain_interval_s = 10.0);

  // Reports `done` finished requests (results and error records) and the
  // `generated_tokens` so far, if a report is due.
  void Update(int64_t done, int64_t generated_tokens);
  // The final line, always written when enabled.
  void Finish(int64_t done, int64_t generated_tokens);

  // The text of a report (no newline), for tests.
  static std::string Format(int64_t done, int64_t total, int64_t generated_tokens,
                            double elapsed_s);

 private:
  using Clock = std::chrono::steady_clock;
  void Print(int64_t done, int64_t generated_tokens, bool final);

  int64_t total_;
  bool enabled_;
  bool terminal_;
  double interval_s_;
  Clock::time_point start_;
  Clock::time_point last_print_;
};

}  // namespace lockstep::runtime
