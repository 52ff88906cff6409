#include "lockstep/transport/stream.h"

#include <fmt/format.h>

#include "tag.h"
#include "wait.h"
#include "world.h"

namespace lockstep::transport {

namespace internal {
struct RequestAccess {
  static Request Make(std::unique_ptr<PendingOp> op, const World* world, OpLabel label) {
    return Request(std::move(op), world, label);
  }
};
}  // namespace internal

namespace {
Result<Request> Start(const internal::World* world, internal::OpLabel label, uint32_t tag,
                      void* data) {
  internal::Backend& backend = *world->backend;
  world->traffic.Count(label.kind == internal::OpLabel::Kind::kRecv, label.peer_world,
                       label.bytes);
  Result<std::unique_ptr<internal::PendingOp>> op =
      label.kind == internal::OpLabel::Kind::kRecv
          ? backend.StartRecv(label.peer_world, tag, data, label.bytes)
          : backend.StartSend(label.peer_world, tag, data, label.bytes);
  if (!op.ok()) {
    return op.status().WithContext(
        fmt::format("{} over {}", internal::DescribeOp(label), BackendName(backend.kind())));
  }
  return internal::RequestAccess::Make(std::move(op).value(), world, label);
}
}  // namespace

Result<Request> SendStream::Send(std::span<const std::byte> data) {
  internal::OpLabel label{internal::OpLabel::Kind::kSend,
                          "stream",
                          stream_id_,
                          next_sequence_,
                          -1,
                          peer_,
                          peer_world_,
                          data.size()};
  uint32_t tag = internal::StreamTag(stream_id_, next_sequence_);
  LOCKSTEP_ASSIGN_OR_RETURN(Request request,
                            Start(world_, label, tag, const_cast<std::byte*>(data.data())));
  ++next_sequence_;
  return request;
}

Result<Request> RecvStream::Post(std::span<std::byte> buffer) {
  internal::OpLabel label{internal::OpLabel::Kind::kRecv,
                          "stream",
                          stream_id_,
                          next_sequence_,
                          -1,
                          peer_,
                          peer_world_,
                          buffer.size()};
  uint32_t tag = internal::StreamTag(stream_id_, next_sequence_);
  LOCKSTEP_ASSIGN_OR_RETURN(Request request, Start(world_, label, tag, buffer.data()));
  ++next_sequence_;
  return request;
}

}  // namespace lockstep::transport
