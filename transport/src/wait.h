// Waiting with a deadline: the poll loop every blocking transport call goes
// through, and the wording of its errors.
#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <string>

#include "backend.h"
#include "lockstep/base/status.h"
#include "lockstep/transport/options.h"
#include "lockstep/transport/request.h"
#include "wake_signal.h"

namespace lockstep::transport::internal {

// Spin, then yield, then block (CommOptions::spin / yield / sleep /
// max_sleep), and tell when the deadline (CommOptions::timeout) has passed.
//
// Blocking: with a WakeSignal (the local backend) the waiter sleeps until a
// peer completes one of its ops, so a chip that waits costs no CPU and wakes
// the moment it can go on (PollUntilDone below does the announce / re-test /
// sleep). Without one (mpi, ucx: their progress needs this rank's own calls)
// it sleeps `sleep`, doubling each time up to `max_sleep`, and polls between
// sleeps.
class Poller {
 public:
  enum class Next { kPoll, kBlock, kExpired };
  // `can_block`: the caller has a WakeSignal to sleep on.
  Poller(const CommOptions& options, bool can_block);
  // Call after a poll that found something pending. kPoll: poll again (after
  // a spin pause, a yield or a sleep); kBlock: time to sleep on the signal;
  // kExpired: the deadline has passed (the caller gives up). Reads the clock
  // at most every few calls while spinning, so a spin iteration stays cheap.
  Next Idle();
  // The end of one blocking sleep: the deadline, or a bounded slice (a lost
  // wake-up, of which there should be none, could cost no more).
  std::chrono::steady_clock::time_point BlockUntil() const;

 private:
  using Clock = std::chrono::steady_clock;
  bool can_block_;
  Clock::time_point spin_until_;
  Clock::time_point yield_until_;
  Clock::time_point deadline_;
  std::chrono::microseconds sleep_;
  std::chrono::microseconds max_sleep_;
  bool spinning_ = true;
  unsigned spins_ = 0;
};

// Runs `pass` (a callable returning Result<bool>: true once everything
// waited for is complete; it drives the backend's progress) until it returns
// true (then true), fails (its error), or the deadline passes (false). With
// a `signal`, blocking announces the waiter, runs `pass` once more, and only
// then sleeps (see wake_signal.h: no wake-up is lost).
template <typename Pass>
Result<bool> PollUntilDone(const CommOptions& options, WakeSignal* signal, Pass&& pass) {
  Result<bool> done = pass();
  if (!done.ok() || *done) return done;
  Poller poller(options, signal != nullptr);
  while (true) {
    const Poller::Next next = poller.Idle();
    if (next == Poller::Next::kExpired) return false;
    if (next == Poller::Next::kBlock) {
      WakeSignal::Sleeper sleeper(*signal);
      done = pass();
      if (!done.ok() || *done) return done;
      sleeper.Sleep(poller.BlockUntil());
    }
    done = pass();
    if (!done.ok() || *done) return done;
  }
}

// The options with CommOptions::adaptive_polling applied for
// `ranks_on_node` ranks (or chips) sharing this node's cores; `can_block`
// when the backend has a WakeSignal (then an oversubscribed waiter skips
// the yield phase: blocking is exact and costs no core).
CommOptions AdaptPolling(const CommOptions& options, int ranks_on_node, bool can_block);

// "recv of stream 7 seq 12 from rank 3 (world rank 3)" or
// "step 1: send to rank 3 (world rank 7)".
std::string DescribeOp(const OpLabel& label);

// The DeadlineExceeded status of an operation that did not complete.
Status TimeoutError(const OpLabel& label, BackendKind backend, std::chrono::milliseconds timeout);

// One op being waited for. A null op is complete.
struct OpSlot {
  std::unique_ptr<PendingOp> op;
  OpLabel label;
};

// Polls every op until all are complete, one of them fails, or the deadline
// passes, idling in between with a Poller on the backend's WakeSignal.
// Completed ops are reset (null). Errors carry DescribeOp(label).
Status WaitOps(std::span<OpSlot> ops, const CommOptions& options, Backend& backend);

}  // namespace lockstep::transport::internal
