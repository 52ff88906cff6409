#include "convert_progress.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include <fmt/format.h>

namespace lockstep::runtime {
namespace {

std::string Bytes(double b) {
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.1f} MB", b / 1e6);
  return fmt::format("{:.0f} kB", b / 1e3);
}

}  // namespace

ConvertProgress::ConvertProgress(int64_t total_tensors, int64_t total_bytes, bool enabled,
                                 bool terminal, double plain_interval_s)
    : total_tensors_(total_tensors),
      total_bytes_(total_bytes),
      line_("convert", enabled, terminal, plain_interval_s) {}

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
                      FormatDuration(elapsed_s), FormatDuration(eta));
  return text;
}

void ConvertProgress::Print(int64_t tensors_done, int64_t bytes_done, bool final) {
  line_.Write(Format(tensors_done, total_tensors_, bytes_done, total_bytes_, line_.ElapsedSeconds(),
                     line_.terminal()),
              final);
}

void ConvertProgress::Update(int64_t tensors_done, int64_t bytes_done) {
  if (line_.Due()) Print(tensors_done, bytes_done, false);
}

void ConvertProgress::Finish(int64_t tensors_done, int64_t bytes_done) {
  Print(tensors_done, bytes_done, true);
}

int64_t PeakRssBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmHWM:")) return std::atoll(line.c_str() + 6) * 1024;  // "  1234 kB"
  }
  return 0;
}

}  // namespace lockstep::runtime
