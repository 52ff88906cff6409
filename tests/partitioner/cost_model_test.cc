#include "lockstep/partitioner/cost_model.h"

#include <gtest/gtest.h>

#include "lockstep/partitioner/collective_cost.h"
#include "partitioner/test_models.h"

namespace lockstep::partitioner {
namespace {

// A copy: callers pass temporaries (Find(model.StagePass(...), "x")), and a
// reference into one dangles (ASan found it).
OpCost Find(const PassCost& pass, const std::string& name) {
  for (const OpCost& op : pass.ops) {
    if (op.name == name) return op;
  }
  ADD_FAILURE() << "no op " << name;
  return OpCost{};
}

Workload Decode(int batch) {
  Workload w;
  w.batch_size = batch;
  w.prompt_length = 32;
  w.generated_length = 16;
  w.weight_type = ElementType::kBF16;
  w.activation_type = ElementType::kF32;
  return w;
}

// tiny: vocab 500, hidden 128, ffn 352, 8 heads, 2 KV heads, head_dim 16.
TEST(CostModelTest, MatmulByHand) {
  ModelConfig m = *ModelPreset("tiny");
  ClusterSpec c = testing::TestCluster(1);
  CostModel model(m, c, Decode(2), 1, 1);
  PassCost pass = model.StagePass({0, 3, false, false}, PassShape::Decode(2, 40));
  const OpCost& qkv = Find(pass, "attn_qkv");
  // 2 tokens x 128 inputs x (128 + 2 x 32) rows.
  EXPECT_EQ(qkv.flops, 2.0 * 2 * 128 * 192);
  EXPECT_EQ(qkv.bytes, 192.0 * 128 * 2 + 2.0 * 128 * 4 + 2.0 * 192 * 4);
  EXPECT_DOUBLE_EQ(qkv.compute_s, qkv.flops / 1e11);  // bf16 x f32 computes in f32
  EXPECT_DOUBLE_EQ(qkv.memory_s, qkv.bytes / 1e10);
  EXPECT_EQ(qkv.bound, OpBound::kMemory);
  EXPECT_DOUBLE_EQ(qkv.time_s, qkv.memory_s + 3e-6);  // three launches
  EXPECT_EQ(qkv.count, 3);
  const OpCost& attention = Find(pass, "attention");
  // 2 sequences x 8 heads x 40 keys x (4 x 16 + 5) flops; K and V of 2 heads read once.
  EXPECT_EQ(attention.flops, 2.0 * 8 * 40 * (4 * 16 + 5));
  EXPECT_EQ(attention.bytes, 2.0 * 40 * 2 * 32 * 4 + 2 * 2.0 * 32 * 4 + 2 * 2.0 * 128 * 4);
  // One stage without tp: no collectives, no embedding, no lm_head.
  for (const OpCost& op : pass.ops) EXPECT_NE(op.bound, OpBound::kCommunication) << op.name;
  double sum = 0;
  for (const OpCost& op : pass.ops) sum += op.total_s();
  EXPECT_DOUBLE_EQ(pass.time_s, sum);
  EXPECT_EQ(pass.ops.size(), 11u);  // the per-layer operators
}

// With the kernels' measured rates (lockstep calibrate) a matmul takes its
// flops over the rate measured for its token count -- not the FMA peak --
// and attention likewise; everything else is as before.
TEST(CostModelTest, MeasuredRatesTimeMatmulsAndAttention) {
  ModelConfig m = *ModelPreset("tiny");
  ClusterSpec c = testing::TestCluster(1);
  c.chip.matmul_flops[ElementType::kBF16] = {{1, {{1, 2e9}, {16, 8e9}}}};
  c.chip.attention_flops = {{1, 1e9}};
  Workload w = Decode(16);
  CostModel model(m, c, w, 1, 1);
  PassCost decode = model.StagePass({0, 3, false, false}, PassShape::Decode(16, 40));
  const OpCost& qkv = Find(decode, "attn_qkv");
  EXPECT_DOUBLE_EQ(qkv.compute_s, qkv.flops / 8e9);  // 16 tokens: the 16-token rate
  EXPECT_DOUBLE_EQ(qkv.time_s, std::max(qkv.compute_s, qkv.memory_s) + 3e-6);
  const OpCost& attention = Find(decode, "attention");
  EXPECT_DOUBLE_EQ(attention.compute_s, attention.flops / 1e9);
  // A decode step's attention at the decode rate when measured; a prefill's
  // keeps the prefill rate.
  {
    ClusterSpec with_decode = c;
    with_decode.chip.decode_attention_flops = {{1, 0.25e9}};
    CostModel d(m, with_decode, w, 1, 1);
    const OpCost& slow =
        Find(d.StagePass({0, 3, false, false}, PassShape::Decode(16, 40)), "attention");
    EXPECT_DOUBLE_EQ(slow.compute_s, slow.flops / 0.25e9);
    const OpCost& prefill =
        Find(d.StagePass({0, 3, false, false}, PassShape::Prefill(1, 0, 32)), "attention");
    EXPECT_DOUBLE_EQ(prefill.compute_s, prefill.flops / 1e9);
  }
  const OpCost& swiglu = Find(decode, "swiglu");
  EXPECT_DOUBLE_EQ(swiglu.compute_s, swiglu.flops / 1e11);  // not a matmul: the peak
  // One token: the 1-token rate, which here is bandwidth-like, so memory-bound.
  CostModel one(m, c, Decode(1), 1, 1);
  const OpCost& down =
      Find(one.StagePass({0, 3, false, false}, PassShape::Decode(1, 40)), "ffn_down");
  EXPECT_DOUBLE_EQ(down.compute_s, down.flops / 2e9);
  // The same plan without the tables is predicted faster: the peak is an
  // upper bound of every measured rate here.
  ClusterSpec peak = c;
  peak.chip.matmul_flops.clear();
  peak.chip.attention_flops.clear();
  CostModel optimistic(m, peak, w, 1, 1);
  EXPECT_LT(optimistic.StagePass({0, 3, false, false}, PassShape::Decode(16, 40)).time_s,
            decode.time_s);
  // --compute bf16 times its matmuls with the bf16 compute's own table.
  c.chip.bf16_compute_matmul_flops = {{1, {{1, 1e9}, {16, 4e9}}}};
  Workload bf16c = w;
  bf16c.compute = MatmulCompute::kBf16;
  CostModel dot(m, c, bf16c, 1, 1);
  const OpCost& qkv_dot = Find(dot.StagePass({0, 3, false, false}, PassShape::Decode(16, 40)),
                               "attn_qkv");
  EXPECT_DOUBLE_EQ(qkv_dot.compute_s, qkv_dot.flops / 4e9);
  // The float compute's plan ignores it.
  CostModel float_again(m, c, w, 1, 1);
  EXPECT_DOUBLE_EQ(
      Find(float_again.StagePass({0, 3, false, false}, PassShape::Decode(16, 40)), "attn_qkv")
          .compute_s,
      qkv.compute_s);
}

// A sliding window (tiny-mistral: 40) caps the keys a query visits and a
// block of queries reads; q/k/v biases add one operator.
TEST(CostModelTest, SlidingWindowAndBiases) {
  ClusterSpec c = testing::TestCluster(1);
  const ModelConfig windowed = *ModelPreset("tiny-mistral");
  CostModel model(windowed, c, Decode(2), 1, 1);
  const OpCost& attention =
      Find(model.StagePass({0, 3, false, false}, PassShape::Decode(2, 100)), "attention");
  // Decode at position 99: 40 keys visited and read (not 100).
  EXPECT_EQ(attention.flops, 2.0 * 8 * 40 * (4 * 16 + 5));
  EXPECT_EQ(attention.bytes, 2.0 * 40 * 2 * 32 * 4 + 2 * 2.0 * 32 * 4 + 2 * 2.0 * 128 * 4);
  // A prefill of 100 tokens from position 0: sum of min(p + 1, 40) keys; two
  // blocks of 64 queries read [0, 64) and [25, 100).
  CostModel prefill(windowed, c, Decode(1), 1, 1);
  const OpCost& p =
      Find(prefill.StagePass({0, 3, false, false}, PassShape::Prefill(1, 0, 100)), "attention");
  const double visits = 40.0 * 41 / 2 + 60.0 * 40;
  EXPECT_EQ(p.flops, 8 * visits * (4 * 16 + 5));
  EXPECT_EQ(p.bytes, (64.0 + 75.0) * 2 * 32 * 4 + 2 * 100.0 * 32 * 4 + 2 * 100.0 * 128 * 4);

  CostModel biased(*ModelPreset("tiny-qwen2"), c, Decode(2), 1, 1);
  const PassCost pass = biased.StagePass({0, 3, false, false}, PassShape::Decode(2, 40));
  EXPECT_EQ(pass.ops.size(), 12u);
  EXPECT_EQ(Find(pass, "qkv_bias").flops, 2.0 * 192);
}

TEST(CostModelTest, CollectivesAreTheTransportAlgorithms) {
  ModelConfig m = *ModelPreset("tiny");
  ClusterSpec c = testing::TestCluster(8);
  CostModel model(m, c, Decode(1), 4, 2);
  PassCost pass = model.StagePass({1, 2, false, true}, PassShape::Decode(1, 20));
  // Stage 1 = ranks 4..7: one node. One token of 128 f32 = 512 bytes.
  EXPECT_DOUBLE_EQ(Find(pass, "attn_allreduce").time_s, AllreduceCost(c, {4, 5, 6, 7}, 512).time_s);
  EXPECT_EQ(Find(pass, "ffn_allreduce").count, 2);
  // Logits: 1 x 500 f32 gathered.
  EXPECT_DOUBLE_EQ(Find(pass, "logits_allgather").time_s,
                   AllgatherCost(c, {4, 5, 6, 7}, 2000).time_s);
  // Vocabulary rows 125 per rank.
  EXPECT_EQ(Find(pass, "lm_head").flops, 2.0 * 1 * 125 * 128);
  // Prefill: 32 tokens x 512 bytes = 16 kB: reduce-scatter + allgather.
  PassCost prefill = model.StagePass({1, 2, false, true}, PassShape::Prefill(1, 0, 32));
  EXPECT_DOUBLE_EQ(Find(prefill, "attn_allreduce").time_s,
                   AllreduceCost(c, {4, 5, 6, 7}, 32 * 512).time_s);
  EXPECT_EQ(model.HandoffBytes(3, 32), 3 * 32 * 128 * 4);
  EXPECT_EQ(model.HandoffBytes(3, 1), 3 * 128 * 4);
  EXPECT_EQ(model.HopLink(0, 1), c.inter_node_link);  // ranks 0..3 -> 4..7
  EXPECT_EQ(model.HopLink(1, 0), c.inter_node_link);
}

TEST(CostModelTest, UnevenRanksWaitForTheSlowest) {
  // ffn 37 over tp 4: rows 9, 9, 9, 10. Rank 3 is the slowest.
  ModelConfig m = testing::Shape("odd-b", 1000, 130, 37, 2, 16, 16, 8);
  ClusterSpec c = testing::TestCluster(4);
  c.chip.op_overhead_s = 0;
  CostModel model(m, c, Decode(64), 4, 1);
  PassCost pass = model.StagePass({0, 2, true, true}, PassShape::Prefill(64, 0, 32));
  ASSERT_EQ(pass.tp_ranks.size(), 4u);
  EXPECT_GT(pass.tp_ranks[3].total(), pass.tp_ranks[0].total());
  for (const RankBusy& r : pass.tp_ranks) EXPECT_LE(r.total(), pass.time_s * (1 + 1e-12));
  EXPECT_NEAR(pass.tp_ranks[3].total(), pass.time_s, 1e-12 * pass.time_s);
}

TEST(CostModelTest, NeverSlowerWithMoreBandwidthOrFlops) {
  ModelConfig m = *ModelPreset("llama-2-7b");
  for (Phase phase : {Phase::kPrefill, Phase::kDecode}) {
    double previous = 1e300;
    for (double scale : {0.25, 1.0, 4.0, 16.0}) {
      ClusterSpec c = testing::TestCluster(8);
      c.chip.memory_bandwidth_bytes_per_s *= scale;
      c.intra_node_link.bandwidth_bytes_per_s *= scale;
      c.inter_node_link.bandwidth_bytes_per_s *= scale;
      c.chip.peak_flops[static_cast<int>(ElementType::kF32)] *= scale;
      CostModel model(m, c, Decode(4), 2, 4);
      const PassShape shape =
          phase == Phase::kDecode ? PassShape::Decode(4, 64) : PassShape::Prefill(4, 0, 64);
      double t = model.StagePass({3, 8, false, true}, shape).time_s;
      EXPECT_LT(t, previous) << PhaseName(phase) << " scale " << scale;
      previous = t;
    }
  }
}

TEST(CostModelTest, DecodeAttentionGrowsWithContext) {
  ModelConfig m = *ModelPreset("tiny");
  CostModel model(m, testing::TestCluster(1), Decode(8), 1, 1);
  double short_ctx = model.StagePass({0, 4, true, true}, PassShape::Decode(8, 16)).time_s;
  double long_ctx = model.StagePass({0, 4, true, true}, PassShape::Decode(8, 400)).time_s;
  EXPECT_LT(short_ctx, long_ctx);
}

// Chunked prefill does the same matmul and attention arithmetic as one pass
// over the whole prompt: the chunks' flops add up exactly.
TEST(CostModelTest, PrefillChunksAddUpToTheWholePrompt) {
  ModelConfig m = *ModelPreset("tiny");
  Workload w = Decode(3);
  w.prompt_length = 200;
  CostModel model(m, testing::TestCluster(2), w, 2, 1);
  const StageShape stage{0, 4, true, true};
  PassCost whole = model.StagePass(stage, PassShape::Prefill(3, 0, 200));
  std::vector<PassCost> chunks;
  for (int64_t begin : {0, 64, 128, 192}) {
    chunks.push_back(
        model.StagePass(stage, PassShape::Prefill(3, begin, std::min<int64_t>(200, begin + 64))));
  }
  PassCost combined = CombinePasses(chunks);
  EXPECT_EQ(combined.tokens, 200);
  EXPECT_EQ(combined.position, 0);
  ASSERT_EQ(combined.ops.size(), whole.ops.size());
  for (size_t i = 0; i < whole.ops.size(); ++i) {
    if (whole.ops[i].name == "lm_head" || whole.ops[i].name == "final_norm" ||
        whole.ops[i].name == "sampling") {
      continue;  // once per pass: the chunks repeat it (the runtime keeps the last)
    }
    EXPECT_DOUBLE_EQ(combined.ops[i].flops, whole.ops[i].flops) << whole.ops[i].name;
  }
  // Attention of a chunk at position p: each of its t queries sees p + its index + 1 keys.
  const OpCost& attention = chunks[1].ops[5];
  ASSERT_EQ(attention.name, "attention");
  EXPECT_EQ(attention.flops, 3.0 * 4 * (64.0 * 64 + 64.0 * 65 / 2) * (4 * 16 + 5));  // 4 heads/rank
  // Chunks re-read the weights: more memory traffic than one pass.
  EXPECT_GT(combined.ops[3].bytes, whole.ops[3].bytes);
  EXPECT_GT(combined.time_s, 0.0);
}

TEST(CostModelTest, RatesForTheTypesUsed) {
  ClusterSpec groq = testing::TestCluster(8);
  groq.chip.peak_flops = {};
  groq.chip.peak_flops[static_cast<int>(ElementType::kF16)] = 1e14;
  Workload w = Decode(1);  // f32 activations: no f32 rate
  Status s = CostModel::CheckRates(groq, w);
  EXPECT_NE(s.message().find("has no peak_flops for f32"), std::string::npos) << s.message();
  w.activation_type = ElementType::kF16;
  w.weight_type = ElementType::kInt8;
  EXPECT_TRUE(CostModel::CheckRates(groq, w).ok());
}

}  // namespace
}  // namespace lockstep::partitioner
