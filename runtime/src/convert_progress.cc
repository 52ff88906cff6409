#include "convert_progress.h"

#include <fmt/format.h>

#include <cstdio>

#include "lockstep/base/log.h"

namespace lockstep::runtime {
namespace {

std::string Bytes(double b) {
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.1f} MB", b / 1e6);
  return fmt::format("{:.0f} kB", b / 1e3);
}

std::string Duration(double s) {
  if (s < 0 || s != s) return "?";
  const int64_t total = static_cast<int64_t>(s + 0.5);
  if (total < 60) return fmt::format("{}s", total);
  if (total < 3600) return fmt::format("{}m{:02}s", total / 60, total % 60);
  return fmt::format("{}h{:02}m", total / 3600, total % 3600 / 60);
}

}  // namespace

ConvertProgress::ConvertProgress(int64_t total_tensors, int64_t total_bytes, bool enabled,
                                 bool terminal, double plain_interval_s)
    : total_tensors_(total_tensors),
      total_bytes_(total_bytes),
      enabled_(enabled),
      terminal_(terminal),
      interval_s_(plain_interval_s),
      start_(Clock::now()),
      last_print_(start_) {}

std::string ConvertProgress::Format(int64_t tensors_done, int64_t total_tensors, int64_t bytes_done,
                                    int64_t total_bytes, double elapsed_s, bool bar) {
  const double fraction =
      total_bytes > 0 ? static_cast<double>(bytes_done) / static_cast<double>(total_bytes) : 1.0;
  std::string text;
  if (bar) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth + 1e-9);
    text = fmt::format("[{}{}] ", std::string(static_cast<size_t>(filled), '#'),
                       std::string(static_cast<size_t>(kWidth - filled), ' '));
  }
  const double rate = elapsed_s > 0 ? static_cast<double>(bytes_done) / elapsed_s : 0.0;
  const double eta = bytes_done >= total_bytes ? 0.0
                     : rate > 0 ? static_cast<double>(total_bytes - bytes_done) / rate
                                : -1.0;
  text += fmt::format("{}/{} tensors, {}/{} ({:.0f}%), {}/s, elapsed {}, ETA {}", tensors_done,
                      total_tensors, Bytes(static_cast<double>(bytes_done)),
                      Bytes(static_cast<double>(total_bytes)), fraction * 100.0, Bytes(rate),
                      Duration(elapsed_s), Duration(eta));
  return text;
}

void ConvertProgress::Print(int64_t tensors_done, int64_t bytes_done, bool final) {
  const Clock::time_point now = Clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const std::string text =
      Format(tensors_done, total_tensors_, bytes_done, total_bytes_, elapsed, terminal_);
  if (terminal_) {
    const std::string line = fmt::format("\r\033[K{}{}", text, final ? "\n" : "");
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  } else {
    LOCKSTEP_LOG_INFO("convert", "{}", text);
  }
  last_print_ = now;
}

void ConvertProgress::Update(int64_t tensors_done, int64_t bytes_done) {
  if (!enabled_) return;
  const double since = std::chrono::duration<double>(Clock::now() - last_print_).count();
  if (since >= (terminal_ ? 0.2 : interval_s_)) Print(tensors_done, bytes_done, false);
}

void ConvertProgress::Finish(int64_t tensors_done, int64_t bytes_done) {
  if (!enabled_) return;
  Print(tensors_done, bytes_done, true);
}

}  // namespace lockstep::runtime
