#include "wait.h"

#include <fmt/format.h>
#include <sched.h>

#include <algorithm>
#include <optional>
#include <thread>

namespace lockstep::transport::internal {

Poller::Poller(const CommOptions& options) {
  const Clock::time_point start = Clock::now();
  spin_until_ = start + options.spin;
  yield_until_ = start + options.yield;
  deadline_ = start + options.timeout;
  sleep_ = options.sleep;
  max_sleep_ = std::max(options.sleep, options.max_sleep);
}

bool Poller::IdleUntilExpired() {
  if (spinning_) {
    // The deadline is far longer than any spin phase: while spinning, only
    // every 32nd call reads the clock.
    if ((++spins_ & 31) != 0) {
      __builtin_ia32_pause();
      return false;
    }
    const Clock::time_point now = Clock::now();
    if (now < spin_until_) return now >= deadline_;
    spinning_ = false;
  }
  const Clock::time_point now = Clock::now();
  if (now >= deadline_) return true;
  if (now < yield_until_) {
    sched_yield();
  } else {
    // Past the yield phase the peer is slow (or the cores are oversubscribed):
    // sleeping hands the core to the rank we wait for; the longer the wait,
    // the longer the sleeps (up to max_sleep).
    std::this_thread::sleep_for(sleep_);
    sleep_ = std::min(max_sleep_, 2 * sleep_);
  }
  return false;
}

CommOptions AdaptPolling(const CommOptions& options, int ranks_on_node) {
  CommOptions adapted = options;
  if (!options.adaptive_polling) return adapted;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (ranks_on_node > cores) {
    adapted.spin = CommOptions::kOversubscribedSpin;
    adapted.yield = CommOptions::kOversubscribedYield;
    const int per_core = (ranks_on_node + cores - 1) / cores;
    adapted.max_sleep = std::max(
        options.max_sleep,
        std::min(CommOptions::kOversubscribedMaxSleep, options.sleep * per_core));
  }
  return adapted;
}

std::string DescribeOp(const OpLabel& label) {
  const bool recv = label.kind == OpLabel::Kind::kRecv;
  if (label.step < 0) {
    return fmt::format("{} of stream {} seq {} ({} bytes) {} rank {} (world rank {})",
                       recv ? "recv" : "send", label.id, label.sequence, label.bytes,
                       recv ? "from" : "to", label.peer, label.peer_world);
  }
  return fmt::format("step {}: {} of {} bytes {} rank {} (world rank {})", label.step,
                     recv ? "recv" : "send", label.bytes, recv ? "from" : "to", label.peer,
                     label.peer_world);
}

namespace {
std::string FormatDuration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return fmt::format("{} s", d.count() / 1000);
  return fmt::format("{} s", static_cast<double>(d.count()) / 1000.0);
}
}  // namespace

Status TimeoutError(const OpLabel& label, BackendKind backend, std::chrono::milliseconds timeout) {
  return DeadlineExceeded(
      "{} over {}: not complete after {}: the peer stopped answering or is far behind; check "
      "that rank's log (raise --comm-timeout if it is only slow)",
      DescribeOp(label), BackendName(backend), FormatDuration(timeout));
}

Status WaitOps(std::span<OpSlot> ops, const CommOptions& options, BackendKind backend) {
  std::optional<Poller> poller;  // started on the first pass that finds work pending
  while (true) {
    const OpSlot* first_pending = nullptr;
    for (OpSlot& slot : ops) {
      if (slot.op == nullptr) continue;
      Result<bool> done = slot.op->Test();
      if (!done.ok()) {
        Status error = done.status().WithContext(
            fmt::format("{} over {}", DescribeOp(slot.label), BackendName(backend)));
        slot.op.reset();
        return error;
      }
      if (*done) {
        slot.op.reset();
      } else if (first_pending == nullptr) {
        first_pending = &slot;
      }
    }
    if (first_pending == nullptr) return Status::Ok();
    if (!poller) poller.emplace(options);
    if (poller->IdleUntilExpired()) {
      return TimeoutError(first_pending->label, backend, options.timeout);
    }
  }
}

}  // namespace lockstep::transport::internal
