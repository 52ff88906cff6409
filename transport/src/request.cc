#include "lockstep/transport/request.h"

#include <fmt/format.h>

#include <optional>

#include "wait.h"
#include "world.h"

namespace lockstep::transport {

Request::Request(std::unique_ptr<internal::PendingOp> op, const internal::World* world,
                 internal::OpLabel label)
    : op_(std::move(op)), world_(world), label_(label) {}

Request::Request() = default;
Request::Request(Request&& other) noexcept = default;
Request& Request::operator=(Request&& other) noexcept = default;
Request::~Request() = default;

Result<bool> Request::Test() {
  if (done_ || op_ == nullptr) {
    if (!error_.ok()) return error_;
    return true;
  }
  Result<bool> done = op_->Test();
  if (!done.ok()) {
    error_ = done.status().WithContext(fmt::format("{} over {}", internal::DescribeOp(label_),
                                                   BackendName(world_->backend->kind())));
    done_ = true;
    op_.reset();
    return error_;
  }
  if (*done) {
    done_ = true;
    op_.reset();
  }
  return *done;
}

Status Request::Wait() {
  return WaitAll(std::span<Request>(this, 1));
}

Status WaitAll(std::span<Request> requests) {
  const internal::World* world = nullptr;
  for (Request& r : requests) {
    if (r.world_ != nullptr) world = r.world_;
  }
  if (world == nullptr) return Status::Ok();  // all empty
  // The poller (and its clock read) starts only if the first pass finds
  // something pending: a wait that is already complete costs no clock read.
  Request* first_pending = nullptr;
  Result<bool> done =
      internal::PollUntilDone(world->options, world->backend->wake_signal(), [&]() -> Result<bool> {
        first_pending = nullptr;
        for (Request& r : requests) {
          LOCKSTEP_ASSIGN_OR_RETURN(bool complete, r.Test());
          if (!complete && first_pending == nullptr) first_pending = &r;
        }
        return first_pending == nullptr;
      });
  if (!done.ok()) return done.status();
  if (!*done) {
    return internal::TimeoutError(first_pending->label_, world->backend->kind(),
                                  world->options.timeout);
  }
  return Status::Ok();
}

}  // namespace lockstep::transport
