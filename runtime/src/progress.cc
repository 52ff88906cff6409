#include "lockstep/runtime/progress.h"

#include <fmt/format.h>

#include <cstdio>

#include "lockstep/base/log.h"

namespace lockstep::runtime {
namespace {

std::string Duration(double s) {
  if (s < 0 || s != s) return "?";
  const int64_t total = static_cast<int64_t>(s + 0.5);
  if (total < 60) return fmt::format("{}s", total);
  if (total < 3600) return fmt::format("{}m{:02}s", total / 60, total % 60);
  return fmt::format("{}h{:02}m", total / 3600, total % 3600 / 60);
}

}  // namespace

ProgressReporter::ProgressReporter(int64_t total_requests, bool enabled, bool terminal,
                                   double plain_interval_s)
    : total_(total_requests),
      enabled_(enabled && IsRankZero()),
      terminal_(terminal),
      interval_s_(plain_interval_s),
      start_(Clock::now()),
      last_print_(start_) {}

std::string ProgressReporter::Format(int64_t done, int64_t total, int64_t generated_tokens,
                                     double elapsed_s) {
  const double rate = elapsed_s > 0 ? generated_tokens / elapsed_s : 0.0;
  // Time left, assuming the remaining requests take as long as the done ones.
  const double eta_s =
      done >= total ? 0.0
      : done > 0    ? elapsed_s / static_cast<double>(done) * static_cast<double>(total - done)
                    : -1.0;
  const std::string eta = Duration(eta_s);
  return fmt::format("requests {}/{} done, {} tokens, {:.1f} tokens/s, elapsed {}, ETA {}", done,
                     total, generated_tokens, rate, Duration(elapsed_s), eta);
}

void ProgressReporter::Print(int64_t done, int64_t generated_tokens, bool final) {
  const Clock::time_point now = Clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  std::string text = Format(done, total_, generated_tokens, elapsed);
  if (terminal_) {
    std::string line = fmt::format("\r\033[K{}{}", text, final ? "\n" : "");
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  } else {
    LOCKSTEP_LOG_INFO("run", "{}", text);
  }
  last_print_ = now;
}

void ProgressReporter::Update(int64_t done, int64_t generated_tokens) {
  if (!enabled_) return;
  const double since = std::chrono::duration<double>(Clock::now() - last_print_).count();
  if (since >= (terminal_ ? 0.2 : interval_s_)) Print(done, generated_tokens, false);
}

void ProgressReporter::Finish(int64_t done, int64_t generated_tokens) {
  if (!enabled_) return;
  Print(done, generated_tokens, true);
}

}  // namespace lockstep::runtime
