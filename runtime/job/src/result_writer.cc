#include "lockstep/job/result_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>

#include "lockstep/base/log.h"

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
  if (r.bf16_compute) j["compute"] = "bf16";
  if (!r.model_sha256.empty()) j["model_sha256"] = r.model_sha256;
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
  if (fd_ < 0) return;
  if (created_ && !started_) {
    // Nothing was ever written: leave no empty file behind a failed start.
    struct stat st {};
    if (::fstat(fd_, &st) == 0 && st.st_size == 0) ::unlink(path_.c_str());
  }
  ::close(fd_);  // releases the lock
}

ResultWriter::ResultWriter(ResultWriter&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      lines_written_(other.lines_written()),
      syncs_(other.syncs()),
      before_sync_(std::move(other.before_sync_)),
      existing_(other.existing_),
      created_(other.created_),
      started_(other.started_) {}

ResultWriter& ResultWriter::operator=(ResultWriter&& other) noexcept {
  if (this != &other) {
    ResultWriter released(std::move(*this));  // closes (and unlocks) the old file
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    lines_written_.store(other.lines_written());
    syncs_.store(other.syncs());
    before_sync_ = std::move(other.before_sync_);
    existing_ = other.existing_;
    created_ = other.created_;
    started_ = other.started_;
  }
  return *this;
}

Result<ResultWriter> ResultWriter::Claim(const std::string& path, ExistingResults existing) {
  bool created = false;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    created = fd >= 0;
    if (fd < 0 && errno == EEXIST) fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  }
  if (fd < 0) return ErrnoError(path, "opening the results file");
  ResultWriter writer(path, fd);
  writer.existing_ = existing;
  writer.created_ = created;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoError(path, "fstat");
  if (S_ISREG(st.st_mode)) {
    struct flock lock {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;  // the whole file, also as it grows
    if (::fcntl(fd, F_OFD_SETLK, &lock) != 0) {
      if (errno == EAGAIN || errno == EACCES) {
        writer.created_ = false;  // not ours to remove
        return FailedPrecondition(
            "{}: another process is writing this results file (it is locked): two jobs must "
            "not write one results file; wait for the other job, or choose another --output",
            path);
      }
      LOCKSTEP_LOG_WARN("run",
                        "{}: cannot lock the results file ({}): make sure no other job writes it",
                        path, std::strerror(errno));
    }
    if (st.st_size > 0 && existing == ExistingResults::kRefuse) {
      return FailedPrecondition(
          "{}: the results file already holds {} bytes; --resume continues that job, --force "
          "overwrites it, or choose another --output",
          path, static_cast<int64_t>(st.st_size));
    }
  }
  return writer;
}

Status ResultWriter::Start() {
  if (started_) return Status::Ok();
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return ErrnoError(path_, "fstat");
  if (S_ISREG(st.st_mode) && existing_ == ExistingResults::kOverwrite && st.st_size > 0 &&
      ::ftruncate(fd_, 0) != 0) {
    return ErrnoError(path_, "truncating the results file");
  }
  // Every line goes at the end (after what --resume keeps).
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags < 0 || ::fcntl(fd_, F_SETFL, flags | O_APPEND) != 0) {
    return ErrnoError(path_, "fcntl(O_APPEND)");
  }
  started_ = true;
  // Make the directory entry durable too, so a fsync'd line is never in a file
  // that vanishes after a crash.
  std::filesystem::path dir = std::filesystem::path(path_).parent_path();
  if (dir.empty()) dir = ".";
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return Status::Ok();
}

Result<ResultWriter> ResultWriter::Open(const std::string& path, bool append) {
  LOCKSTEP_ASSIGN_OR_RETURN(
      ResultWriter writer,
      Claim(path, append ? ExistingResults::kAppend : ExistingResults::kOverwrite));
  LOCKSTEP_RETURN_IF_ERROR(writer.Start());
  return writer;
}

Status ResultWriter::WriteGroup(std::span<const std::string> lines) {
  if (!started_) return FailedPrecondition("{}: results file written before Start()", path_);
  if (lines.empty()) return Status::Ok();
  std::string text;
  size_t size = 0;
  for (const std::string& line : lines) size += line.size() + 1;
  text.reserve(size);
  for (const std::string& line : lines) {
    text += line;
    text += '\n';
  }
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(path_, "writing a result");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (before_sync_) before_sync_();
  if (::fsync(fd_) != 0) return ErrnoError(path_, "fsync");
  syncs_.fetch_add(1, std::memory_order_acq_rel);
  lines_written_.fetch_add(static_cast<int64_t>(lines.size()), std::memory_order_acq_rel);
  return Status::Ok();
}

Status ResultWriter::Write(const RequestResult& result) {
  const std::string line = FormatResultLine(result);
  return WriteGroup(std::span<const std::string>(&line, 1));
}

Status ResultWriter::WriteError(const RequestError& error) {
  const std::string line = FormatErrorLine(error);
  return WriteGroup(std::span<const std::string>(&line, 1));
}

}  // namespace lockstep::runtime
