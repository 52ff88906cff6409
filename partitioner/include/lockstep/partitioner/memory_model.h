// Memory one rank needs for a workload, by purpose:
//
//   weights       the bytes of its tensor shards (exactly the sum of
//                 TensorShard::bytes, which is what the runtime reads):
//                 with q/k/v biases (qkv_bias) their f32 rows too; with tied
//                 embeddings the table counts twice when one rank holds both
//                 ends (its embedding columns and its lm_head rows are two
//                 packed copies in the runtime)
//   kv_cache      2 (K and V) x its KV heads x head_dim x batch_size x
//                 (prompt_length + generated_length) x activation size, per layer
//   activations   working buffers of the largest prefill pass (T = the
//                 largest micro-batch x the largest prefill chunk, see
//                 Workload::PrefillChunkTokens): T x (3 hidden + 2 q
//                 rows + 2 kv rows + 2 ffn rows) x activation size, plus on
//                 the last stage the f32 logits (local part and gathered)
//   comm_buffers  the allreduce receive buffer (tp > 1) and the pipeline
//                 receive / send buffers (T x hidden x activation size each)
//
// All in bytes; a plan fits when every rank's total is at most the chip's
// memory (ClusterSpec::ChipMemoryBytes). Packing padding, code and the
// runtime's bookkeeping are not counted: leave headroom on real machines.
#pragma once

#include <cstdint>

#include "lockstep/partitioner/cost_model.h"
#include "lockstep/partitioner/model_config.h"
#include "lockstep/partitioner/sharding.h"
#include "lockstep/partitioner/workload.h"

namespace lockstep::partitioner {

struct RankMemory {
  int64_t weights = 0;
  int64_t kv_cache = 0;
  int64_t activations = 0;
  int64_t comm_buffers = 0;
  int64_t total() const { return weights + kv_cache + activations + comm_buffers; }
  bool operator==(const RankMemory&) const = default;
};

// Weight bytes of one layer's shards on the rank holding `slice`.
int64_t LayerWeightBytes(const ModelConfig& model, const TpSlice& slice, ElementType weight_type);
// KV-cache bytes of one layer for the workload.
int64_t LayerKvCacheBytes(const ModelConfig& model, const TpSlice& slice, const Workload& workload);

// The memory of the rank holding `slice` on `stage` (of `pp` stages) when
// micro-batches hold at most `max_micro_batch` sequences.
RankMemory StageRankMemory(const ModelConfig& model, const Workload& workload, const TpSlice& slice,
                           const StageShape& stage, int pp, int max_micro_batch);

}  // namespace lockstep::partitioner
