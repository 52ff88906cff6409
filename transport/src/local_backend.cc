#include "local_backend.h"

#include <sched.h>

#include <cstring>

#include "lockstep/transport/local_fabric.h"

namespace lockstep::transport::internal {

namespace {
uint64_t Key(int sender, uint32_t tag) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(sender)) << 32) | tag;
}
}  // namespace

void LocalMailbox::Post(LocalOp* op) {
  LocalOp* match = nullptr;
  {
    std::lock_guard lock(mutex_);
    auto it = queues_.try_emplace(Key(op->sender_, op->tag_)).first;
    Queue& queue = it->second;
    std::deque<LocalOp*>& opposite = op->is_recv_ ? queue.sends : queue.recvs;
    if (opposite.empty()) {
      (op->is_recv_ ? queue.recvs : queue.sends).push_back(op);
      return;
    }
    match = opposite.front();
    opposite.pop_front();
    if (queue.sends.empty() && queue.recvs.empty()) queues_.erase(it);
  }
  // Copy outside the lock: both ops are now owned by this thread until done.
  if (op->is_recv_) {
    LocalOp::Complete(match, op);
  } else {
    LocalOp::Complete(op, match);
  }
}

bool LocalMailbox::Withdraw(LocalOp* op) {
  std::lock_guard lock(mutex_);
  auto it = queues_.find(Key(op->sender_, op->tag_));
  if (it == queues_.end()) return false;
  std::deque<LocalOp*>& mine = op->is_recv_ ? it->second.recvs : it->second.sends;
  for (auto q = mine.begin(); q != mine.end(); ++q) {
    if (*q == op) {
      mine.erase(q);
      if (it->second.sends.empty() && it->second.recvs.empty()) queues_.erase(it);
      return true;
    }
  }
  return false;
}

void LocalOp::Complete(LocalOp* send, LocalOp* recv) {
  // A size mismatch fails the receive (as MPI does) and completes the send.
  size_t n = std::min(send->bytes_, recv->bytes_);
  if (n > 0) std::memcpy(recv->data_, send->data_, n);
  recv->received_bytes_ = send->bytes_;
  // Read the owners first: once done_ is set, the op's owner may destroy it.
  WakeSignal* recv_owner = recv->owner_;
  WakeSignal* send_owner = send->owner_;
  recv->done_.store(true, std::memory_order_release);
  send->done_.store(true, std::memory_order_release);
  recv_owner->Notify();
  if (send_owner != recv_owner) send_owner->Notify();
}

LocalOp::~LocalOp() {
  if (done_.load(std::memory_order_acquire)) return;
  if (mailbox_->Withdraw(this)) return;
  // Matched by the other side, which is copying now: wait for it (bounded by a
  // memcpy).
  while (!done_.load(std::memory_order_acquire)) sched_yield();
}

Result<bool> LocalOp::Test() {
  if (!done_.load(std::memory_order_acquire)) return false;
  if (is_recv_ && received_bytes_ != bytes_) {
    return InvalidArgument(
        "the message has {} bytes but {} were posted; both sides must use the "
        "sizes of the schedule",
        received_bytes_, bytes_);
  }
  return true;
}

namespace {

class LocalBackend final : public Backend {
 public:
  LocalBackend(std::shared_ptr<LocalFabric> fabric, int rank)
      : fabric_(std::move(fabric)), rank_(rank) {}

  BackendKind kind() const override { return BackendKind::kLocal; }
  int rank() const override { return rank_; }
  int size() const override { return fabric_->num_chips(); }
  WakeSignal* wake_signal() override { return &signal(); }

  Result<std::unique_ptr<PendingOp>> StartSend(int peer, uint32_t tag, const void* data,
                                               size_t bytes) override {
    LocalMailbox* mailbox = &fabric_->mailbox(peer);
    auto op = std::make_unique<LocalOp>(mailbox, &signal(), false, rank_, tag,
                                        const_cast<void*>(data), bytes);
    mailbox->Post(op.get());
    return std::unique_ptr<PendingOp>(std::move(op));
  }

  Result<std::unique_ptr<PendingOp>> StartRecv(int peer, uint32_t tag, void* data,
                                               size_t bytes) override {
    LocalMailbox* mailbox = &fabric_->mailbox(rank_);
    auto op = std::make_unique<LocalOp>(mailbox, &signal(), true, peer, tag, data, bytes);
    mailbox->Post(op.get());
    return std::unique_ptr<PendingOp>(std::move(op));
  }

 private:
  WakeSignal& signal() { return fabric_->mailbox(rank_).signal(); }
  std::shared_ptr<LocalFabric> fabric_;
  int rank_;
};

}  // namespace

Result<std::unique_ptr<Backend>> CreateLocalBackend(std::shared_ptr<LocalFabric> fabric, int rank) {
  if (rank < 0 || rank >= fabric->num_chips()) {
    return InvalidArgument("local chip {} does not exist: the fabric has {} chips (0..{})", rank,
                           fabric->num_chips(), fabric->num_chips() - 1);
  }
  return std::unique_ptr<Backend>(std::make_unique<LocalBackend>(std::move(fabric), rank));
}

}  // namespace lockstep::transport::internal
