// WakeSignal: how a waiting chip sleeps until one of its operations may have
// completed, instead of polling.
//
// The waiter announces itself (a Sleeper: counts it in and reads the epoch),
// tests its operations once more, and if they are still pending sleeps until
// the epoch moves. Whoever completes an operation of the chip calls Notify()
// after publishing the completion; Notify moves the epoch and wakes the
// sleeper only when someone has announced itself, so while the chip spins
// (the common case on dedicated cores) a completion costs one fence and one
// load of a line nobody writes — no cache-line transfer, no system call.
//
// No wake-up is lost (the Dekker pattern, a seq_cst fence on both sides):
// either the waiter's re-test sees the completion, or Notify sees the
// announced waiter and moves the epoch; the futex then either sees the moved
// epoch and returns at once or is woken.
//
// Used by the local backend, where the chip that posts the second half of a
// matched pair completes both ops (it copies the data) and so knows exactly
// whom to wake. Linux futex on the epoch word, private to the process.
//
// Thread safety: Notify from any thread; Sleepers from the chip's own thread
// (several at once would also work: Notify wakes all of them).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace lockstep::transport::internal {

// Aligned to a cache line: the signal is written by other chips' threads and
// must not share a line with the mailbox it sits in.
class alignas(64) WakeSignal {
 public:
  using Clock = std::chrono::steady_clock;

  // One blocking wait: construct (announce), test the operations again, and
  // call Sleep only if they are still pending.
  class Sleeper {
   public:
    explicit Sleeper(WakeSignal& signal);
    Sleeper(const Sleeper&) = delete;
    Sleeper& operator=(const Sleeper&) = delete;
    ~Sleeper();
    // Sleeps while no Notify came since construction, at most until `until`.
    // Returns early on a Notify (or a spurious wake-up): the caller tests
    // again.
    void Sleep(Clock::time_point until);

   private:
    WakeSignal& signal_;
    uint32_t epoch_;
  };

  // Something a waiter of this signal waits for has completed (call after
  // the completion is published): wakes an announced waiter.
  void Notify();

  // Moves with every Notify that found a waiter (tests).
  uint32_t epoch() const { return epoch_.load(std::memory_order_seq_cst); }

 private:
  std::atomic<uint32_t> epoch_{0};
  std::atomic<uint32_t> sleepers_{0};
};

}  // namespace lockstep::transport::internal
