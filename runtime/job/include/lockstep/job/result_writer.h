// The results file of a batch job: one JSON object per line, each durable
// (written, flushed and fsync'd) before the call that wrote it returns, so a
// job that dies loses no finished result. WriteGroup is a group commit: the
// lines of one call share one write and one fsync (the batch job writes the
// results that finish in one step that way, from a writer thread:
// result_committer.h).
//
// Result line (keys in this order):
//   {"id": "r1", "tokens": [5, 9, 2],
//    "text": " Paris.",                     (only when the model has a tokenizer)
//    "finish_reason": "stop",
//    "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
//    "ttft_ms": 12.5, "decode_tokens_per_s": 41.0,   (not with --no-timings)
//    "logits_sha256": "9f86..."}            (only with --hash-logits)
// Error record (a request line that could not run):
//   {"id": "r7", "line": 7, "error": "requests.jsonl:7: ..."}   (id null when
//                                                               unreadable)
//
// One job per results file: the writer holds an exclusive lock on the file
// (an open-file-description lock, fcntl F_OFD_SETLK, which NFS and Lustre
// with locking enabled honour) from Claim until it is destroyed, so a second
// job on the same file -- a second `run` or `--resume` -- is refused instead
// of interleaving its lines. An existing non-empty file is kept unless the
// caller asked to append (resume) or to overwrite (force), and even then it
// is only truncated when Start() is called, after the job has read its model
// and requests (docs/batch-jobs.md, "Results file").
//
// Thread safety: one thread at a time; lines_written() and syncs() may be
// read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/job/request.h"

namespace lockstep::runtime {

enum class FinishReason { kLength, kStop };
std::string_view FinishReasonName(FinishReason reason);  // "length", "stop"

struct RequestResult {
  std::string id;
  // A chat request's result carries its text as the assistant's message,
  // {"role": "assistant", "content": text}, in place of "text".
  bool chat = false;
  std::vector<int32_t> tokens;  // generated tokens (a stop token included)
  // The completion's text (CompletionText: echo, cut before a stop string),
  // valid UTF-8; only when the model has a tokenizer.
  std::optional<std::string> text;
  FinishReason finish_reason = FinishReason::kLength;
  int64_t prompt_tokens = 0;
  double ttft_ms = 0.0;              // admission to first generated token
  double decode_tokens_per_s = 0.0;  // (completion_tokens - 1) / (last - first token time)
  // false: the line has no ttft_ms / decode_tokens_per_s (--no-timings), so
  // that the results of two runs compare byte for byte (after sorting).
  bool include_timings = true;
  // Made with --compute bf16: the line records "compute": "bf16" (other
  // bits than the default float compute).
  bool bf16_compute = false;
  // The model file's manifest_sha256 (docs/model-format.md, "Checksums"):
  // the line records "model_sha256" when not empty, so that `--resume`
  // refuses to add another model's results to the file.
  std::string model_sha256;
  std::optional<std::string> logits_sha256;  // 64 lowercase hex digits
};

// The JSON text of a line (no newline). Exposed for tests and tools.
std::string FormatResultLine(const RequestResult& result);
std::string FormatErrorLine(const RequestError& error);

// What to do with a results file that already holds lines.
enum class ExistingResults {
  kRefuse,     // FailedPrecondition: the default of `lockstep run`
  kAppend,     // keep them and append (--resume)
  kOverwrite,  // truncate the file at Start() (--force)
};

class ResultWriter {
 public:
  ~ResultWriter();
  ResultWriter(ResultWriter&&) noexcept;
  ResultWriter& operator=(ResultWriter&&) noexcept;

  // Opens `path` for one job, creating it if needed, without truncating it,
  // and takes the exclusive lock. Errors (one line naming the file):
  // FailedPrecondition when another process holds the lock, or when the
  // file is not empty and `existing` is kRefuse; kIo when it cannot be
  // opened. On a file system without locks the writer goes on without one
  // and logs a warning. A file created here and never Start()ed is removed
  // again when the writer is destroyed, so a job that fails at start-up
  // leaves no empty results file behind.
  static Result<ResultWriter> Claim(const std::string& path, ExistingResults existing);
  // Makes a claimed file ready for lines: truncates it (kOverwrite), or
  // appends after what it holds (kAppend, kRefuse), and fsyncs its
  // directory so the file itself survives a crash.
  Status Start();

  // Claim + Start: truncating `path`, or appending to it with `append`.
  static Result<ResultWriter> Open(const std::string& path, bool append = false);

  // Write one line, then fsync. IoError names the file.
  Status Write(const RequestResult& result);
  Status WriteError(const RequestError& error);
  // Group commit: writes `lines` (JSON texts without newline) with one
  // write and one fsync. They are durable only once it returns Ok; after an
  // error some of them may be in the file, unsynced (a torn last line is
  // what --resume cuts off). No lines: nothing written, no fsync.
  Status WriteGroup(std::span<const std::string> lines);

  const std::string& path() const { return path_; }
  // Lines written and fsync'd.
  int64_t lines_written() const { return lines_written_.load(std::memory_order_acquire); }
  // fsyncs of lines: one per Write, WriteError or non-empty WriteGroup.
  int64_t syncs() const { return syncs_.load(std::memory_order_acquire); }

  // Tests: called on the writing thread after the lines of a call are
  // written and before their fsync (lets a test hold a commit half done).
  void SetBeforeSyncForTesting(std::function<void()> hook) { before_sync_ = std::move(hook); }

 private:
  ResultWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_ = -1;
  std::atomic<int64_t> lines_written_{0};
  std::atomic<int64_t> syncs_{0};
  std::function<void()> before_sync_;
  ExistingResults existing_ = ExistingResults::kOverwrite;
  bool created_ = false;  // Claim created the file
  bool started_ = false;
};

}  // namespace lockstep::runtime
