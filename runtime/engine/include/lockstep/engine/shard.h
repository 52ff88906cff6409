// What one rank holds of a model: the explicit shard description the loader
// and the engine work from.
//
// A rank is one tensor-parallel rank (tp_rank of tp_size) of one pipeline
// stage (pp_stage of pp_size). The stage runs layers [layer_begin, layer_end);
// the first stage also does the embedding lookup and the last one the final
// norm and the lm_head. Within a stage, tensor parallelism splits
// (docs/determinism.md, partitioner::TensorRole):
//   - query heads: [q_heads.begin, q_heads.end), num_heads / tp_size each;
//   - KV heads: num_kv_heads / tp_size each, or, when tp_size exceeds
//     num_kv_heads, the one KV head its query heads read (replicated);
//   - wq/wk/wv rows of those heads; wo columns = the same heads, which are
//     exactly the canonical segments ReductionSlice::Shard(q_dim, r, tp);
//   - FFN: gate/up rows and w_down columns [ffn.begin, ffn.end) =
//     ReductionSlice::Shard(intermediate_size, r, tp) columns;
//   - lm_head rows (vocabulary) [vocab.begin, vocab.end);
//   - embedding hidden columns [embedding_columns.begin, .end).
// One rank (tp 1, pp 1) holds everything: the degenerate case.
//
// One source of truth: every range here is derived from the partitioner's
// TpSlice (partitioner/sharding.h) and StagePlan (partitioner/plan.h); the
// rules are not re-implemented. FromPlan gives the spec of a rank of a plan,
// Make the spec of a tp rank of a pipeline stage without a plan, and
// Shards() the list of tensor slices (HDF5 hyperslabs) the rank loads, which
// for a plan's rank equals Plan::RankShards(rank).
#pragma once

#include <cstdint>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/kernels/matmul.h"
#include "lockstep/partitioner/element_type.h"
#include "lockstep/partitioner/model_config.h"
#include "lockstep/partitioner/plan.h"
#include "lockstep/partitioner/sharding.h"

namespace lockstep::runtime {

struct IndexRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
  bool operator==(const IndexRange&) const = default;
};

struct ShardSpec {
  int tp_size = 1;
  int tp_rank = 0;
  int pp_size = 1;
  int pp_stage = 0;
  int layer_begin = 0;  // layers of this stage: [layer_begin, layer_end)
  int layer_end = 0;
  bool has_embedding = true;  // first stage
  bool has_lm_head = true;    // last stage

  IndexRange q_heads;                  // query heads held
  IndexRange kv_heads;                 // KV heads held
  IndexRange ffn;                      // FFN rows (gate/up) = w_down columns
  IndexRange vocab;                    // lm_head rows
  IndexRange embedding_columns;        // hidden columns of the embedding table
  kernels::ReductionSlice wo_slice;    // reduction part of wo (over q_dim)
  kernels::ReductionSlice down_slice;  // reduction part of w_down (over intermediate_size)
  partitioner::TpSlice tp_slice;       // the partitioner's description the above come from

  int num_layers() const { return layer_end - layer_begin; }

  // The shard of tp rank `tp_rank` (of tp_size, a power of two dividing
  // num_heads and kernels::kNumSegments) in the pipeline stage running
  // layers [layer_begin, layer_end) (stage pp_stage of pp_size).
  // InvalidArgument naming the field when the split is impossible
  // (partitioner::CheckTensorParallel's message for tp).
  static Result<ShardSpec> Make(const partitioner::ModelConfig& config, int tp_size, int tp_rank,
                                int pp_size, int pp_stage, int layer_begin, int layer_end);
  // The shard of world rank `rank` of `plan` (0 <= rank < plan.num_ranks()).
  static ShardSpec FromPlan(const partitioner::Plan& plan, int rank);
  // From the partitioner's description of a tp rank and a stage.
  static ShardSpec FromSlices(const partitioner::ModelConfig& config,
                              const partitioner::TpSlice& slice,
                              const partitioner::StagePlan& stage, int pp_size);
  // Everything on one rank.
  static ShardSpec SingleRank(const partitioner::ModelConfig& config);

  // The tensor slices this rank loads, in file order (embedding, layers,
  // final norm, lm_head), matrices stored as `weight_type`: exactly
  // partitioner::ShardTensor of every tensor of the stage. For a plan's rank
  // this equals Plan::RankShards(rank).
  std::vector<partitioner::TensorShard> Shards(const partitioner::ModelConfig& config,
                                               partitioner::ElementType weight_type) const;

  bool operator==(const ShardSpec& other) const;
};

}  // namespace lockstep::runtime
