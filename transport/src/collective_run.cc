#include "collective_run.h"

#include <fmt/format.h>

#include "tag.h"

namespace lockstep::transport::internal {

CollectiveRun::CollectiveRun(Communicator& comm, const char* what)
    : comm_(comm), what_(what), call_(comm.collective_count_++) {}

Status CollectiveRun::Prefixed(const Status& status) const {
  return status.WithContext(
      fmt::format("{} #{} in group '{}' ({} ranks)", what_, call_, comm_.name_, comm_.size()));
}

Status CollectiveRun::Step(int step, std::span<const Transfer> transfers) {
  LOCKSTEP_RETURN_IF_ERROR(Post(step, transfers));
  return WaitPosted();
}

Status CollectiveRun::Post(int step, std::span<const Transfer> transfers) {
  World& world = *comm_.world_;
  Backend& backend = *world.backend;
  const uint32_t tag = CollectiveTag(comm_.context_, call_, step);
  slots_.clear();
  slots_.resize(transfers.size());
  // Receives first, so that a peer's eager data lands in posted buffers.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < transfers.size(); ++i) {
      const Transfer& t = transfers[i];
      if (t.is_recv != (pass == 0)) continue;
      OpSlot& slot = slots_[i];
      int peer_world = comm_.members_[t.peer];
      slot.label = OpLabel{t.is_recv ? OpLabel::Kind::kRecv : OpLabel::Kind::kSend,
                           what_,
                           comm_.context_,
                           call_,
                           step,
                           t.peer,
                           peer_world,
                           t.bytes};
      world.traffic.Count(t.is_recv, peer_world, t.bytes);
      Result<std::unique_ptr<PendingOp>> op =
          t.is_recv ? backend.StartRecv(peer_world, tag, t.data, t.bytes)
                    : backend.StartSend(peer_world, tag, t.data, t.bytes);
      if (!op.ok()) {
        return Prefixed(op.status().WithContext(
            fmt::format("{} over {}", DescribeOp(slot.label), BackendName(backend.kind()))));
      }
      slot.op = std::move(op).value();
    }
  }
  return Status::Ok();
}

Status CollectiveRun::WaitPosted() {
  World& world = *comm_.world_;
  Status status = WaitOps(slots_, world.options, *world.backend);
  if (!status.ok()) return Prefixed(status);
  return Status::Ok();
}

std::byte* CollectiveRun::Scratch(size_t bytes) {
  std::vector<std::byte>& scratch = comm_.world_->scratch;
  if (scratch.size() < bytes) scratch.resize(bytes);
  return scratch.data();
}

}  // namespace lockstep::transport::internal
