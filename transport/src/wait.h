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

namespace lockstep::transport::internal {

// Spin, then yield, then sleep (CommOptions::spin / yield / sleep, each
// sleep doubling up to max_sleep), and tell when the deadline
// (CommOptions::timeout) has passed.
class Poller {
 public:
  explicit Poller(const CommOptions& options);
  // Call after a poll that found nothing complete. Returns true once the
  // deadline has passed (then the caller gives up). Reads the clock at most
  // every few calls while spinning, so a spin iteration stays cheap.
  bool IdleUntilExpired();

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point spin_until_;
  Clock::time_point yield_until_;
  Clock::time_point deadline_;
  std::chrono::microseconds sleep_;
  std::chrono::microseconds max_sleep_;
  bool spinning_ = true;
  unsigned spins_ = 0;
};

// The options with CommOptions::adaptive_polling applied for
// `ranks_on_node` ranks (or chips) sharing this node's cores.
CommOptions AdaptPolling(const CommOptions& options, int ranks_on_node);

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
// passes. Completed ops are reset (null). Errors carry DescribeOp(label).
Status WaitOps(std::span<OpSlot> ops, const CommOptions& options, BackendKind backend);

}  // namespace lockstep::transport::internal
