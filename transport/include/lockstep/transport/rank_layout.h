// The process layout of a plan: tp x pp chips, world rank = stage * tp + tp_rank
// (docs/architecture.md, "Process layout"). A tensor-parallel group is tp consecutive world ranks
// (one pipeline stage), so `mpirun --map-by` keeps its allreduces inside a
// node; a pipeline group is the pp ranks with the same tp_rank.
//
// The partitions returned here are what Communicator::Split takes.
//
// Thread safety: an immutable value.
#pragma once

#include <vector>

#include "lockstep/base/status.h"

namespace lockstep::transport {

class RankLayout {
 public:
  // tp and pp must be positive. tp need not be a power of two here, but the
  // determinism contract for tensor-parallel matmuls asks for one.
  static Result<RankLayout> Create(int tp, int pp);

  int tp() const { return tp_; }
  int pp() const { return pp_; }
  int num_ranks() const { return tp_ * pp_; }

  int WorldRank(int stage, int tp_rank) const { return stage * tp_ + tp_rank; }
  int Stage(int world_rank) const { return world_rank / tp_; }
  int TpRank(int world_rank) const { return world_rank % tp_; }

  // pp groups of tp world ranks each: group s = {s*tp, ..., s*tp + tp-1}.
  std::vector<std::vector<int>> TpGroups() const;
  // tp groups of pp world ranks each: group t = {t, tp + t, ..., (pp-1)*tp + t}.
  std::vector<std::vector<int>> PpGroups() const;

 private:
  RankLayout(int tp, int pp) : tp_(tp), pp_(pp) {}
  int tp_ = 1;
  int pp_ = 1;
};

}  // namespace lockstep::transport
