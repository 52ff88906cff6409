// Rank 0's results off the step loop (docs/batch-jobs.md, "Results";
// docs/distributed.md, "Rank 0"): a writer thread that builds each finished
// request's text (detokenization), formats its line and writes it with a
// group commit, while the step loop goes on with the next step.
//
// The step loop submits one group per step: the results and error records
// that finished in that step. The writer thread takes every group queued
// when it wakes and writes them with one ResultWriter::WriteGroup -- one
// write, one fsync -- so the results of one step always share one commit
// (several steps may share it too when the disk is slower than the steps).
// A result counts as done only after its fsync: the step loop learns of it
// through TakeCommitted, which hands back only entries whose commit has
// returned, and counts, reports and keeps it then. So --resume guarantees
// are those of a synchronous writer: a line in the file is a whole, fsync'd
// result; a result not yet committed when the job dies was never reported
// done and runs again on --resume.
//
// Errors: the first write or fsync error is kept; Submit and Close return it
// from then on and nothing more is written (the job must stop).
//
// Thread safety: Submit, TakeCommitted and Close from one thread (the step
// loop's); commits() from any. The writer, tokenizer and requests must
// outlive the object.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/job/request.h"
#include "lockstep/job/result_writer.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime {

class ResultCommitter {
 public:
  // One line of the results file: a result or an error record.
  struct Entry {
    std::optional<RequestResult> result;
    std::optional<RequestError> error;
    // Non-null: the writer thread sets result->text from result->tokens,
    // decoded with the tokenizer for this request (CompletionText: echo,
    // cut before a stop string).
    const Request* text_request = nullptr;
    int64_t tag = 0;  // the caller's (e.g. the request's handle); handed back as is
  };

  // `tokenizer` may be null when no entry has a text_request. At most
  // `max_queued` groups wait for the writer; Submit blocks beyond that (a
  // bound on memory when the disk cannot keep up).
  ResultCommitter(ResultWriter* writer, const Tokenizer* tokenizer, size_t max_queued = 256);
  ~ResultCommitter();  // Close()
  ResultCommitter(const ResultCommitter&) = delete;
  ResultCommitter& operator=(const ResultCommitter&) = delete;

  // Queues one group (may be empty: then nothing happens). Returns the
  // writer's first error once there was one.
  Status Submit(std::vector<Entry> group);
  // The entries whose commit has returned since the last call, in submission
  // order (results with their text).
  std::vector<Entry> TakeCommitted();
  // Waits until every submitted group is committed and stops the thread.
  // Returns the first error. Later calls return the same.
  Status Close();

  // Commits made (fsyncs through this object).
  int64_t commits() const;

 private:
  void Run();

  ResultWriter* writer_;
  const Tokenizer* tokenizer_;
  size_t max_queued_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;  // the writer thread: work or closing
  std::condition_variable room_;  // Submit and Close: a commit returned
  std::deque<std::vector<Entry>> queued_;
  std::vector<Entry> committed_;
  bool closing_ = false;
  Status error_ = Status::Ok();
  int64_t commits_ = 0;
  std::thread thread_;
};

}  // namespace lockstep::runtime
