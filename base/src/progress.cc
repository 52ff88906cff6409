#include "lockstep/base/progress.h"

#include <fmt/format.h>

#include <cstdio>
#include <utility>

#include "lockstep/base/log.h"

namespace lockstep {

std::string FormatDuration(double s) {
  if (s < 0 || s != s) return "?";
  const int64_t total = static_cast<int64_t>(s + 0.5);
  if (total < 60) return fmt::format("{}s", total);
  if (total < 3600) return fmt::format("{}m{:02}s", total / 60, total % 60);
  return fmt::format("{}h{:02}m", total / 3600, total % 3600 / 60);
}

ProgressLine::ProgressLine(std::string component, bool enabled, bool terminal,
                           double plain_interval_s)
    : component_(std::move(component)),
      enabled_(enabled),
      terminal_(terminal),
      interval_s_(plain_interval_s),
      start_(Clock::now()),
      last_write_(start_) {}

double ProgressLine::ElapsedSeconds() const {
  return std::chrono::duration<double>(Clock::now() - start_).count();
}

bool ProgressLine::Due() const {
  if (!enabled_) return false;
  const double since = std::chrono::duration<double>(Clock::now() - last_write_).count();
  return since >= (terminal_ ? 0.2 : interval_s_);
}

void ProgressLine::Write(const std::string& text, bool final) {
  if (!enabled_) return;
  if (terminal_) {
    const std::string line = fmt::format("\r\033[K{}{}", text, final ? "\n" : "");
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  } else {
    LOCKSTEP_LOG_INFO(component_, "{}", text);
  }
  last_write_ = Clock::now();
}

ProgressReporter::ProgressReporter(int64_t total_requests, bool enabled, bool terminal,
                                   double plain_interval_s)
    : total_(total_requests), line_("run", enabled && IsRankZero(), terminal, plain_interval_s) {}

std::string ProgressReporter::Format(int64_t done, int64_t total, int64_t generated_tokens,
                                     double elapsed_s) {
  const double rate = elapsed_s > 0 ? generated_tokens / elapsed_s : 0.0;
  // Time left, assuming the remaining requests take as long as the done ones.
  const double eta_s =
      done >= total ? 0.0
      : done > 0    ? elapsed_s / static_cast<double>(done) * static_cast<double>(total - done)
                    : -1.0;
  return fmt::format("requests {}/{} done, {} tokens, {:.1f} tokens/s, elapsed {}, ETA {}", done,
                     total, generated_tokens, rate, FormatDuration(elapsed_s),
                     FormatDuration(eta_s));
}

void ProgressReporter::Update(int64_t done, int64_t generated_tokens) {
  if (!line_.Due()) return;
  line_.Write(Format(done, total_, generated_tokens, line_.ElapsedSeconds()), false);
}

void ProgressReporter::Finish(int64_t done, int64_t generated_tokens) {
  line_.Write(Format(done, total_, generated_tokens, line_.ElapsedSeconds()), true);
}

}  // namespace lockstep
