#include "lockstep/engine/shard.h"

#include "lockstep/base/check.h"

namespace lockstep::runtime {
namespace {

IndexRange ToIndexRange(partitioner::Range r) {
  return {r.begin, r.end};
}

}  // namespace

ShardSpec ShardSpec::FromSlices(const partitioner::ModelConfig& c,
                                const partitioner::TpSlice& slice,
                                const partitioner::StagePlan& stage, int pp_size) {
  ShardSpec s;
  s.tp_size = slice.tp;
  s.tp_rank = slice.tp_rank;
  s.pp_size = pp_size;
  s.pp_stage = stage.stage;
  s.layer_begin = stage.layer_begin;
  s.layer_end = stage.layer_end;
  s.has_embedding = stage.embedding;
  s.has_lm_head = stage.lm_head;
  s.q_heads = ToIndexRange(slice.q_heads);
  s.kv_heads = ToIndexRange(slice.kv_heads);
  s.ffn = ToIndexRange(slice.ffn);
  s.vocab = ToIndexRange(slice.vocab);
  s.embedding_columns = ToIndexRange(slice.hidden);
  const int seg_begin = static_cast<int>(slice.segments.begin);
  const int seg_end = static_cast<int>(slice.segments.end);
  s.wo_slice = {c.q_dim(), seg_begin, seg_end};
  s.down_slice = {c.intermediate_size, seg_begin, seg_end};
  s.tp_slice = slice;
  // The partitioner's rules make these coincide (sharding.h); the engine
  // relies on it, so keep the invariants checked.
  LOCKSTEP_CHECK(s.wo_slice.column_begin() == s.q_heads.begin * c.head_dim &&
                     s.wo_slice.column_end() == s.q_heads.end * c.head_dim,
                 "wo columns of tp rank {} are not its heads", slice.tp_rank);
  LOCKSTEP_CHECK(
      s.down_slice.column_begin() == s.ffn.begin && s.down_slice.column_end() == s.ffn.end,
      "w_down columns of tp rank {} are not its ffn rows", slice.tp_rank);
  return s;
}

Result<ShardSpec> ShardSpec::Make(const partitioner::ModelConfig& c, int tp_size, int tp_rank,
                                  int pp_size, int pp_stage, int layer_begin, int layer_end) {
  LOCKSTEP_RETURN_IF_ERROR(partitioner::CheckTensorParallel(c, tp_size));
  if (tp_rank < 0 || tp_rank >= tp_size) {
    return InvalidArgument("tp rank {} outside [0, {})", tp_rank, tp_size);
  }
  if (pp_size < 1 || pp_stage < 0 || pp_stage >= pp_size) {
    return InvalidArgument("pipeline stage {} outside [0, {})", pp_stage, pp_size);
  }
  if (layer_begin < 0 || layer_end > c.num_layers || layer_begin > layer_end) {
    return InvalidArgument("layer range [{}, {}) outside the model's {} layers", layer_begin,
                           layer_end, c.num_layers);
  }
  partitioner::StagePlan stage;
  stage.stage = pp_stage;
  stage.layer_begin = layer_begin;
  stage.layer_end = layer_end;
  stage.embedding = pp_stage == 0;
  stage.lm_head = pp_stage == pp_size - 1;
  return FromSlices(c, partitioner::MakeTpSlice(c, tp_size, tp_rank), stage, pp_size);
}

ShardSpec ShardSpec::FromPlan(const partitioner::Plan& plan, int rank) {
  LOCKSTEP_CHECK(rank >= 0 && rank < plan.num_ranks(), "rank {} outside the plan's {} ranks", rank,
                 plan.num_ranks());
  return FromSlices(plan.request.model, plan.SliceOf(rank), plan.StageOfRank(rank), plan.pp);
}

ShardSpec ShardSpec::SingleRank(const partitioner::ModelConfig& config) {
  Result<ShardSpec> s = Make(config, 1, 0, 1, 0, 0, config.num_layers);
  LOCKSTEP_CHECK(s.ok(), "{}", s.status().message());
  return std::move(s).value();
}

std::vector<partitioner::TensorShard> ShardSpec::Shards(
    const partitioner::ModelConfig& config, partitioner::ElementType weight_type) const {
  partitioner::StagePlan stage;
  stage.stage = pp_stage;
  stage.layer_begin = layer_begin;
  stage.layer_end = layer_end;
  stage.embedding = has_embedding;
  stage.lm_head = has_lm_head;
  std::vector<partitioner::TensorShard> shards;
  for (const partitioner::TensorSpec& t :
       partitioner::StageTensors(config, partitioner::ModelTensors(config), stage)) {
    shards.push_back(partitioner::ShardTensor(config, t, tp_slice, weight_type));
  }
  return shards;
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
         same_slice(down_slice, o.down_slice) && tp_slice == o.tp_slice;
}

}  // namespace lockstep::runtime
