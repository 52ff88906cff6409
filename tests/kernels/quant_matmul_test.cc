// Quantized matmul (q8_0, q4_0): every Isa, with and without VNNI, bit-exact
// against the naive reference (which spells out quant_matmul.h in plain
// loops); independence from batch, neighbours and thread count;
// tensor-parallel shards combined pairwise equal the full result; the
// activation rounding rule; the reference against double precision.
#include "lockstep/kernels/quant_matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "lockstep/base/quant_block.h"

namespace lockstep::kernels {
namespace {

using testing::RandomVector;
using testing::SameBits;
using testing::SupportedIsas;
using testing::WithThreads;

constexpr DType kQuantTypes[] = {DType::kQ8_0, DType::kQ4_0};

// rows x cols weights quantized from normal values (row-major blocks).
std::vector<uint8_t> MakeBlocks(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
  const std::vector<float> w = RandomVector(static_cast<size_t>(rows * cols), seed, 0.5f);
  std::vector<uint8_t> blocks(static_cast<size_t>(DTypeBytes(dtype, rows * cols)));
  QuantizeRow(dtype, w.data(), rows * cols, blocks.data());
  return blocks;
}

// Every (isa, vnni) variant this machine runs.
struct Variant {
  Isa isa;
  bool vnni;
};
std::vector<Variant> Variants() {
  std::vector<Variant> v;
  for (Isa isa : SupportedIsas()) {
    v.push_back({isa, false});
    if (VnniAvailable(isa)) v.push_back({isa, true});
  }
  return v;
}
std::string Label(const Variant& v) {
  return std::string(IsaName(v.isa)) + (v.vnni ? "+vnni" : "");
}

// VnniAvailable reads CPUID itself (clang 14 does not know "avxvnni"): it
// must agree with the kernel's flags in /proc/cpuinfo, where the kernel lists
// a feature only if the CPU has it and the OS supports its state.
TEST(QuantMatmulTest, VnniDetectionAgreesWithTheKernelsCpuFlags) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, flags;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) == 0) {
      flags = " " + line.substr(line.find(':') + 1) + " ";
      break;
    }
  }
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo flags line";
  auto has = [&](const char* flag) {
    return flags.find(std::string(" ") + flag + " ") != std::string::npos;
  };
  EXPECT_EQ(VnniAvailable(Isa::kAvx512), IsaSupported(Isa::kAvx512) && has("avx512_vnni"));
  EXPECT_EQ(VnniAvailable(Isa::kAvx2), IsaSupported(Isa::kAvx2) && has("avx_vnni"));
  EXPECT_FALSE(VnniAvailable(Isa::kScalar));
}

// Runs Matmul with the variant's dot product.
void RunMatmul(const Variant& v, const PackedMatrix& w, const float* x, int64_t tokens, int64_t ldx,
               float* y, int64_t ldy, ReductionOrder order = ReductionOrder::kCanonical) {
  UseVnni(v.vnni);
  Matmul(v.isa, w, x, tokens, ldx, y, ldy, order);
  UseVnni(true);
}

struct Shape {
  int64_t rows, cols, tokens;
};

TEST(QuantMatmulTest, EveryIsaAndTypeEqualsReference) {
  // rows not a multiple of 16 (partial panel) and panel counts that leave
  // partial groups; K of 1 block (63 empty segments), odd block counts (a
  // pair record half used), 64 blocks (one per segment), 176 (unequal
  // segments); token counts that leave partial token blocks, one and several
  // token blocks per call, chunks of K.
  const Shape shapes[] = {{1, 32, 1},    {16, 64, 1},    {17, 96, 7},    {5, 32, 3},
                          {33, 160, 13}, {100, 256, 8},  {130, 2048, 1}, {40, 5632, 2},
                          {200, 320, 1}, {7, 352, 64},   {70, 480, 12},  {64, 768, 25},
                          {48, 2048, 6}, {129, 1024, 31}};
  for (const Shape& s : shapes) {
    const std::vector<float> x = RandomVector(static_cast<size_t>(s.tokens * s.cols), 7);
    for (DType dtype : kQuantTypes) {
      const std::vector<uint8_t> blocks = MakeBlocks(dtype, s.rows, s.cols, 11);
      std::vector<float> expected(static_cast<size_t>(s.tokens * s.rows));
      QuantMatmulReference(dtype, blocks.data(), s.rows, s.cols, ReductionSlice::Full(s.cols),
                           x.data(), s.tokens, s.cols, expected.data(), s.rows);
      const PackedMatrix packed = PackedMatrix::Pack(dtype, blocks.data(), s.rows, s.cols);
      for (const Variant& v : Variants()) {
        std::vector<float> y(expected.size(), -1.0f);
        RunMatmul(v, packed, x.data(), s.tokens, s.cols, y.data(), s.rows);
        EXPECT_TRUE(SameBits(y, expected)) << Label(v) << " " << DTypeName(dtype) << " " << s.rows
                                           << "x" << s.cols << " tokens " << s.tokens;
      }
    }
  }
}

TEST(QuantMatmulTest, SinglePassEqualsReference) {
  // One token block (decode, and a few tokens): one pass over the weights,
  // q4_0 with a software prefetch a pair of blocks ahead of each panel
  // (quant_matmul.cc). Block counts below and above that distance, odd (a
  // pair record half used), two full 8-panel groups plus single panels.
  const int64_t rows = 16 * 8 * 2 + 16 * 3 + 5;
  for (int64_t cols : {32, 64, 96, 160, 2080, 5632}) {
    for (int64_t tokens : {1, 4}) {
      const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), 17);
      for (DType dtype : kQuantTypes) {
        const std::vector<uint8_t> blocks = MakeBlocks(dtype, rows, cols, 19);
        std::vector<float> expected(static_cast<size_t>(tokens * rows));
        QuantMatmulReference(dtype, blocks.data(), rows, cols, ReductionSlice::Full(cols),
                             x.data(), tokens, cols, expected.data(), rows);
        const PackedMatrix packed = PackedMatrix::Pack(dtype, blocks.data(), rows, cols);
        for (const Variant& v : Variants()) {
          std::vector<float> y(expected.size(), -1.0f);
          RunMatmul(v, packed, x.data(), tokens, cols, y.data(), rows);
          EXPECT_TRUE(SameBits(y, expected)) << Label(v) << " " << DTypeName(dtype) << " " << rows
                                             << "x" << cols << " tokens " << tokens;
        }
      }
    }
  }
}

TEST(QuantMatmulTest, LongPrefillEqualsReference) {
  // More token blocks than one round of the kernel's state (256 blocks), K
  // in several chunks.
  const int64_t rows = 20, cols = 1088, tokens = 1600;
  const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), 71);
  for (DType dtype : kQuantTypes) {
    const std::vector<uint8_t> blocks = MakeBlocks(dtype, rows, cols, 72);
    std::vector<float> expected(static_cast<size_t>(tokens * rows));
    QuantMatmulReference(dtype, blocks.data(), rows, cols, ReductionSlice::Full(cols), x.data(),
                         tokens, cols, expected.data(), rows);
    const PackedMatrix packed = PackedMatrix::Pack(dtype, blocks.data(), rows, cols);
    for (const Variant& v : Variants()) {
      std::vector<float> y(expected.size());
      RunMatmul(v, packed, x.data(), tokens, cols, y.data(), rows);
      EXPECT_TRUE(SameBits(y, expected)) << Label(v) << " " << DTypeName(dtype);
    }
  }
}

TEST(QuantMatmulTest, StridedInputsAndOutputs) {
  // ldx > K and ldy > N: only the rows' own values count.
  const int64_t rows = 24, cols = 128, tokens = 9, ldx = 150, ldy = 31;
  std::vector<float> x = RandomVector(static_cast<size_t>(tokens * ldx), 5);
  for (DType dtype : kQuantTypes) {
    const std::vector<uint8_t> blocks = MakeBlocks(dtype, rows, cols, 6);
    std::vector<float> expected(static_cast<size_t>(tokens * ldy), 0.0f);
    QuantMatmulReference(dtype, blocks.data(), rows, cols, ReductionSlice::Full(cols), x.data(),
                         tokens, ldx, expected.data(), ldy);
    const PackedMatrix packed = PackedMatrix::Pack(dtype, blocks.data(), rows, cols);
    for (const Variant& v : Variants()) {
      std::vector<float> y(expected.size(), 0.0f);
      RunMatmul(v, packed, x.data(), tokens, ldx, y.data(), ldy);
      EXPECT_TRUE(SameBits(y, expected)) << Label(v) << " " << DTypeName(dtype);
    }
  }
}

TEST(QuantMatmulTest, TokenResultIndependentOfBatchAndThreads) {
  // Token 3 alone, in batches of 4, 9 and 40 with different neighbours, on
  // 1..4 threads: the same bits.
  const int64_t rows = 300, cols = 640;
  for (DType dtype : kQuantTypes) {
    const std::vector<uint8_t> blocks = MakeBlocks(dtype, rows, cols, 21);
    const PackedMatrix packed = PackedMatrix::Pack(dtype, blocks.data(), rows, cols);
    const std::vector<float> token = RandomVector(static_cast<size_t>(cols), 22);
    for (const Variant& v : Variants()) {
      std::vector<float> alone(static_cast<size_t>(rows));
      RunMatmul(v, packed, token.data(), 1, cols, alone.data(), rows);
      for (int64_t batch : {4, 9, 40}) {
        for (int threads : {1, 2, 3, 4}) {
          std::vector<float> x =
              RandomVector(static_cast<size_t>(batch * cols), static_cast<uint32_t>(batch));
          std::memcpy(x.data() + 3 * cols, token.data(), cols * sizeof(float));
          std::vector<float> y(static_cast<size_t>(batch * rows));
          WithThreads(threads,
                      [&] { RunMatmul(v, packed, x.data(), batch, cols, y.data(), rows); });
          EXPECT_TRUE(SameBits(y.data() + 3 * rows, alone.data(), static_cast<size_t>(rows)))
              << Label(v) << " " << DTypeName(dtype) << " batch " << batch << " threads "
              << threads;
        }
      }
    }
  }
}

TEST(QuantMatmulTest, ShardsCombinedPairwiseEqualTheFullResult) {
  // Row-parallel: rank r of tp holds blocks [r*nb/tp, (r+1)*nb/tp) (tp
  // divides nb); the subtree sums added pairwise, neighbours first, give the
  // full result.
  const int64_t rows = 40, cols = 2048, tokens = 5;
  const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), 31);
  for (DType dtype : kQuantTypes) {
    const std::vector<uint8_t> blocks = MakeBlocks(dtype, rows, cols, 32);
    const int64_t row_bytes = DTypeBytes(dtype, cols);
    std::vector<float> full(static_cast<size_t>(tokens * rows));
    QuantMatmulReference(dtype, blocks.data(), rows, cols, ReductionSlice::Full(cols), x.data(),
                         tokens, cols, full.data(), rows);
    for (int tp : {2, 4, 8, 16, 64}) {
      for (const Variant& v : Variants()) {
        std::vector<std::vector<float>> parts;
        for (int r = 0; r < tp; ++r) {
          const ReductionSlice slice = ReductionSlice::Shard(cols, r, tp);
          std::vector<uint8_t> shard;
          const int64_t begin = DTypeBytes(dtype, slice.column_begin());
          const int64_t bytes = DTypeBytes(dtype, slice.columns());
          for (int64_t row = 0; row < rows; ++row) {
            const uint8_t* src = blocks.data() + row * row_bytes + begin;
            shard.insert(shard.end(), src, src + bytes);
          }
          const PackedMatrix packed =
              PackedMatrix::Pack(dtype, shard.data(), rows, slice.columns(), slice);
          std::vector<float> y(static_cast<size_t>(tokens * rows));
          RunMatmul(v, packed, x.data() + slice.column_begin(), tokens, cols, y.data(), rows);
          // The reference of the shard alone is the same subtree.
          std::vector<float> ref(y.size());
          QuantMatmulReference(dtype, shard.data(), rows, slice.columns(), slice,
                               x.data() + slice.column_begin(), tokens, cols, ref.data(), rows);
          EXPECT_TRUE(SameBits(y, ref)) << Label(v) << " tp " << tp << " rank " << r;
          parts.push_back(std::move(y));
        }
        for (int distance = 1; distance < tp; distance *= 2) {
          for (int r = 0; r < tp; r += 2 * distance) {
            for (size_t i = 0; i < parts[r].size(); ++i) parts[r][i] += parts[r + distance][i];
          }
        }
        EXPECT_TRUE(SameBits(parts[0], full))
            << Label(v) << " " << DTypeName(dtype) << " tp " << tp;
      }
    }
  }
}

TEST(QuantMatmulTest, PlainOrderIsOneChainOverBlocks) {
  // kPlain: one chain over all blocks (the benchmarks' yardstick of what the
  // canonical tree costs); every variant equals this plain-loop version.
  const int64_t rows = 18, cols = 352, tokens = 11;
  const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), 41);
  for (DType dtype : kQuantTypes) {
    const std::vector<uint8_t> blocks = MakeBlocks(dtype, rows, cols, 42);
    std::vector<float> expected(static_cast<size_t>(tokens * rows));
    std::vector<int8_t> q(cols);
    std::vector<float> scale(cols / 32);
    for (int64_t m = 0; m < tokens; ++m) {
      QuantizeActivationsReference(x.data() + m * cols, cols, q.data(), scale.data());
      for (int64_t n = 0; n < rows; ++n) {
        float acc = 0.0f;
        for (int64_t b = 0; b < cols / 32; ++b) {
          int32_t dot = 0;
          for (int j = 0; j < 32; ++j) {
            dot += QuantBlockValue(dtype, blocks.data(), n * (cols / 32) + b, j) * q[b * 32 + j];
          }
          const float d = F16ToF32(QuantBlockScaleBits(dtype, blocks.data(), n * (cols / 32) + b));
          acc = std::fma(static_cast<float>(dot), d * scale[b], acc);
        }
        expected[m * rows + n] = acc;
      }
    }
    const PackedMatrix packed = PackedMatrix::Pack(dtype, blocks.data(), rows, cols);
    for (const Variant& v : Variants()) {
      std::vector<float> y(expected.size());
      RunMatmul(v, packed, x.data(), tokens, cols, y.data(), rows, ReductionOrder::kPlain);
      EXPECT_TRUE(SameBits(y, expected)) << Label(v) << " " << DTypeName(dtype);
    }
  }
}

TEST(QuantMatmulTest, ActivationRoundingIsNearestEven) {
  // A block whose largest magnitude is 127 has the factor 127 / amax = 1
  // exactly: q = round-half-even(x).
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = 3.5f;
  x[3] = -2.5f;
  x[4] = -0.5f;
  x[5] = 0.49999997f;
  x[6] = -126.5f;
  std::vector<int8_t> q(32);
  float scale = 0.0f;
  QuantizeActivationsReference(x.data(), 32, q.data(), &scale);
  EXPECT_EQ(scale, 1.0f);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], 2);
  EXPECT_EQ(q[2], 4);
  EXPECT_EQ(q[3], -2);
  EXPECT_EQ(q[4], 0);
  EXPECT_EQ(q[5], 0);
  EXPECT_EQ(q[6], -126);
  // All zero: scale 0; an Inf or NaN: q = 0 and a NaN scale.
  std::vector<float> zero(32, 0.0f);
  QuantizeActivationsReference(zero.data(), 32, q.data(), &scale);
  EXPECT_EQ(scale, 0.0f);
  x[9] = std::numeric_limits<float>::infinity();
  QuantizeActivationsReference(x.data(), 32, q.data(), &scale);
  EXPECT_TRUE(std::isnan(scale));
  for (int j = 0; j < 32; ++j) EXPECT_EQ(q[j], 0);
}

TEST(QuantMatmulTest, NonFiniteActivationsGiveNaNOnEveryIsa) {
  // A NaN in one block of one token: that token's outputs are NaN, the other
  // tokens' are untouched; every variant agrees bit for bit.
  const int64_t rows = 33, cols = 256, tokens = 7;
  std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), 51);
  x[2 * cols + 70] = std::numeric_limits<float>::quiet_NaN();
  x[5 * cols + 3] = -std::numeric_limits<float>::infinity();
  for (DType dtype : kQuantTypes) {
    const std::vector<uint8_t> blocks = MakeBlocks(dtype, rows, cols, 52);
    std::vector<float> expected(static_cast<size_t>(tokens * rows));
    QuantMatmulReference(dtype, blocks.data(), rows, cols, ReductionSlice::Full(cols), x.data(),
                         tokens, cols, expected.data(), rows);
    for (int64_t n = 0; n < rows; ++n) {
      EXPECT_TRUE(std::isnan(expected[2 * rows + n]));
      EXPECT_TRUE(std::isnan(expected[5 * rows + n]));
      EXPECT_FALSE(std::isnan(expected[0 * rows + n]));
    }
    const PackedMatrix packed = PackedMatrix::Pack(dtype, blocks.data(), rows, cols);
    for (const Variant& v : Variants()) {
      std::vector<float> y(expected.size());
      RunMatmul(v, packed, x.data(), tokens, cols, y.data(), rows);
      EXPECT_TRUE(SameBits(y, expected)) << Label(v) << " " << DTypeName(dtype);
    }
  }
}

TEST(QuantMatmulTest, ReferenceIsCloseToDoublePrecision) {
  // Against the exact product of the dequantized weights and the
  // dequantized activations in double: only f32 rounding apart.
  const int64_t rows = 8, cols = 2048, tokens = 3;
  const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), 61);
  for (DType dtype : kQuantTypes) {
    const std::vector<uint8_t> blocks = MakeBlocks(dtype, rows, cols, 62);
    std::vector<float> y(static_cast<size_t>(tokens * rows));
    QuantMatmulReference(dtype, blocks.data(), rows, cols, ReductionSlice::Full(cols), x.data(),
                         tokens, cols, y.data(), rows);
    std::vector<float> w(static_cast<size_t>(rows * cols));
    DequantizeRow(dtype, blocks.data(), rows * cols, w.data());
    std::vector<int8_t> q(cols);
    std::vector<float> scale(cols / 32);
    for (int64_t m = 0; m < tokens; ++m) {
      QuantizeActivationsReference(x.data() + m * cols, cols, q.data(), scale.data());
      for (int64_t n = 0; n < rows; ++n) {
        double exact = 0.0, magnitude = 0.0;
        for (int64_t k = 0; k < cols; ++k) {
          const double xq = static_cast<double>(q[k]) * scale[k / 32];
          exact += static_cast<double>(w[n * cols + k]) * xq;
          magnitude += std::fabs(static_cast<double>(w[n * cols + k]) * xq);
        }
        // Each block term is rounded a few times (d_w * d_x, the FMA, the
        // tree): a few ulps of the sum of magnitudes.
        EXPECT_NEAR(y[m * rows + n], exact, 1e-6 * magnitude + 1e-30) << m << " " << n;
      }
    }
  }
}

TEST(QuantMatmulTest, PackKeepsTheValues) {
  const int64_t rows = 37, cols = 160;
  for (DType dtype : kQuantTypes) {
    const std::vector<uint8_t> blocks = MakeBlocks(dtype, rows, cols, 81);
    std::vector<float> w(static_cast<size_t>(rows * cols));
    DequantizeRow(dtype, blocks.data(), rows * cols, w.data());
    const PackedMatrix packed = PackedMatrix::Pack(dtype, blocks.data(), rows, cols);
    EXPECT_EQ(packed.dtype(), dtype);
    // Panels of 16 rows, 5 blocks -> 3 pair records per panel.
    const size_t pair = dtype == DType::kQ8_0 ? 64 + 2 * 512 : 64 + 2 * 256;
    EXPECT_EQ(packed.bytes(), 3 * 3 * pair);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        ASSERT_EQ(packed.At(r, c), w[r * cols + c]) << DTypeName(dtype) << " " << r << " " << c;
      }
    }
  }
}

TEST(QuantMatmulTest, EmbeddingRowsWidenExactly) {
  const int64_t cols = 96;
  for (DType dtype : kQuantTypes) {
    const std::vector<uint8_t> blocks = MakeBlocks(dtype, 1, cols, 91);
    std::vector<float> expected(cols);
    DequantizeRow(dtype, blocks.data(), cols, expected.data());
    for (Isa isa : SupportedIsas()) {
      std::vector<float> y(cols);
      ConvertToF32(isa, dtype, blocks.data(), cols, y.data());
      EXPECT_TRUE(SameBits(y, expected)) << IsaName(isa);
    }
  }
}

}  // namespace
}  // namespace lockstep::kernels
