#include "result_committer.h"

#include <algorithm>
#include <string>
#include <utility>

#include "completion_text.h"
#include "lockstep/base/check.h"

namespace lockstep::runtime {

ResultCommitter::ResultCommitter(ResultWriter* writer, const Tokenizer* tokenizer,
                                 size_t max_queued)
    : writer_(writer), tokenizer_(tokenizer), max_queued_(std::max<size_t>(max_queued, 1)) {
  LOCKSTEP_CHECK(writer != nullptr);
  thread_ = std::thread([this] { Run(); });
}

ResultCommitter::~ResultCommitter() {
  (void)Close();
}

Status ResultCommitter::Submit(std::vector<Entry> group) {
  std::unique_lock lock(mutex_);
  if (!error_.ok()) return error_;
  LOCKSTEP_CHECK(!closing_, "a group submitted after Close()");
  if (group.empty()) return Status::Ok();
  room_.wait(lock, [&] { return queued_.size() < max_queued_ || !error_.ok(); });
  if (!error_.ok()) return error_;
  queued_.push_back(std::move(group));
  wake_.notify_one();
  return Status::Ok();
}

std::vector<ResultCommitter::Entry> ResultCommitter::TakeCommitted() {
  std::lock_guard lock(mutex_);
  return std::exchange(committed_, {});
}

Status ResultCommitter::Close() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
    wake_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  return error_;
}

int64_t ResultCommitter::commits() const {
  std::lock_guard lock(mutex_);
  return commits_;
}

void ResultCommitter::Run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return !queued_.empty() || closing_; });
    if (queued_.empty() || !error_.ok()) {
      if (closing_) break;
      queued_.clear();
      continue;
    }
    // Every group queued now: one commit (groups are never split).
    std::deque<std::vector<Entry>> groups = std::exchange(queued_, {});
    lock.unlock();
    std::vector<std::string> lines;
    for (std::vector<Entry>& group : groups) {
      for (Entry& e : group) {
        if (e.result) {
          if (e.text_request != nullptr && tokenizer_ != nullptr) {
            CompletionText text(*tokenizer_, *e.text_request);
            for (int32_t token : e.result->tokens) {
              if (text.Append(token)) break;  // later tokens add nothing to the text
            }
            e.result->text = text.Text();
          }
          lines.push_back(FormatResultLine(*e.result));
        } else if (e.error) {
          lines.push_back(FormatErrorLine(*e.error));
        }
      }
    }
    const Status written = writer_->WriteGroup(lines);
    lock.lock();
    if (written.ok()) {
      ++commits_;
      for (std::vector<Entry>& group : groups) {
        for (Entry& e : group) committed_.push_back(std::move(e));
      }
    } else if (error_.ok()) {
      error_ = written;
    }
    room_.notify_all();
  }
}

}  // namespace lockstep::runtime
