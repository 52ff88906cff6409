// What the engine needs from its tensor-parallel group: the two collectives
// that complete a tp-sharded forward pass.
//
//   AllReduceSum  after the row-parallel matmuls (wo, w_down): each rank holds
//                 the sum of its canonical segments (a subtree of the
//                 reduction tree, kernels/matmul.h); the sum over the group
//                 must complete the canonical tree, so that the result is the
//                 one-rank result bit for bit (transport's allreduce does).
//   AllGather     equal blocks in rank order: the embedding's hidden columns
//                 and the lm_head's vocabulary rows (each padded to
//                 ceil(n / tp), docs/partitioner.md "Uneven parts").
//
// TransportTpGroup is the implementation the runtime uses (transport's
// deterministic collectives). The interface exists so that a benchmark can
// put a plain, non-canonical allreduce in its place to measure what
// determinism costs.
//
// Thread safety: one thread at a time (like a transport::Communicator).
#pragma once

#include <memory>
#include <span>

#include "lockstep/base/status.h"
#include "lockstep/transport/communicator.h"

namespace lockstep::runtime {

// An in-place sum started by TensorParallelGroup::StartAllReduceSum.
class PendingSum {
 public:
  virtual ~PendingSum() = default;
  // Completes the sum: afterwards the data holds AllReduceSum's bits.
  virtual Status Finish() = 0;
};

class TensorParallelGroup {
 public:
  virtual ~TensorParallelGroup() = default;
  virtual int size() const = 0;
  virtual int rank() const = 0;
  // In-place sum over the group, the same bits on every rank.
  virtual Status AllReduceSum(std::span<float> data) = 0;
  // The same sum in two halves, so that the caller computes while it is in
  // flight (EngineOptions::tp_overlap): `data` is not touched by the caller
  // until Finish. This default sums at once (a group that cannot split it).
  virtual Result<std::unique_ptr<PendingSum>> StartAllReduceSum(std::span<float> data);
  // all = every rank's `mine` in rank order (all.size() == size() * mine.size()).
  virtual Status AllGather(std::span<const float> mine, std::span<float> all) = 0;
};

// The group of a transport communicator (a tp group from Communicator::Split).
// Does not own the communicator, which must outlive it.
class TransportTpGroup final : public TensorParallelGroup {
 public:
  explicit TransportTpGroup(transport::Communicator& comm) : comm_(comm) {}
  int size() const override { return comm_.size(); }
  int rank() const override { return comm_.rank(); }
  Status AllReduceSum(std::span<float> data) override { return comm_.AllReduceSum(data); }
  // transport's split-phase allreduce (Communicator::StartAllReduceSum).
  Result<std::unique_ptr<PendingSum>> StartAllReduceSum(std::span<float> data) override;
  Status AllGather(std::span<const float> mine, std::span<float> all) override {
    return comm_.AllGather(mine, all);
  }

 private:
  transport::Communicator& comm_;
};

}  // namespace lockstep::runtime
