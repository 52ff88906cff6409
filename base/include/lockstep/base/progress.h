// Progress lines on stderr, for the person watching a long job.
//
// On a terminal one status line is redrawn in place (at most 5 times a
// second); otherwise (a log file, CI) a plain log line is written every
// `plain_interval_s` seconds, so logs stay readable. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lockstep {

// "42s", "3m05s", "1h02m"; "?" for a negative or NaN time.
std::string FormatDuration(double seconds);

// The mechanism shared by every progress report: when a line is due and how
// it is written (redrawn in place on a terminal, a log line of `component`
// otherwise).
class ProgressLine {
 public:
  ProgressLine(std::string component, bool enabled, bool terminal, double plain_interval_s);

  bool enabled() const { return enabled_; }
  bool terminal() const { return terminal_; }
  // Seconds since construction.
  double ElapsedSeconds() const;
  // Whether an update should be written now (enabled and the interval passed).
  bool Due() const;
  // Writes `text` (no newline); `final` ends the line on a terminal.
  void Write(const std::string& text, bool final);

 private:
  using Clock = std::chrono::steady_clock;
  std::string component_;
  bool enabled_;
  bool terminal_;
  double interval_s_;
  Clock::time_point start_;
  Clock::time_point last_write_;
};

// Progress of a batch job: requests done, generation speed and the estimated
// time left. Only rank 0 reports (IsRankZero()).
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
  int64_t total_;
  ProgressLine line_;
};

}  // namespace lockstep
