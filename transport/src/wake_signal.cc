#include "wake_signal.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <ctime>

namespace lockstep::transport::internal {

namespace {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "the futex word must be a plain 32-bit word");

uint32_t* Word(std::atomic<uint32_t>* a) {
  return reinterpret_cast<uint32_t*>(a);
}

}  // namespace

void WakeSignal::Notify() {
  // Pairs with the fence in Sleeper: either the waiter's re-test sees the
  // completion published before this call, or this load sees the waiter.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_relaxed) == 0) return;
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  syscall(SYS_futex, Word(&epoch_), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

WakeSignal::Sleeper::Sleeper(WakeSignal& signal) : signal_(signal) {
  signal_.sleepers_.fetch_add(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  epoch_ = signal_.epoch_.load(std::memory_order_acquire);
}

WakeSignal::Sleeper::~Sleeper() {
  signal_.sleepers_.fetch_sub(1, std::memory_order_relaxed);
}

void WakeSignal::Sleeper::Sleep(Clock::time_point until) {
  const Clock::duration left = until - Clock::now();
  if (left <= Clock::duration::zero()) return;
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
  timespec timeout{};
  timeout.tv_sec = static_cast<time_t>(ns / 1000000000);
  timeout.tv_nsec = static_cast<long>(ns % 1000000000);
  // Returns on a wake-up, on EAGAIN (the epoch moved already), on the
  // timeout and on a signal: every case means "test again".
  syscall(SYS_futex, Word(&signal_.epoch_), FUTEX_WAIT_PRIVATE, epoch_, &timeout, nullptr, 0);
}

}  // namespace lockstep::transport::internal
