#include "lockstep/partitioner/sharding.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "lockstep/kernels/matmul.h"
#include "partitioner/test_models.h"

namespace lockstep::partitioner {
namespace {

using testing::OddShapes;
using testing::Shape;

static_assert(kCanonicalSegments == kernels::kNumSegments,
              "the partitioner and the kernels must agree on the segment count");

std::vector<ModelConfig> AllShapes() {
  std::vector<ModelConfig> shapes = OddShapes();
  for (const std::string& name : ModelPresetNames()) shapes.push_back(*ModelPreset(name));
  return shapes;
}

TEST(EvenPartTest, TilesTheRangeInOrder) {
  for (int64_t n : {0, 1, 5, 63, 64, 65, 127, 1000, 28672}) {
    for (int parts : {1, 2, 4, 8, 16, 32, 64}) {
      int64_t next = 0;
      for (int i = 0; i < parts; ++i) {
        Range r = EvenPart(n, parts, i);
        EXPECT_EQ(r.begin, next);
        EXPECT_GE(r.size(), n / parts);
        EXPECT_LE(r.size(), n / parts + 1);
        next = r.end;
      }
      EXPECT_EQ(next, n);
    }
  }
}

// The rule the kernels use: rank r's columns are the canonical segments
// [r*S/tp, (r+1)*S/tp) of the reduction, i.e. SegmentStart of those.
TEST(ShardingTest, RowParallelColumnsAreCanonicalSegments) {
  for (const ModelConfig& m : AllShapes()) {
    for (int tp : ValidTensorParallelSizes(m)) {
      for (int r = 0; r < tp; ++r) {
        TpSlice slice = MakeTpSlice(m, tp, r);
        EXPECT_EQ(slice.segments, (Range{r * 64 / tp, (r + 1) * 64 / tp}));
        for (const TensorSpec& t : ModelTensors(m)) {
          if (t.role != TensorRole::kRowParallel) continue;
          TensorShard s = ShardTensor(m, t, slice, ElementType::kBF16);
          const int64_t k = t.shape[1];
          EXPECT_EQ(s.cols().begin, kernels::SegmentStart(k, r * 64 / tp)) << m.name << t.path;
          EXPECT_EQ(s.cols().end, kernels::SegmentStart(k, (r + 1) * 64 / tp)) << m.name << t.path;
          EXPECT_EQ(s.rows(), (Range{0, t.shape[0]}));
          EXPECT_EQ(s.segments, slice.segments);
        }
      }
    }
  }
}

// Every element of every tensor is held by exactly one rank of the tp group,
// or, for replicated tensors, by every rank meant to hold it. Counted element
// by element on the small shapes.
TEST(ShardingTest, EveryElementOwnedExactlyOnce) {
  for (const ModelConfig& m : OddShapes()) {
    for (int tp : ValidTensorParallelSizes(m)) {
      std::vector<TpSlice> slices;
      for (int r = 0; r < tp; ++r) slices.push_back(MakeTpSlice(m, tp, r));
      std::vector<TensorSpec> tensors = ModelTensors(m);
      if (m.tie_word_embeddings) {
        tensors.push_back(
            {"/tok_embeddings", TensorRole::kLmHead, -1, {m.vocab_size, m.hidden_size}});
      }
      for (const TensorSpec& t : tensors) {
        const int64_t rows = t.shape[0];
        const int64_t cols = t.shape.size() > 1 ? t.shape[1] : 1;
        std::vector<int> owners(rows * cols, 0);
        bool replicated = false;
        for (int r = 0; r < tp; ++r) {
          TensorShard s = ShardTensor(m, t, slices[r], ElementType::kF16);
          replicated = replicated || s.replicated;
          for (int64_t i = s.rows().begin; i < s.rows().end; ++i) {
            for (int64_t j = s.cols().begin; j < s.cols().end; ++j) ++owners[i * cols + j];
          }
        }
        int expected = 1;
        if (t.role == TensorRole::kNorm) expected = tp;
        if (replicated && t.role == TensorRole::kColumnParallel) expected = tp / m.num_kv_heads;
        for (size_t e = 0; e < owners.size(); ++e) {
          ASSERT_EQ(owners[e], expected)
              << m.name << " tp " << tp << " " << t.path << " element " << e;
        }
      }
    }
  }
}

// The same by interval arithmetic on the real presets (too big to count).
TEST(ShardingTest, PresetShardsTileTheirTensors) {
  for (const std::string& name : ModelPresetNames()) {
    ModelConfig m = *ModelPreset(name);
    for (int tp : ValidTensorParallelSizes(m)) {
      for (const TensorSpec& t : ModelTensors(m)) {
        if (t.layer > 0) continue;                          // every layer is sharded alike
        std::map<std::pair<int64_t, int64_t>, int> blocks;  // (row begin, col begin) -> holders
        int64_t held = 0;
        for (int r = 0; r < tp; ++r) {
          TensorShard s = ShardTensor(m, t, MakeTpSlice(m, tp, r), ElementType::kBF16);
          if (++blocks[{s.rows().begin, s.cols().begin}] == 1) held += s.elements();
        }
        int64_t total = 1;
        for (int64_t d : t.shape) total *= d;
        EXPECT_EQ(held, total) << name << " tp " << tp << " " << t.path;
      }
    }
  }
}

// Column-parallel rows feed the row-parallel columns of the same rank, and
// every query head finds its KV head on its own rank.
TEST(ShardingTest, ColumnAndRowParallelSlicesLineUp) {
  for (const ModelConfig& m : AllShapes()) {
    for (int tp : ValidTensorParallelSizes(m)) {
      const std::vector<TensorSpec> tensors = ModelTensors(m);
      for (int r = 0; r < tp; ++r) {
        TpSlice s = MakeTpSlice(m, tp, r);
        auto shard = [&](const char* name) {
          for (const TensorSpec& t : tensors) {
            if (t.path == LayerTensorPath(0, name)) return ShardTensor(m, t, s, ElementType::kF32);
          }
          ADD_FAILURE() << name;
          return TensorShard{};
        };
        EXPECT_EQ(shard("attn/wq").rows(), shard("attn/wo").cols()) << m.name << " tp " << tp;
        EXPECT_EQ(shard("ffn/w_gate").rows(), shard("ffn/w_down").cols()) << m.name;
        EXPECT_EQ(shard("ffn/w_up").rows(), shard("ffn/w_down").cols()) << m.name;
        EXPECT_EQ(shard("attn/wk").rows(), shard("attn/wv").rows());
        const int group = m.num_heads / m.num_kv_heads;
        for (int64_t q = s.q_heads.begin; q < s.q_heads.end; ++q) {
          EXPECT_GE(q / group, s.kv_heads.begin) << m.name << " tp " << tp << " rank " << r;
          EXPECT_LT(q / group, s.kv_heads.end) << m.name << " tp " << tp << " rank " << r;
        }
        EXPECT_EQ(s.kv_replicated, tp > m.num_kv_heads);
        if (s.kv_replicated) {
          EXPECT_EQ(s.kv_heads.size(), 1);
        }
      }
    }
  }
}

TEST(ShardingTest, KvHeadOfEachRankWhenReplicated) {
  ModelConfig m = *ModelPreset("llama-2-70b");  // 64 heads, 8 KV heads
  for (int r = 0; r < 64; ++r) {
    TpSlice s = MakeTpSlice(m, 64, r);
    EXPECT_EQ(s.q_heads, (Range{r, r + 1}));
    EXPECT_EQ(s.kv_heads, (Range{r / 8, r / 8 + 1}));  // 8 ranks share a KV head
  }
  TpSlice s = MakeTpSlice(m, 4, 3);
  EXPECT_FALSE(s.kv_replicated);
  EXPECT_EQ(s.kv_heads, (Range{6, 8}));
  EXPECT_EQ(s.q_heads, (Range{48, 64}));
}

TEST(ShardingTest, BytesAndTypes) {
  ModelConfig m = *ModelPreset("tiny");  // vocab 500, hidden 128, ffn 352, 8 heads / 2 kv, hd 16
  TpSlice s = MakeTpSlice(m, 4, 1);
  for (const TensorSpec& t : ModelTensors(m)) {
    TensorShard sh = ShardTensor(m, t, s, ElementType::kBF16);
    EXPECT_EQ(sh.bytes, sh.elements() * ElementSize(sh.type));
    EXPECT_EQ(sh.type, t.role == TensorRole::kNorm ? ElementType::kF32 : ElementType::kBF16);
    if (t.path == "/tok_embeddings") {
      EXPECT_EQ(sh.start, (std::vector<int64_t>{0, 32}));
      EXPECT_EQ(sh.count, (std::vector<int64_t>{500, 32}));
    }
    if (t.path == "/lm_head") {
      EXPECT_EQ(sh.start, (std::vector<int64_t>{125, 0}));
      EXPECT_EQ(sh.count, (std::vector<int64_t>{125, 128}));
    }
    if (t.path == "/layers/0/ffn/w_down") {  // 352 columns: segments 16..31 -> [88, 176)
      EXPECT_EQ(sh.start, (std::vector<int64_t>{0, 88}));
      EXPECT_EQ(sh.count, (std::vector<int64_t>{128, 88}));
    }
    if (t.path == "/layers/0/attn/wk") {  // kv head 0 of 2, shared by ranks 0 and 1
      EXPECT_EQ(sh.start, (std::vector<int64_t>{0, 0}));
      EXPECT_EQ(sh.count, (std::vector<int64_t>{16, 128}));
      EXPECT_TRUE(sh.replicated);
    }
  }
}

TEST(TensorParallelCheckTest, ErrorsSayWhatToChange) {
  ModelConfig tiny = *ModelPreset("tiny");  // 8 heads, 2 KV heads
  EXPECT_EQ(ValidTensorParallelSizes(tiny), (std::vector<int>{1, 2, 4, 8}));
  Status s = CheckTensorParallel(tiny, 3);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("tp 3 is not a power of two"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("{1, 2, 4, 8}"), std::string::npos) << s.message();
  s = CheckTensorParallel(tiny, 16);
  EXPECT_NE(s.message().find("tp 16 exceeds the 8 attention heads"), std::string::npos)
      << s.message();
  s = CheckTensorParallel(*ModelPreset("llama-3.1-405b"), 128);
  EXPECT_NE(s.message().find("between 1 and 64"), std::string::npos) << s.message();
  s = CheckTensorParallel(*ModelPreset("llama-110m"), 8);  // 12 heads
  EXPECT_NE(s.message().find("num_attention_heads 12 of 'llama-110m' is not divisible by tp 8"),
            std::string::npos)
      << s.message();
  s = CheckTensorParallel(Shape("kv6", 100, 96, 64, 2, 24, 6, 4), 4);  // 24 heads, 6 KV
  EXPECT_NE(s.message().find("num_key_value_heads 6"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("use tp in {1, 2}"), std::string::npos) << s.message();
  s = CheckTensorParallel(tiny, 0);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(CheckTensorParallel(tiny, 8).ok());  // KV heads replicated 4x
}

TEST(TensorRoleTest, NamesRoundTrip) {
  for (TensorRole r : {TensorRole::kEmbedding, TensorRole::kNorm, TensorRole::kColumnParallel,
                       TensorRole::kRowParallel, TensorRole::kLmHead}) {
    EXPECT_EQ(*ParseTensorRole(TensorRoleName(r)), r);
  }
  EXPECT_FALSE(ParseTensorRole("weights").ok());
}

// Quantized weights: a tp whose column splits fall inside a 32-value block
// is refused, naming the tensor; shard bytes count whole blocks.
TEST(ShardingTest, QuantizedSplitsFallOnBlockBoundaries) {
  const ModelConfig tiny = *ModelPreset("tiny");  // hidden 128 (4 blocks), ffn 352 (11)
  EXPECT_TRUE(CheckBlockAlignment(tiny, 1, ElementType::kQ8_0).ok());
  EXPECT_TRUE(CheckBlockAlignment(tiny, 2, ElementType::kBF16).ok());
  const Status cut = CheckBlockAlignment(tiny, 2, ElementType::kQ4_0);
  EXPECT_EQ(cut.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(cut.message().find("'/layers/0/ffn/w_down'"), std::string::npos) << cut.message();
  EXPECT_NE(cut.message().find("11 blocks"), std::string::npos) << cut.message();
  EXPECT_EQ(ValidTensorParallelSizes(tiny, ElementType::kQ8_0), std::vector<int>{1});
  EXPECT_EQ(ValidTensorParallelSizes(tiny), (std::vector<int>{1, 2, 4, 8}));
  EXPECT_FALSE(CheckTensorParallel(tiny, 2, ElementType::kQ8_0).ok());

  ModelConfig odd = tiny;
  odd.hidden_size = 100;  // not whole blocks at all
  const Status rows = CheckBlockAlignment(odd, 1, ElementType::kQ8_0);
  EXPECT_NE(rows.message().find("rows of 100 values (hidden_size)"), std::string::npos)
      << rows.message();

  const ModelConfig llama = *ModelPreset("llama-2-70b");
  EXPECT_EQ(ValidTensorParallelSizes(llama, ElementType::kQ8_0),
            ValidTensorParallelSizes(llama, ElementType::kBF16));
  // A row-parallel shard of w_down at tp 8: 28672 / 8 = 3584 columns, 112 blocks.
  const std::vector<TensorSpec> specs = ModelTensors(llama);
  const TensorSpec& down = *std::find_if(specs.begin(), specs.end(), [](const TensorSpec& t) {
    return t.path == "/layers/0/ffn/w_down";
  });
  const TensorShard s = ShardTensor(llama, down, MakeTpSlice(llama, 8, 3), ElementType::kQ8_0);
  EXPECT_EQ(s.start[1], 3 * 3584);
  EXPECT_EQ(s.count[1], 3584);
  EXPECT_EQ(s.bytes, 8192 * 112 * 34);
  EXPECT_EQ(ElementBytes(ElementType::kQ4_0, 64), 36);
  EXPECT_DOUBLE_EQ(BytesPerElement(ElementType::kQ8_0), 34.0 / 32.0);
}

}  // namespace
}  // namespace lockstep::partitioner
