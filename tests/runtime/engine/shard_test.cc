// Shard descriptions: what a tp rank of a pipeline stage holds.
#include "lockstep/engine/shard.h"

#include <gtest/gtest.h>

#include "lockstep/partitioner/chip_presets.h"
#include "lockstep/partitioner/planner.h"

namespace lockstep::runtime {
namespace {

partitioner::ModelConfig Tiny() {
  Result<partitioner::ModelConfig> c = partitioner::ModelPreset("tiny");
  EXPECT_TRUE(c.ok());
  return *c;  // 8 heads, 2 KV heads, head_dim 16, hidden 128, ffn 352, vocab 500, 4 layers
}

TEST(ShardTest, SingleRankHoldsEverything) {
  const partitioner::ModelConfig c = Tiny();
  ShardSpec s = ShardSpec::SingleRank(c);
  EXPECT_EQ(s.num_layers(), 4);
  EXPECT_TRUE(s.has_embedding && s.has_lm_head);
  EXPECT_EQ(s.q_heads, (IndexRange{0, 8}));
  EXPECT_EQ(s.kv_heads, (IndexRange{0, 2}));
  EXPECT_EQ(s.ffn, (IndexRange{0, 352}));
  EXPECT_EQ(s.vocab, (IndexRange{0, 500}));
  EXPECT_EQ(s.embedding_columns, (IndexRange{0, 128}));
  EXPECT_EQ(s.wo_slice.columns(), 128);
  EXPECT_EQ(s.down_slice.segment_begin, 0);
  EXPECT_EQ(s.down_slice.segment_end, kernels::kNumSegments);
}

TEST(ShardTest, TensorParallelSplitsHeadsSegmentsAndVocabulary) {
  const partitioner::ModelConfig c = Tiny();
  for (int tp : {2, 4, 8}) {
    int64_t ffn_end = 0, vocab_end = 0, heads_end = 0;
    for (int r = 0; r < tp; ++r) {
      Result<ShardSpec> s = ShardSpec::Make(c, tp, r, 1, 0, 0, 4);
      ASSERT_TRUE(s.ok()) << s.status().message();
      // Contiguous, covering ranges.
      EXPECT_EQ(s->q_heads.begin, heads_end);
      EXPECT_EQ(s->ffn.begin, ffn_end);
      EXPECT_EQ(s->vocab.begin, vocab_end);
      heads_end = s->q_heads.end;
      ffn_end = s->ffn.end;
      vocab_end = s->vocab.end;
      EXPECT_EQ(s->q_heads.size(), 8 / tp);
      // wo's reduction shard is exactly this rank's heads.
      EXPECT_EQ(s->wo_slice.column_begin(), s->q_heads.begin * 16);
      EXPECT_EQ(s->wo_slice.column_end(), s->q_heads.end * 16);
      EXPECT_EQ(s->wo_slice.segment_end - s->wo_slice.segment_begin, kernels::kNumSegments / tp);
      // Every query head's KV head is held.
      for (int64_t h = s->q_heads.begin; h < s->q_heads.end; ++h) {
        const int64_t kv = h / 4;  // 4 query heads per KV head
        EXPECT_GE(kv, s->kv_heads.begin);
        EXPECT_LT(kv, s->kv_heads.end);
      }
      EXPECT_EQ(s->kv_heads.size(), tp <= 2 ? 2 / tp : 1);
    }
    EXPECT_EQ(heads_end, 8);
    EXPECT_EQ(ffn_end, 352);
    EXPECT_EQ(vocab_end, 500);
  }
}

TEST(ShardTest, PipelineStages) {
  const partitioner::ModelConfig c = Tiny();
  Result<ShardSpec> first = ShardSpec::Make(c, 1, 0, 2, 0, 0, 3);
  Result<ShardSpec> last = ShardSpec::Make(c, 1, 0, 2, 1, 3, 4);
  ASSERT_TRUE(first.ok() && last.ok());
  EXPECT_TRUE(first->has_embedding);
  EXPECT_FALSE(first->has_lm_head);
  EXPECT_FALSE(last->has_embedding);
  EXPECT_TRUE(last->has_lm_head);
  EXPECT_EQ(first->num_layers(), 3);
  EXPECT_EQ(last->num_layers(), 1);
}

TEST(ShardTest, ImpossibleSplitsAreErrors) {
  const partitioner::ModelConfig c = Tiny();
  EXPECT_FALSE(ShardSpec::Make(c, 3, 0, 1, 0, 0, 4).ok());   // not a power of two
  EXPECT_FALSE(ShardSpec::Make(c, 16, 0, 1, 0, 0, 4).ok());  // more ranks than heads
  EXPECT_FALSE(ShardSpec::Make(c, 2, 2, 1, 0, 0, 4).ok());   // rank out of range
  EXPECT_FALSE(ShardSpec::Make(c, 1, 0, 2, 2, 0, 4).ok());   // stage out of range
  EXPECT_FALSE(ShardSpec::Make(c, 1, 0, 1, 0, 2, 5).ok());   // layers out of range
  Result<ShardSpec> s = ShardSpec::Make(c, 16, 0, 1, 0, 0, 4);
  EXPECT_NE(s.status().message().find("tp 16 exceeds the 8 attention heads of 'tiny'"),
            std::string::npos)
      << s.status().message();
}

}  // namespace
}  // namespace lockstep::runtime

namespace lockstep::runtime {
namespace {

// One source of truth: the spec of a plan's rank, and its shard list, are
// the partitioner's -- for every rank of many plans, including uneven
// hidden/vocabulary parts, replicated KV heads and tied embeddings.
TEST(ShardTest, FromPlanMatchesThePlansShards) {
  partitioner::ModelConfig tied = Tiny();
  tied.name = "tied";
  tied.tie_word_embeddings = true;
  tied.vocab_size = 501;   // uneven vocabulary parts
  tied.hidden_size = 132;  // uneven hidden parts for tp 8 (q_dim stays 8 x 16)
  for (const partitioner::ModelConfig& c : {Tiny(), tied}) {
    for (auto [tp, pp] : {std::pair{1, 1}, std::pair{2, 1}, std::pair{8, 1}, std::pair{1, 4},
                          std::pair{2, 2}, std::pair{4, 2}}) {
      partitioner::PlanRequest request;
      request.model = c;
      request.cluster = *partitioner::ChipPreset("host", tp * pp);
      request.workload.weight_type = partitioner::ElementType::kF16;
      request.workload.prompt_length = 32;
      request.workload.generated_length = 32;
      request.tp = tp;
      request.pp = pp;
      Result<partitioner::Plan> plan = partitioner::MakePlan(request);
      ASSERT_TRUE(plan.ok()) << plan.status().message();
      for (int r = 0; r < plan->num_ranks(); ++r) {
        const ShardSpec s = ShardSpec::FromPlan(*plan, r);
        EXPECT_EQ(s.tp_size, tp);
        EXPECT_EQ(s.pp_size, pp);
        EXPECT_EQ(s.layer_begin, plan->StageOfRank(r).layer_begin);
        EXPECT_EQ(s.layer_end, plan->StageOfRank(r).layer_end);
        EXPECT_EQ(s.Shards(c, partitioner::ElementType::kF16), plan->RankShards(r))
            << c.name << " tp " << tp << " pp " << pp << " rank " << r;
        // Make() from the same numbers gives the same spec.
        Result<ShardSpec> made =
            ShardSpec::Make(c, tp, s.tp_rank, pp, s.pp_stage, s.layer_begin, s.layer_end);
        ASSERT_TRUE(made.ok());
        EXPECT_EQ(*made, s);
      }
    }
  }
}

}  // namespace
}  // namespace lockstep::runtime
