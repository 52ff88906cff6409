#include "lockstep/job/result_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

namespace lockstep::runtime {
namespace {

using ordered_json = nlohmann::ordered_json;

// Timings are printed to the microsecond / to 0.001 token/s: more digits are
// noise and make the file harder to read.
double Round3(double x) {
  return std::round(x * 1000.0) / 1000.0;
}

Status ErrnoError(const std::string& path, const char* what) {
  return IoError("{}: {} failed: {}", path, what, std::strerror(errno));
}

}  // namespace

std::string_view FinishReasonName(FinishReason reason) {
  return reason == FinishReason::kStop ? "stop" : "length";
}

std::string FormatResultLine(const RequestResult& r) {
  ordered_json j;
  j["id"] = r.id;
  j["tokens"] = r.tokens;
  if (r.text && r.chat) {
    j["message"] = {{"role", "assistant"}, {"content", *r.text}};
  } else if (r.text) {
    j["text"] = *r.text;
  }
  j["finish_reason"] = FinishReasonName(r.finish_reason);
  const int64_t completion = static_cast<int64_t>(r.tokens.size());
  j["usage"] = {{"prompt_tokens", r.prompt_tokens},
                {"completion_tokens", completion},
                {"total_tokens", r.prompt_tokens + completion}};
  if (r.include_timings) {
    j["ttft_ms"] = Round3(r.ttft_ms);
    j["decode_tokens_per_s"] = Round3(r.decode_tokens_per_s);
  }
  if (r.logits_sha256) j["logits_sha256"] = *r.logits_sha256;
  return j.dump();
}

std::string FormatErrorLine(const RequestError& e) {
  ordered_json j;
  j["id"] = e.id ? ordered_json(*e.id) : ordered_json(nullptr);
  j["line"] = e.line;
  j["error"] = e.message;
  // Invalid UTF-8 in a bad input line must not stop the error from being
  // reported: replace it rather than throw.
  return j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
}

ResultWriter::~ResultWriter() {
  if (fd_ >= 0) ::close(fd_);
}

ResultWriter::ResultWriter(ResultWriter&& other) noexcept
    : path_(std::move(other.path_)), fd_(other.fd_), lines_written_(other.lines_written_) {
  other.fd_ = -1;
}

ResultWriter& ResultWriter::operator=(ResultWriter&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    lines_written_ = other.lines_written_;
    other.fd_ = -1;
  }
  return *this;
}

Result<ResultWriter> ResultWriter::Open(const std::string& path, bool append) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return ErrnoError(path, "opening the results file");
  ResultWriter writer(path, fd);
  // Make the directory entry durable too, so a fsync'd line is never in a file
  // that vanishes after a crash.
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return writer;
}

Status ResultWriter::WriteLine(const std::string& text) {
  std::string line = text + "\n";
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(path_, "writing a result");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd_) != 0) return ErrnoError(path_, "fsync");
  ++lines_written_;
  return Status::Ok();
}

Status ResultWriter::Write(const RequestResult& result) {
  return WriteLine(FormatResultLine(result));
}

Status ResultWriter::WriteError(const RequestError& error) {
  return WriteLine(FormatErrorLine(error));
}

}  // namespace lockstep::runtime
