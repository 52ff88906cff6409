#include "lockstep/runtime/shard.h"

#include <bit>

#include "lockstep/base/check.h"

namespace lockstep::runtime {

Result<ShardSpec> ShardSpec::Make(const partitioner::ModelConfig& c, int tp_size, int tp_rank,
                                  int pp_size, int pp_stage, int layer_begin, int layer_end) {
  if (tp_size < 1 || !std::has_single_bit(static_cast<unsigned>(tp_size)) ||
      tp_size > kernels::kNumSegments) {
    return InvalidArgument("tp {} must be a power of two between 1 and {}", tp_size,
                           kernels::kNumSegments);
  }
  if (tp_rank < 0 || tp_rank >= tp_size) {
    return InvalidArgument("tp rank {} outside [0, {})", tp_rank, tp_size);
  }
  if (c.num_heads % tp_size != 0) {
    return InvalidArgument("num_attention_heads {} is not a multiple of tp {}", c.num_heads,
                           tp_size);
  }
  if (pp_size < 1 || pp_stage < 0 || pp_stage >= pp_size) {
    return InvalidArgument("pipeline stage {} outside [0, {})", pp_stage, pp_size);
  }
  if (layer_begin < 0 || layer_end > c.num_layers || layer_begin > layer_end) {
    return InvalidArgument("layer range [{}, {}) outside the model's {} layers", layer_begin,
                           layer_end, c.num_layers);
  }
  ShardSpec s;
  s.tp_size = tp_size;
  s.tp_rank = tp_rank;
  s.pp_size = pp_size;
  s.pp_stage = pp_stage;
  s.layer_begin = layer_begin;
  s.layer_end = layer_end;
  s.has_embedding = pp_stage == 0;
  s.has_lm_head = pp_stage == pp_size - 1;

  const int64_t heads_per_rank = c.num_heads / tp_size;
  s.q_heads = {tp_rank * heads_per_rank, (tp_rank + 1) * heads_per_rank};
  if (tp_size <= c.num_kv_heads) {
    if (c.num_kv_heads % tp_size != 0) {
      return InvalidArgument("num_key_value_heads {} is not a multiple of tp {}", c.num_kv_heads,
                             tp_size);
    }
    const int64_t kv_per_rank = c.num_kv_heads / tp_size;
    s.kv_heads = {tp_rank * kv_per_rank, (tp_rank + 1) * kv_per_rank};
  } else {
    // Fewer KV heads than ranks: each rank keeps the one KV head its query
    // heads belong to (group = num_heads / num_kv_heads query heads per KV head).
    const int64_t group = c.num_heads / c.num_kv_heads;
    const int64_t kv = s.q_heads.begin / group;
    if ((s.q_heads.end - 1) / group != kv) {
      return InvalidArgument("tp {} splits a KV head group of {} query heads unevenly", tp_size,
                             group);
    }
    s.kv_heads = {kv, kv + 1};
  }
  s.wo_slice = kernels::ReductionSlice::Shard(c.q_dim(), tp_rank, tp_size);
  s.down_slice = kernels::ReductionSlice::Shard(c.intermediate_size, tp_rank, tp_size);
  s.ffn = {s.down_slice.column_begin(), s.down_slice.column_end()};
  // wo's reduction shard must be exactly this rank's heads: true when the
  // heads divide evenly, which is checked above; keep the invariant visible.
  if (s.wo_slice.column_begin() != s.q_heads.begin * c.head_dim ||
      s.wo_slice.column_end() != s.q_heads.end * c.head_dim) {
    return InvalidArgument("tp {} does not split q_dim {} on head boundaries", tp_size, c.q_dim());
  }
  s.vocab = {tp_rank * c.vocab_size / tp_size, (tp_rank + 1) * c.vocab_size / tp_size};
  s.embedding_columns = {tp_rank * c.hidden_size / tp_size,
                         (tp_rank + 1) * c.hidden_size / tp_size};
  return s;
}

ShardSpec ShardSpec::SingleRank(const partitioner::ModelConfig& config) {
  Result<ShardSpec> s = Make(config, 1, 0, 1, 0, 0, config.num_layers);
  LOCKSTEP_CHECK(s.ok(), "{}", s.status().message());
  return std::move(s).value();
}

bool ShardSpec::operator==(const ShardSpec& o) const {
  auto same_slice = [](const kernels::ReductionSlice& a, const kernels::ReductionSlice& b) {
    return a.k_global == b.k_global && a.segment_begin == b.segment_begin &&
           a.segment_end == b.segment_end;
  };
  return tp_size == o.tp_size && tp_rank == o.tp_rank && pp_size == o.pp_size &&
         pp_stage == o.pp_stage && layer_begin == o.layer_begin && layer_end == o.layer_end &&
         has_embedding == o.has_embedding && has_lm_head == o.has_lm_head && q_heads == o.q_heads &&
         kv_heads == o.kv_heads && ffn == o.ffn && vocab == o.vocab &&
         embedding_columns == o.embedding_columns && same_slice(wo_slice, o.wo_slice) &&
         same_slice(down_slice, o.down_slice);
}

}  // namespace lockstep::runtime
