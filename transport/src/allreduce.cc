// AllReduceSum: the canonical tree over the group's ranks (docs/determinism.md).
//
// Recursive doubling. At step j (j = 0, 1, 2, ...) the ranks form blocks of
// 2^(j+1); the lower half [b, b+2^j) and the upper half [b+2^j, b+2^(j+1))
// of a block each hold their own subtree sum (the same bits on every rank
// of a half), exchange them (partner = rank XOR 2^j) and form
//   lower + upper
// so after step j every rank of the block holds the block's subtree. That is
// exactly the canonical tree: ((x0+x1)+(x2+x3))+((x4+x5)+(x6+x7))...
//
// Groups that are not a power of two: the tree is the one of the next power
// of two with the missing leaves pruned. At step j, a block whose upper half
// is missing entirely passes its lower half's value up unchanged; a lower
// rank whose partner is missing but whose upper half exists receives the
// upper half's value from the upper rank (lower_offset mod upper_count) — all
// ranks of a half hold the same bits, so any of them can serve — and that
// upper rank sends one extra message. p = 3: (x0+x1)+x2.
//
// Reduce-scatter + allgather (power-of-two groups, large messages). The same
// pairing order: at step j the partners (rank XOR 2^j) hold the same element
// range; the rank with bit j clear keeps the lower half of it, the other the
// upper half; each receives the partner's copy of the half it keeps and adds
// lower + upper. After log2(p) steps each rank holds a 1/p slice summed over
// the canonical tree (each element's sum is formed in exactly the pairing
// of recursive doubling), and an allgather in the reverse order (largest
// distance first, no arithmetic) gives every rank every slice. The halving
// cuts ranges at lo + (hi - lo) / 2; any cut would do, since the tree is per
// element.
#include <bit>
#include <cstring>
#include <vector>

#include "collective_run.h"

namespace lockstep::transport {

namespace {
// out[i] = lower[i] + upper[i]. Elementwise: no reassociation is possible.
void AddInto(float* out, const float* lower, const float* upper, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = lower[i] + upper[i];
}
}  // namespace

namespace internal {

// Recursive doubling as steps that are posted and completed apart, so that
// StartAllReduceSum can return between the two halves of its first step.
// The steps, their messages and their sums are those of the blocking call.
class RecursiveDoublingSum {
 public:
  using Transfer = CollectiveRun::Transfer;

  // `tmp`: n floats of receive buffer, or null for the world's scratch.
  RecursiveDoublingSum(Communicator& comm, std::span<float> data, std::vector<float> own_tmp)
      : run_(comm, "allreduce"), data_(data), own_tmp_(std::move(own_tmp)) {
    tmp_ = own_tmp_.empty() ? reinterpret_cast<float*>(run_.Scratch(data.size_bytes()))
                            : own_tmp_.data();
    steps_ = std::bit_width(static_cast<unsigned>(run_.size() - 1));  // log2(next pow2)
  }

  // Posts the next step that exchanges anything: false when none is left.
  Result<bool> PostNext() {
    const int p = run_.size();
    const int r = run_.rank();
    const size_t bytes = data_.size_bytes();
    for (; j_ < steps_; ++j_) {
      const int d = 1 << j_;
      const int lower_start = r & ~(2 * d - 1);
      const int upper_start = lower_start + d;
      if (upper_start >= p) continue;  // this block's upper half does not exist: pass up
      const int upper_count = std::min(p, upper_start + d) - upper_start;
      transfers_.clear();
      is_lower_ = (r & d) == 0;
      if (is_lower_) {
        const int partner = r + d;
        if (partner < p) {
          transfers_.push_back(Transfer::Recv(partner, tmp_, bytes));
          transfers_.push_back(Transfer::Send(partner, data_.data(), bytes));
        } else {
          const int source = upper_start + (r - lower_start) % upper_count;
          transfers_.push_back(Transfer::Recv(source, tmp_, bytes));
        }
      } else {
        const int partner = r - d;
        transfers_.push_back(Transfer::Recv(partner, tmp_, bytes));
        transfers_.push_back(Transfer::Send(partner, data_.data(), bytes));
        // Lower ranks without a partner that this rank serves.
        for (int q = std::max(lower_start, p - d); q < upper_start; ++q) {
          if ((q - lower_start) % upper_count == r - upper_start) {
            transfers_.push_back(Transfer::Send(q, data_.data(), bytes));
          }
        }
      }
      LOCKSTEP_RETURN_IF_ERROR(run_.Post(j_, transfers_));
      return true;
    }
    return false;
  }

  // Waits for the posted step and forms lower + upper.
  Status CompleteStep() {
    LOCKSTEP_RETURN_IF_ERROR(run_.WaitPosted());
    if (is_lower_) {
      AddInto(data_.data(), data_.data(), tmp_, data_.size());
    } else {
      AddInto(data_.data(), tmp_, data_.data(), data_.size());
    }
    ++j_;
    return Status::Ok();
  }

  // Completes a posted step, then runs the remaining ones.
  Status Finish(bool posted) {
    while (posted) {
      LOCKSTEP_RETURN_IF_ERROR(CompleteStep());
      LOCKSTEP_ASSIGN_OR_RETURN(posted, PostNext());
    }
    return Status::Ok();
  }

  bool posted = false;  // a step is posted and not yet completed

 private:
  CollectiveRun run_;
  std::span<float> data_;
  std::vector<float> own_tmp_;
  float* tmp_ = nullptr;
  int steps_ = 0;
  int j_ = 0;
  bool is_lower_ = false;
  std::vector<Transfer> transfers_;
};

}  // namespace internal

namespace {

using internal::CollectiveRun;
using Transfer = CollectiveRun::Transfer;

Status ReduceScatterAllGather(CollectiveRun& run, std::span<float> data) {
  const int p = run.size();
  const int r = run.rank();
  const int steps = std::countr_zero(static_cast<unsigned>(p));  // p is a power of two
  float* tmp = reinterpret_cast<float*>(run.Scratch(data.size() * sizeof(float) / 2 + 64));
  float* x = data.data();
  // ranges[j] = the range this rank held before step j.
  std::vector<std::pair<size_t, size_t>> ranges;
  size_t lo = 0;
  size_t hi = data.size();
  std::vector<Transfer> transfers;
  for (int j = 0; j < steps; ++j) {
    const int d = 1 << j;
    const int partner = r ^ d;
    const size_t mid = lo + (hi - lo) / 2;
    const bool is_lower = (r & d) == 0;
    const size_t keep_lo = is_lower ? lo : mid;
    const size_t keep_hi = is_lower ? mid : hi;
    const size_t give_lo = is_lower ? mid : lo;
    const size_t give_hi = is_lower ? hi : mid;
    transfers.clear();
    transfers.push_back(Transfer::Recv(partner, tmp, (keep_hi - keep_lo) * sizeof(float)));
    transfers.push_back(Transfer::Send(partner, x + give_lo, (give_hi - give_lo) * sizeof(float)));
    LOCKSTEP_RETURN_IF_ERROR(run.Step(j, transfers));
    if (is_lower) {
      AddInto(x + keep_lo, x + keep_lo, tmp, keep_hi - keep_lo);
    } else {
      AddInto(x + keep_lo, tmp, x + keep_lo, keep_hi - keep_lo);
    }
    ranges.emplace_back(lo, hi);
    lo = keep_lo;
    hi = keep_hi;
  }
  // Allgather: undo the halvings, last first. The partner holds the sibling
  // half of the range both held before step j.
  for (int j = steps - 1; j >= 0; --j) {
    const int partner = r ^ (1 << j);
    const auto [parent_lo, parent_hi] = ranges[j];
    const bool is_lower = (r & (1 << j)) == 0;  // kept [parent_lo, mid) at step j
    const size_t other_lo = is_lower ? hi : parent_lo;
    const size_t other_hi = is_lower ? parent_hi : lo;
    transfers.clear();
    transfers.push_back(
        Transfer::Recv(partner, x + other_lo, (other_hi - other_lo) * sizeof(float)));
    transfers.push_back(Transfer::Send(partner, x + lo, (hi - lo) * sizeof(float)));
    LOCKSTEP_RETURN_IF_ERROR(run.Step(steps + (steps - 1 - j), transfers));
    lo = parent_lo;
    hi = parent_hi;
  }
  return Status::Ok();
}

}  // namespace

Status Communicator::AllReduceSum(std::span<float> data, AllReduceAlgorithm algorithm) {
  const int p = size();
  if (p == 1 || data.empty()) {
    ++collective_count_;  // the call number is taken as by every collective
    return Status::Ok();
  }
  const bool power_of_two = std::has_single_bit(static_cast<unsigned>(p));
  if (algorithm == AllReduceAlgorithm::kAuto) {
    algorithm = power_of_two && data.size_bytes() >= world_->options.allreduce_switch_bytes
                    ? AllReduceAlgorithm::kReduceScatterAllGather
                    : AllReduceAlgorithm::kRecursiveDoubling;
  }
  // Reduce-scatter needs a power of two; elsewhere recursive doubling gives
  // the same (pruned) tree.
  if (algorithm == AllReduceAlgorithm::kReduceScatterAllGather && power_of_two) {
    internal::CollectiveRun run(*this, "allreduce");
    return ReduceScatterAllGather(run, data);
  }
  internal::RecursiveDoublingSum sum(*this, data, {});
  LOCKSTEP_ASSIGN_OR_RETURN(const bool posted, sum.PostNext());
  return sum.Finish(posted);
}

Result<PendingAllReduce> Communicator::StartAllReduceSum(std::span<float> data) {
  PendingAllReduce pending;
  if (size() == 1 || data.empty()) {
    ++collective_count_;  // the same call numbers as AllReduceSum
    return pending;
  }
  pending.sum_ = std::make_unique<internal::RecursiveDoublingSum>(*this, data,
                                                                  std::vector<float>(data.size()));
  LOCKSTEP_ASSIGN_OR_RETURN(pending.sum_->posted, pending.sum_->PostNext());
  return pending;
}

PendingAllReduce::PendingAllReduce() = default;
PendingAllReduce::PendingAllReduce(PendingAllReduce&&) noexcept = default;
PendingAllReduce& PendingAllReduce::operator=(PendingAllReduce&&) noexcept = default;
PendingAllReduce::~PendingAllReduce() = default;

Status PendingAllReduce::Finish() {
  if (sum_ == nullptr) return Status::Ok();
  Status status = sum_->Finish(sum_->posted);
  sum_.reset();
  return status;
}

}  // namespace lockstep::transport
