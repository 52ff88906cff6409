// Matmul: every Isa and dtype bit-exact against the naive reference (which
// spells out the canonical order in plain loops); independence from batch
// size, neighbours and thread count; tensor-parallel shards combined
// pairwise equal the full result; the plain order; packing.
#include "lockstep/kernels/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernel_test_util.h"
#include "lockstep/base/dtype.h"

namespace lockstep::kernels {
namespace {

using testing::RandomVector;
using testing::SameBits;
using testing::SupportedIsas;
using testing::WithThreads;

// A weight matrix W[rows][ld] in `dtype`, and the same values widened to f32
// (what the kernels compute with).
struct Weights {
  DType dtype;
  std::vector<float> f32;      // f32 data (dtype f32) or widened values
  std::vector<uint16_t> half;  // f16 / bf16 data
  const void* data() const {
    return dtype == DType::kF32 ? static_cast<const void*>(f32.data()) : half.data();
  }
};

Weights MakeWeights(DType dtype, int64_t rows, int64_t ld, uint32_t seed) {
  Weights w{dtype, RandomVector(static_cast<size_t>(rows * ld), seed, 0.5f), {}};
  if (dtype != DType::kF32) {
    w.half.resize(w.f32.size());
    for (size_t i = 0; i < w.f32.size(); ++i) {
      w.half[i] = dtype == DType::kF16 ? F32ToF16(w.f32[i]) : F32ToBf16(w.f32[i]);
      w.f32[i] = dtype == DType::kF16 ? F16ToF32(w.half[i]) : Bf16ToF32(w.half[i]);
    }
  }
  return w;
}

constexpr DType kDTypes[] = {DType::kF32, DType::kF16, DType::kBF16};

struct Shape {
  int64_t rows, cols, tokens;
};

TEST(MatmulTest, EveryIsaAndDtypeEqualsReference) {
  // Odd shapes on purpose: rows not a multiple of 16 (partial last panel),
  // K < 64 (empty segments), K not a multiple of 64, K = 1, token counts that
  // leave partial register blocks, panel counts that leave partial groups.
  // Also full AVX-512 prefill blocks (4 panels x 6 tokens) over chunks of
  // several segments: unequal segment lengths (96, 257), empty segments (40)
  // and a llama-110m width (768).
  const Shape shapes[] = {{1, 1, 1},     {16, 64, 1},   {17, 63, 7},   {5, 1, 3},     {33, 130, 13},
                          {100, 257, 8}, {130, 96, 25}, {64, 2048, 1}, {40, 5632, 2}, {200, 100, 1},
                          {7, 3, 64},    {70, 40, 12},  {64, 768, 12}};
  for (const Shape& s : shapes) {
    const std::vector<float> x = RandomVector(static_cast<size_t>(s.tokens * s.cols), 7);
    for (DType dtype : kDTypes) {
      const Weights w = MakeWeights(dtype, s.rows, s.cols, 11);
      std::vector<float> expected(static_cast<size_t>(s.tokens * s.rows));
      MatmulReference(w.f32.data(), s.rows, s.cols, ReductionSlice::Full(s.cols), x.data(),
                      s.tokens, s.cols, expected.data(), s.rows);
      const PackedMatrix packed = PackedMatrix::Pack(dtype, w.data(), s.rows, s.cols);
      for (Isa isa : SupportedIsas()) {
        std::vector<float> y(expected.size(), -1.0f);
        Matmul(isa, packed, x.data(), s.tokens, y.data());
        EXPECT_TRUE(SameBits(y, expected)) << IsaName(isa) << " " << DTypeName(dtype) << " "
                                           << s.rows << "x" << s.cols << " tokens " << s.tokens;
      }
    }
  }
}

// Decode (one token) streams each panel with a software prefetch a fixed
// number of bytes ahead (matmul_impl.h, kDecodePrefetchBytes): K shorter and
// longer than that distance, odd (a panel not starting on a cache line), and
// rows that fill two 8-panel groups and leave single panels.
TEST(MatmulTest, DecodeEqualsReference) {
  const int64_t rows = 16 * 8 * 2 + 16 * 3 + 5;
  for (int64_t cols : {1, 15, 16, 17, 33, 65, 257, 1031, 2051}) {
    const std::vector<float> x = RandomVector(static_cast<size_t>(cols), 23);
    for (DType dtype : kDTypes) {
      const Weights w = MakeWeights(dtype, rows, cols, 29);
      std::vector<float> expected(static_cast<size_t>(rows));
      MatmulReference(w.f32.data(), rows, cols, ReductionSlice::Full(cols), x.data(), 1, cols,
                      expected.data(), rows);
      const PackedMatrix packed = PackedMatrix::Pack(dtype, w.data(), rows, cols);
      for (Isa isa : SupportedIsas()) {
        std::vector<float> y(expected.size(), -1.0f);
        Matmul(isa, packed, x.data(), 1, y.data());
        EXPECT_TRUE(SameBits(y, expected))
            << IsaName(isa) << " " << DTypeName(dtype) << " " << rows << "x" << cols;
      }
    }
  }
}

TEST(MatmulTest, LongPrefillEqualsReference) {
  // Enough tokens to need several rounds of token blocks per task, and K
  // cut into several column chunks (chunk edges fall inside segments).
  const int64_t rows = 20, cols = 1100, tokens = 1600;
  const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), 71);
  for (DType dtype : {DType::kF32, DType::kF16}) {
    const Weights w = MakeWeights(dtype, rows, cols, 72);
    std::vector<float> expected(static_cast<size_t>(tokens * rows));
    MatmulReference(w.f32.data(), rows, cols, ReductionSlice::Full(cols), x.data(), tokens, cols,
                    expected.data(), rows);
    const PackedMatrix packed = PackedMatrix::Pack(dtype, w.data(), rows, cols);
    for (Isa isa : SupportedIsas()) {
      std::vector<float> y(expected.size());
      Matmul(isa, packed, x.data(), tokens, y.data());
      EXPECT_TRUE(SameBits(y, expected)) << IsaName(isa) << " " << DTypeName(dtype);
    }
  }
}

// y = x W^T in one plain FMA chain over K per output (ReductionOrder::kPlain).
std::vector<float> PlainReference(const std::vector<float>& w, int64_t rows, int64_t cols,
                                  const std::vector<float>& x, int64_t tokens) {
  std::vector<float> y(static_cast<size_t>(tokens * rows));
  for (int64_t m = 0; m < tokens; ++m) {
    for (int64_t n = 0; n < rows; ++n) {
      float acc = 0.0f;
      for (int64_t k = 0; k < cols; ++k) acc = std::fma(w[n * cols + k], x[m * cols + k], acc);
      y[m * rows + n] = acc;
    }
  }
  return y;
}

TEST(MatmulTest, FewTokensEqualReference) {
  // 2..33 tokens: the few-token path (straight from the pack; one token
  // block, or several of balanced size with K in chunks) up to its limit,
  // and the prefill path just past it. Rows leave a partial last panel and
  // an odd panel count; K = 300 gives one chunk or several depending on the
  // path, K = 40 empty segments; the plain order is one FMA chain.
  const int64_t rows = 37;
  for (int64_t cols : {300, 40}) {
    const std::vector<float> x = RandomVector(static_cast<size_t>(33 * cols), 81);
    for (DType dtype : kDTypes) {
      const Weights w = MakeWeights(dtype, rows, cols, 82);
      const PackedMatrix packed = PackedMatrix::Pack(dtype, w.data(), rows, cols);
      for (int64_t tokens = 2; tokens <= 33; ++tokens) {
        std::vector<float> canonical(static_cast<size_t>(tokens * rows));
        MatmulReference(w.f32.data(), rows, cols, ReductionSlice::Full(cols), x.data(), tokens,
                        cols, canonical.data(), rows);
        const std::vector<float> plain = PlainReference(w.f32, rows, cols, x, tokens);
        for (Isa isa : SupportedIsas()) {
          std::vector<float> y(canonical.size(), -1.0f);
          Matmul(isa, packed, x.data(), tokens, y.data());
          EXPECT_TRUE(SameBits(y, canonical)) << IsaName(isa) << " " << DTypeName(dtype) << " K "
                                              << cols << " tokens " << tokens << " canonical";
          Matmul(isa, packed, x.data(), tokens, cols, y.data(), rows, ReductionOrder::kPlain);
          EXPECT_TRUE(SameBits(y, plain)) << IsaName(isa) << " " << DTypeName(dtype) << " K "
                                          << cols << " tokens " << tokens << " plain";
        }
      }
    }
  }
}

TEST(MatmulTest, StridedInputsAndOutputs) {
  const int64_t rows = 21, cols = 70, tokens = 9, ld = 75, ldx = 80, ldy = 30;
  const Weights w = MakeWeights(DType::kF32, rows, ld, 3);
  const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * ldx), 4);
  std::vector<float> expected(static_cast<size_t>(tokens * ldy), 5.0f);
  MatmulReference(w.f32.data(), rows, ld, ReductionSlice::Full(cols), x.data(), tokens, ldx,
                  expected.data(), ldy);
  const PackedMatrix packed =
      PackedMatrix::Pack(DType::kF32, w.data(), rows, ld, ReductionSlice::Full(cols));
  for (Isa isa : SupportedIsas()) {
    std::vector<float> y(expected.size(), 5.0f);  // padding columns must stay untouched
    Matmul(isa, packed, x.data(), tokens, ldx, y.data(), ldy);
    EXPECT_TRUE(SameBits(y, expected)) << IsaName(isa);
  }
}

TEST(MatmulTest, ReferenceIsAccurate) {
  // The reference is compared bit for bit with the kernels; check once that
  // it computes the right thing (to f32 accuracy) against double precision.
  const int64_t rows = 19, cols = 1000, tokens = 3;
  const Weights w = MakeWeights(DType::kF32, rows, cols, 5);
  const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), 6);
  std::vector<float> y(static_cast<size_t>(tokens * rows));
  MatmulReference(w.f32.data(), rows, cols, ReductionSlice::Full(cols), x.data(), tokens, cols,
                  y.data(), rows);
  for (int64_t m = 0; m < tokens; ++m) {
    for (int64_t n = 0; n < rows; ++n) {
      double exact = 0.0, magnitude = 0.0;
      for (int64_t k = 0; k < cols; ++k) {
        exact += double{w.f32[n * cols + k]} * x[m * cols + k];
        magnitude += std::abs(double{w.f32[n * cols + k]} * x[m * cols + k]);
      }
      EXPECT_NEAR(y[m * rows + n], exact, 1e-6 * magnitude);
    }
  }
}

TEST(MatmulTest, RowDoesNotDependOnBatchSizeOrNeighbours) {
  const int64_t rows = 70, cols = 300, tokens = 11;
  for (DType dtype : kDTypes) {
    const Weights w = MakeWeights(dtype, rows, cols, 21);
    const PackedMatrix packed = PackedMatrix::Pack(dtype, w.data(), rows, cols);
    const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), 22);
    for (Isa isa : SupportedIsas()) {
      std::vector<float> batch(static_cast<size_t>(tokens * rows));
      Matmul(isa, packed, x.data(), tokens, batch.data());
      for (int64_t m = 0; m < tokens; ++m) {
        // Alone (batch 1, the decode kernel) ...
        std::vector<float> alone(static_cast<size_t>(rows));
        Matmul(isa, packed, x.data() + m * cols, 1, alone.data());
        EXPECT_TRUE(SameBits(alone.data(), batch.data() + m * rows, rows))
            << IsaName(isa) << " token " << m << " alone";
        // ... and at slot 4 of a batch of 9 with other neighbours.
        std::vector<float> other = RandomVector(static_cast<size_t>(9 * cols), 100 + m);
        std::memcpy(other.data() + 4 * cols, x.data() + m * cols, cols * sizeof(float));
        std::vector<float> y(static_cast<size_t>(9 * rows));
        Matmul(isa, packed, other.data(), 9, y.data());
        EXPECT_TRUE(SameBits(y.data() + 4 * rows, batch.data() + m * rows, rows))
            << IsaName(isa) << " token " << m << " among other neighbours";
      }
    }
  }
}

TEST(MatmulTest, OneAndTwoThreadsGiveTheSameBits) {
  const int64_t rows = 1000, cols = 512;
  const Weights w = MakeWeights(DType::kBF16, rows, cols, 31);
  const PackedMatrix packed = PackedMatrix::Pack(DType::kBF16, w.data(), rows, cols);
  for (int64_t tokens : {1, 16, 29, 40}) {
    const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), 32);
    for (Isa isa : SupportedIsas()) {
      std::vector<float> y1(static_cast<size_t>(tokens * rows)), y2(y1.size());
      WithThreads(1, [&] { Matmul(isa, packed, x.data(), tokens, y1.data()); });
      WithThreads(2, [&] { Matmul(isa, packed, x.data(), tokens, y2.data()); });
      EXPECT_TRUE(SameBits(y1, y2)) << IsaName(isa) << " tokens " << tokens;
    }
  }
}

TEST(MatmulTest, ShardsCombinedPairwiseEqualTheFullResult) {
  // Row-parallel tensor parallelism: shard r holds columns
  // [floor(r*K/parts), floor((r+1)*K/parts)), its result is a subtree of the
  // canonical tree, and the allreduce adds neighbours at distance 1, 2, 4...
  const int64_t rows = 37;
  for (int64_t tokens : {3, 34}) {  // the few-token and the prefill path
    for (int64_t k : {1, 5, 63, 64, 65, 1000, 2051}) {
      const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * k), 41);
      for (DType dtype : {DType::kF32, DType::kBF16}) {
        const Weights w = MakeWeights(dtype, rows, k, 42);
        const PackedMatrix full = PackedMatrix::Pack(dtype, w.data(), rows, k);
        for (int parts : {2, 4, 8, 64}) {
          for (Isa isa : SupportedIsas()) {
            std::vector<float> expected(static_cast<size_t>(tokens * rows));
            Matmul(isa, full, x.data(), tokens, expected.data());
            std::vector<std::vector<float>> partial(parts);
            for (int r = 0; r < parts; ++r) {
              const ReductionSlice slice = ReductionSlice::Shard(k, r, parts);
              const int64_t c0 = slice.column_begin();
              EXPECT_EQ(c0, r * k / parts);
              const size_t elem = DTypeSize(dtype);
              const PackedMatrix shard = PackedMatrix::Pack(
                  dtype, static_cast<const unsigned char*>(w.data()) + c0 * elem, rows, k, slice);
              partial[r].assign(static_cast<size_t>(tokens * rows), -1.0f);
              Matmul(isa, shard, x.data() + c0, tokens, k, partial[r].data(), rows);
            }
            for (int step = 1; step < parts; step *= 2) {
              for (int r = 0; r < parts; r += 2 * step) {
                for (size_t i = 0; i < partial[r].size(); ++i) {
                  partial[r][i] = partial[r][i] + partial[r + step][i];
                }
              }
            }
            EXPECT_TRUE(SameBits(partial[0], expected))
                << IsaName(isa) << " " << DTypeName(dtype) << " K " << k << " parts " << parts
                << " tokens " << tokens;
          }
        }
      }
    }
  }
}

TEST(MatmulTest, PlainOrderIsOneFmaChain) {
  // 8 tokens: the few-token path; 40: prefill, whose chunk edges cut the chain.
  const int64_t rows = 45, cols = 777;
  for (int64_t tokens : {8, 40}) {
    for (DType dtype : kDTypes) {
      const Weights w = MakeWeights(dtype, rows, cols, 51);
      const PackedMatrix packed = PackedMatrix::Pack(dtype, w.data(), rows, cols);
      const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), 52);
      const std::vector<float> expected = PlainReference(w.f32, rows, cols, x, tokens);
      for (Isa isa : SupportedIsas()) {
        std::vector<float> y(expected.size());
        Matmul(isa, packed, x.data(), tokens, cols, y.data(), rows, ReductionOrder::kPlain);
        EXPECT_TRUE(SameBits(y, expected))
            << IsaName(isa) << " " << DTypeName(dtype) << " tokens " << tokens;
      }
    }
  }
}

TEST(MatmulTest, PackKeepsEveryElement) {
  const int64_t rows = 35, cols = 19;
  for (DType dtype : kDTypes) {
    const Weights w = MakeWeights(dtype, rows, cols, 61);
    const PackedMatrix packed = PackedMatrix::Pack(dtype, w.data(), rows, cols);
    EXPECT_EQ(packed.rows(), rows);
    EXPECT_EQ(packed.cols(), cols);
    EXPECT_EQ(packed.bytes(), static_cast<size_t>(3 * 16 * cols) * DTypeSize(dtype));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(packed.data()) % 64, 0u);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(packed.At(r, c), w.f32[r * cols + c]);
    }
  }
}

TEST(MatmulTest, ShardSliceBounds) {
  const ReductionSlice s = ReductionSlice::Shard(100, 3, 4);
  EXPECT_EQ(s.segment_begin, 48);
  EXPECT_EQ(s.segment_end, 64);
  EXPECT_EQ(s.column_begin(), 75);
  EXPECT_EQ(s.column_end(), 100);
  EXPECT_EQ(ReductionSlice::Shard(1, 0, 2).columns(), 0);  // K < S: empty shard
  EXPECT_EQ(ReductionSlice::Shard(1, 1, 2).columns(), 1);
}

// Every f16 and bf16 bit pattern, NaNs included, widens to the same f32 bits
// on every ISA (F16C quiets signalling NaNs; so does the scalar code).
TEST(MatmulTest, ConvertToF32IsExactForEveryHalfValue) {
  std::vector<uint16_t> all(65536 + 2);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    for (Isa isa : SupportedIsas()) {
      // Odd offsets and counts: every pattern through the vector body and the
      // tail path.
      for (size_t offset : {size_t{0}, size_t{1}, size_t{2}}) {
        const size_t count = 65536 - (offset == 0 ? 0 : 3);
        std::vector<float> y(count);
        ConvertToF32(isa, dtype, all.data() + offset, static_cast<int64_t>(count), y.data());
        for (size_t i = 0; i < count; ++i) {
          const uint16_t h = all[i + offset];
          const float expected = dtype == DType::kF16 ? F16ToF32(h) : Bf16ToF32(h);
          ASSERT_TRUE(SameBits(&y[i], &expected, 1))
              << IsaName(isa) << " " << DTypeName(dtype) << " pattern 0x" << std::hex << h;
        }
      }
    }
  }
}

}  // namespace
}  // namespace lockstep::kernels
