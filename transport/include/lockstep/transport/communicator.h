// Communicator: a group of chips (ranks) that exchange tensors in a fixed
// order — ordered streams between two chips and deterministic collectives.
//
// Creating one:
//   - the world over MPI or UCX:   Communicator::CreateWorld(session, options)
//     (collective over MPI_COMM_WORLD; every rank calls it with the same
//     backend);
//   - one chip of an in-process fabric: Communicator::CreateLocal(fabric,
//     rank, options), or RunLocal() in local_fabric.h which runs a function
//     on one thread per chip;
//   - sub-groups (tensor-parallel, pipeline) from a rank layout:
//     world.Split(layout.TpGroups(), "tp").
//
// Ranks. rank() is this chip's index in the communicator, 0..size()-1; for a
// group made by Split it is the position in the group's list of world ranks.
//
// Determinism (docs/determinism.md). AllReduceSum realises the canonical
// tree: for a power-of-two group of p ranks the result is
//   ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)) ...
// for every element, on every rank, for every message size, algorithm and
// backend. So a tensor-parallel matmul whose rank r holds subtree r of the
// canonical segment tree (kernels/matmul.h) completes to the one-rank result
// bit for bit. For other group sizes the tree is the canonical tree of the
// next power of two with the missing leaves pruned (a node with one child
// passes it up unchanged): p = 3 gives (x0 + x1) + x2, p = 6 gives
// ((x0 + x1) + (x2 + x3)) + (x4 + x5). The data path uses only point-to-point
// messages; never MPI's reductions.
//
// Errors. Every blocking call and every Request wait has a deadline
// (CommOptions::timeout). A collective that cannot complete returns a Status
// naming the collective, its call number in this communicator, the step and
// the peer rank, e.g.
//   "allreduce #4 in group 'tp' (4 ranks): step 1: recv from rank 3 (world
//    rank 7) over ucx: no message after 2 s: the peer stopped answering..."
// After such an error the communicator is unusable (peers are at different
// points); end the job (MpiSession::Abort, or return from RunLocal's function).
//
// Collective calls are matched by order: every member calls the same
// collectives in the same order with the same sizes (the plan's schedule).
//
// Thread safety: a Communicator is used by one thread at a time. Different
// communicators of the same world (world, tp group, pp group) share one
// backend and must also be used from one thread at a time between them;
// with the local backend each chip has its own thread and its own world.
//
// Lifetime: move-only. A world and the groups split from it share ownership
// of the backend, which lives until the last of them is destroyed. Streams
// and Requests must not outlive every communicator of their world.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/transport/options.h"
#include "lockstep/transport/request.h"
#include "lockstep/transport/stream.h"

namespace lockstep::transport {

class MpiSession;
class LocalFabric;
namespace internal {
class CollectiveRun;
class RecursiveDoublingSum;
}  // namespace internal

// An AllReduceSum started by Communicator::StartAllReduceSum and not yet
// finished. Finish() completes it: afterwards the data holds the same bits as
// AllReduceSum would have given. Move-only. Destroying one without Finish
// withdraws its messages; the communicator is then unusable, as after an
// error. It references its communicator and data, which must outlive it.
class PendingAllReduce {
 public:
  PendingAllReduce();
  PendingAllReduce(PendingAllReduce&&) noexcept;
  PendingAllReduce& operator=(PendingAllReduce&&) noexcept;
  ~PendingAllReduce();
  // Waits for the posted step (with the deadline of every wait), adds, and
  // runs the remaining steps. OK at once when there was nothing to sum.
  Status Finish();

 private:
  friend class Communicator;
  std::unique_ptr<internal::RecursiveDoublingSum> sum_;
};

// What one rank has exchanged with the others over a world (every group of
// it): the control-plane cost the start-up report shows per rank.
struct Traffic {
  uint64_t bytes_received = 0;     // payload bytes of completed or posted receives,
                                   // plus the backend's own bootstrap bytes
  uint64_t messages_received = 0;  // receives posted
  int peers = 0;                   // distinct world ranks messaged, either way
  // Connections the backend holds (ucx: endpoints, made on the first send to
  // a peer), or -1 when the backend has no such notion (mpi, local).
  int connections = -1;
};

class Communicator {
 public:
  // The world over the MPI or UCX backend (options.backend). Collective over
  // MPI_COMM_WORLD, bounded by options.timeout. The local backend is
  // InvalidArgument here (use CreateLocal / RunLocal).
  static Result<Communicator> CreateWorld(const MpiSession& session, const CommOptions& options);

  // Chip `rank` of an in-process fabric (options.backend is ignored: local).
  // Each chip's communicator must be used by its own thread.
  static Result<Communicator> CreateLocal(std::shared_ptr<LocalFabric> fabric, int rank,
                                          const CommOptions& options);

  Communicator(Communicator&&) noexcept;
  Communicator& operator=(Communicator&&) noexcept;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;
  ~Communicator();

  int rank() const { return rank_; }
  int size() const { return static_cast<int>(members_.size()); }
  int world_rank() const;
  // World rank of member `rank` (0 <= rank < size()).
  int WorldRankOf(int rank) const { return members_[rank]; }
  BackendKind backend() const;
  const CommOptions& options() const;
  const std::string& name() const { return name_; }

  // Sub-groups. `groups` is a partition of this communicator's world ranks
  // into disjoint groups (each a list of world ranks; a member's rank in its
  // group is its position in the list), e.g. RankLayout::TpGroups(). Returns
  // the group holding this rank, named "<name><index>" ("tp0", "tp1"...).
  //
  // Collective without communication: every rank of the world must create
  // groups in the same order with the same partitions (the layout is known
  // everywhere), because each call takes the next group context number of
  // the world, and messages of different groups are told apart by it. At
  // most 63 Split calls per world. InvalidArgument when this rank is in no group
  // or in two, or when a group names a rank outside this communicator.
  Result<Communicator> Split(const std::vector<std::vector<int>>& groups, std::string_view name);

  // Streams to / from member `peer` (not this rank) with the given id
  // (0..kMaxStreamId). See stream.h.
  Result<SendStream> OpenSendStream(int peer, uint32_t stream_id) const;
  Result<RecvStream> OpenRecvStream(int peer, uint32_t stream_id) const;

  // ---- Collectives: blocking, deterministic, every member calls them. ----

  // In-place elementwise sum over all members; every rank ends with the same
  // bits (the canonical tree above). data.size() must be equal on all ranks
  // (0 is allowed). f32 only: the only arithmetic collective lockstep needs.
  Status AllReduceSum(std::span<float> data,
                      AllReduceAlgorithm algorithm = AllReduceAlgorithm::kAuto);

  // The same sum in two halves, so that the caller computes while it is in
  // flight (overlap, docs/architecture.md): posts the first step of recursive
  // doubling (its receive and send) and returns; PendingAllReduce::Finish
  // waits for it, adds and runs the remaining steps. Same tree, same bits as
  // AllReduceSum (every algorithm of which gives the canonical tree), and the
  // same collective call number. `data` must not be touched until Finish.
  // Until then this communicator may run other collectives (in the same
  // order on every member), and the data moves while this rank computes
  // only as far as the backend moves it without being driven (eager
  // messages; the local backend's copies). The receive buffer is the
  // handle's own, not the world's shared scratch.
  Result<PendingAllReduce> StartAllReduceSum(std::span<float> data);

  // Concatenates every member's `mine` in rank order into `all`
  // (all.size() == size() * mine.size(), the same mine.size() on all ranks).
  Status AllGather(std::span<const std::byte> mine, std::span<std::byte> all);
  Status AllGather(std::span<const float> mine, std::span<float> all) {
    return AllGather(std::as_bytes(mine), std::as_writable_bytes(all));
  }

  // Copies `data` of member `root` into `data` on every member (binomial tree).
  Status Broadcast(std::span<std::byte> data, int root);
  Status Broadcast(std::span<float> data, int root) {
    return Broadcast(std::as_writable_bytes(data), root);
  }

  // Returns once every member has entered the barrier (dissemination).
  Status Barrier();

  // Control-plane reduction of a small fixed-size record (no arithmetic on
  // model data): every member ends with combine applied over all members'
  // `data` in rank order -- combine(lower, upper) folds the record of a
  // higher-ranked block into `lower`, in place. `combine` must be
  // associative. A binomial tree to rank 0, then Broadcast: 2 log2(p) steps,
  // and a rank receives at most log2(p) + 1 records. data.size() must be
  // equal on all ranks.
  using Combine = std::function<void(std::span<std::byte> lower, std::span<const std::byte> upper)>;
  Status AllReduce(std::span<std::byte> data, const Combine& combine);

  // Concatenates every member's `mine` in rank order into `all` on member
  // `root` (all.size() == size() * mine.size() there; ignored elsewhere):
  // a binomial tree, log2(p) steps; a member receives the blocks of its
  // subtree only.
  Status Gather(std::span<const std::byte> mine, std::span<std::byte> all, int root);

  // Number of collectives this communicator has run (the "#n" of messages).
  uint64_t collective_count() const { return collective_count_; }

  // This rank's traffic over the whole world so far (every group).
  Traffic traffic() const;

 private:
  Communicator(std::shared_ptr<internal::World> world, std::vector<int> members, int rank,
               uint32_t context, std::string name);

  friend class internal::CollectiveRun;  // src/collective_run.h: the steps of one collective
  std::shared_ptr<internal::World> world_;
  std::vector<int> members_;  // world ranks, in this communicator's rank order
  int rank_ = 0;
  uint32_t context_ = 0;  // 0 = world; Split gives 1, 2, ...
  std::string name_;
  uint64_t collective_count_ = 0;
};

}  // namespace lockstep::transport
