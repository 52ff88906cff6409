#include "lockstep/transport/request.h"

#include <optional>

#include <fmt/format.h>

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
  std::optional<internal::Poller> poller;
  while (true) {
    Request* first_pending = nullptr;
    for (Request& r : requests) {
      Result<bool> done = r.Test();
      if (!done.ok()) return done.status();
      if (!*done && first_pending == nullptr) first_pending = &r;
    }
    if (first_pending == nullptr) return Status::Ok();
    if (!poller) poller.emplace(world->options);
    if (poller->IdleUntilExpired()) {
      Status error = internal::TimeoutError(first_pending->label_, world->backend->kind(),
                                            world->options.timeout);
      return error;
    }
  }
}

}  // namespace lockstep::transport
