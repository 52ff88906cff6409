#include "wait.h"

#include <fmt/format.h>
#include <sched.h>

#include <algorithm>
#include <optional>
#include <thread>

namespace lockstep::transport::internal {

namespace {
// The longest one blocking wait lasts before the op is tested again.
constexpr std::chrono::milliseconds kMaxBlock{100};
}  // namespace

Poller::Poller(const CommOptions& options, bool can_block) : can_block_(can_block) {
  const Clock::time_point start = Clock::now();
  spin_until_ = start + options.spin;
  yield_until_ = start + options.yield;
  deadline_ = start + options.timeout;
  sleep_ = std::max(options.sleep, std::chrono::microseconds(1));
  max_sleep_ = std::max(options.max_sleep, sleep_);
}

Poller::Next Poller::Idle() {
  if (spinning_) {
    // The deadline is far longer than any spin phase: while spinning, only
    // every 32nd call reads the clock.
    if ((++spins_ & 31) != 0) {
      __builtin_ia32_pause();
      return Next::kPoll;
    }
    const Clock::time_point now = Clock::now();
    if (now < spin_until_) return now >= deadline_ ? Next::kExpired : Next::kPoll;
    spinning_ = false;
  }
  const Clock::time_point now = Clock::now();
  if (now >= deadline_) return Next::kExpired;
  if (now < yield_until_) {
    sched_yield();
    return Next::kPoll;
  }
  if (can_block_) return Next::kBlock;
  // Past the yield phase the peer is slow (or the cores are oversubscribed):
  // sleeping hands the core to the rank we wait for. Doubling the sleep
  // keeps hundreds of idle ranks on a few cores from waking each other off
  // the cores (at a 20 us period, 64 ranks alone would make 3 million
  // wake-ups a second); the cap bounds the latency it adds.
  std::this_thread::sleep_for(sleep_);
  sleep_ = std::min(sleep_ * 2, max_sleep_);
  return Next::kPoll;
}

Poller::Clock::time_point Poller::BlockUntil() const {
  return std::min(deadline_, Clock::now() + kMaxBlock);
}

CommOptions AdaptPolling(const CommOptions& options, int ranks_on_node, bool can_block) {
  CommOptions adapted = options;
  if (!options.adaptive_polling) return adapted;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (ranks_on_node > cores) {
    adapted.spin = CommOptions::kOversubscribedSpin;
    adapted.yield =
        can_block ? CommOptions::kOversubscribedSpin : CommOptions::kOversubscribedYield;
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

Status WaitOps(std::span<OpSlot> ops, const CommOptions& options, Backend& backend) {
  const OpSlot* first_pending = nullptr;
  Result<bool> done = PollUntilDone(options, backend.wake_signal(), [&]() -> Result<bool> {
    first_pending = nullptr;
    for (OpSlot& slot : ops) {
      if (slot.op == nullptr) continue;
      Result<bool> complete = slot.op->Test();
      if (!complete.ok()) {
        Status error = complete.status().WithContext(
            fmt::format("{} over {}", DescribeOp(slot.label), BackendName(backend.kind())));
        slot.op.reset();
        return error;
      }
      if (*complete) {
        slot.op.reset();
      } else if (first_pending == nullptr) {
        first_pending = &slot;
      }
    }
    return first_pending == nullptr;
  });
  if (!done.ok()) return done.status();
  if (!*done) return TimeoutError(first_pending->label, backend.kind(), options.timeout);
  return Status::Ok();
}

}  // namespace lockstep::transport::internal
