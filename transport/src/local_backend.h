// The `local` backend: chips are threads of one process. Each chip has a
// mailbox of incoming traffic; a message is matched by exact (sender, tag),
// in send order, and copied once, straight from the sender's buffer into the
// receiver's (a rendezvous: the send completes when the receiver has taken
// the data, like a large MPI message). The thread that completes a pair
// notifies both chips' WakeSignals, so a waiting chip sleeps until then
// instead of polling (hundreds of chips on a few cores).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "backend.h"
#include "wake_signal.h"

namespace lockstep::transport {
class LocalFabric;
}

namespace lockstep::transport::internal {

class LocalOp;

// Incoming traffic of one chip, and the signal its waits sleep on.
// Thread-safe (one mutex).
class LocalMailbox {
 public:
  WakeSignal& signal() { return signal_; }

  // Matches `op` (a send to this chip or a receive of this chip) with the
  // oldest opposite op of the same (sender, tag), or queues it.
  void Post(LocalOp* op);
  // Removes a queued op (cancellation). Returns false if it was already
  // matched (the matching side is copying; the caller waits for completion).
  bool Withdraw(LocalOp* op);

 private:
  struct Queue {
    std::deque<LocalOp*> sends;
    std::deque<LocalOp*> recvs;
  };
  std::mutex mutex_;
  std::unordered_map<uint64_t, Queue> queues_;  // key: sender << 32 | tag
  WakeSignal signal_;                           // of the chip that owns the mailbox
};

// A send or receive of the local backend.
class LocalOp final : public PendingOp {
 public:
  // `mailbox`: the receiver's, where the op is matched; `owner`: the signal
  // of the chip that posted the op (notified when it completes).
  LocalOp(LocalMailbox* mailbox, WakeSignal* owner, bool is_recv, int sender, uint32_t tag,
          void* data, size_t bytes)
      : mailbox_(mailbox),
        owner_(owner),
        is_recv_(is_recv),
        sender_(sender),
        tag_(tag),
        data_(data),
        bytes_(bytes) {}
  ~LocalOp() override;
  Result<bool> Test() override;

 private:
  friend class LocalMailbox;
  // Copies the send's bytes into the receive, completes both and notifies
  // both owners.
  static void Complete(LocalOp* send, LocalOp* recv);

  LocalMailbox* mailbox_;
  WakeSignal* owner_;
  bool is_recv_;
  int sender_;
  uint32_t tag_;
  void* data_;
  size_t bytes_;
  size_t received_bytes_ = 0;  // set on a receive before done_
  std::atomic<bool> done_{false};
};

Result<std::unique_ptr<Backend>> CreateLocalBackend(std::shared_ptr<LocalFabric> fabric, int rank);

}  // namespace lockstep::transport::internal
