// What one rank holds of a model: the explicit shard description the loader
// and the engine work from.
//
// A rank is one tensor-parallel rank (tp_rank of tp_size) of one pipeline
// stage (pp_stage of pp_size). The stage runs layers [layer_begin, layer_end);
// the first stage also does the embedding lookup and the last one the final
// norm and the lm_head. Within a stage, tensor parallelism splits
// (DESIGN.md section 3.2, partitioner::TensorRole):
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
#pragma once

#include <cstdint>

#include "lockstep/base/status.h"
#include "lockstep/kernels/matmul.h"
#include "lockstep/partitioner/model_config.h"

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

  int num_layers() const { return layer_end - layer_begin; }

  // The shard of tp rank `tp_rank` (of tp_size, a power of two dividing
  // num_heads and kernels::kNumSegments) in the pipeline stage running
  // layers [layer_begin, layer_end) (stage pp_stage of pp_size).
  // InvalidArgument naming the field when the split is impossible.
  static Result<ShardSpec> Make(const partitioner::ModelConfig& config, int tp_size, int tp_rank,
                                int pp_size, int pp_stage, int layer_begin, int layer_end);
  // Everything on one rank.
  static ShardSpec SingleRank(const partitioner::ModelConfig& config);

  bool operator==(const ShardSpec& other) const;
};

}  // namespace lockstep::runtime
