// The bf16 compute (bf16_matmul.h): the dot-product step against the
// AVX512_BF16 instruction itself over millions of random and edge-case
// operands (where the CPU has it), the activation rounding, and every Isa --
// scalar, AVX2, AVX-512 with the emulated step and with vdpbf16ps -- bit-exact
// against the naive reference, over odd segment lengths, subnormal, overflowing,
// infinite and NaN values; independence from batch, neighbours and thread
// count; tensor-parallel shards combined pairwise equal the full result.
#include "lockstep/kernels/bf16_matmul.h"

#include <gtest/gtest.h>
// GCC 12's AVX-512 headers trip -Wuninitialized in some intrinsics (GCC bug
// 105593, as in kernels/src/simd_avx512.h).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernel_test_util.h"
#include "lockstep/base/dtype.h"

namespace lockstep::kernels {
namespace {

using testing::RandomVector;
using testing::SameBits;
using testing::SupportedIsas;
using testing::WithThreads;

// Every (isa, way of computing the step) variant this machine runs.
struct Variant {
  Isa isa;
  Bf16Step step;
};
std::vector<Variant> Variants() {
  std::vector<Variant> v;
  for (Isa isa : SupportedIsas()) {
    for (Bf16Step step : {Bf16Step::kInstruction, Bf16Step::kFlushToZero, Bf16Step::kChecked}) {
      if (Bf16StepAvailable(isa, step)) v.push_back({isa, step});
    }
  }
  return v;
}
std::string Label(const Variant& v) {
  return std::string(IsaName(v.isa)) + "+" + std::string(Bf16StepName(v.step));
}
void RunMatmul(const Variant& v, const PackedMatrix& w, const float* x, int64_t tokens, int64_t ldx,
               float* y, int64_t ldy, ReductionOrder order = ReductionOrder::kCanonical) {
  UseBf16Step(v.step);
  ASSERT_EQ(Bf16StepFor(v.isa), v.step) << Label(v);
  Matmul(v.isa, w, x, tokens, ldx, y, ldy, order);
  UseBf16Step(Bf16Step::kAuto);
}

uint16_t ToBf16(float f) {
  return static_cast<uint16_t>(std::bit_cast<uint32_t>(f) >> 16);
}

// rows x cols bf16 weights, normal(0, 0.5), with a few rows scaled to the
// edges of the f32 range.
std::vector<uint16_t> MakeWeights(int64_t rows, int64_t cols, uint32_t seed) {
  std::vector<float> w = RandomVector(static_cast<size_t>(rows * cols), seed, 0.5f);
  std::vector<uint16_t> b(w.size());
  for (int64_t r = 0; r < rows; ++r) {
    // Row 3: tiny (products near 2^-126: flushed steps); row 5: huge
    // (overflow to infinity); row 6: bf16 subnormals (flushed in the pack).
    const float scale = r % 8 == 3   ? 0x1p-60f
                        : r % 8 == 5 ? 0x1p+100f
                        : r % 8 == 6 ? 0x1p-130f
                                     : 1.0f;
    for (int64_t k = 0; k < cols; ++k) {
      b[r * cols + k] = ToBf16(w[r * cols + k] * scale);
    }
  }
  return b;
}

// tokens x cols activations, normal(0, 1), tokens scaled to the edges, one
// with an infinity and one with a NaN.
std::vector<float> MakeActivations(int64_t tokens, int64_t cols, uint32_t seed) {
  std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), seed);
  for (int64_t t = 0; t < tokens; ++t) {
    const float scale = t % 7 == 2 ? 0x1p-64f : t % 7 == 4 ? 0x1p+30f : 1.0f;
    for (int64_t k = 0; k < cols; ++k) x[t * cols + k] *= scale;
    if (t % 11 == 6) x[t * cols + cols / 2] = std::numeric_limits<float>::infinity();
    if (t % 13 == 9) x[t * cols + cols / 3] = std::numeric_limits<float>::quiet_NaN();
    if (t % 5 == 1) x[t * cols] = 0x1p-140f;  // subnormal: rounds to zero
  }
  return x;
}

// ---- The instruction itself ---------------------------------------------

__attribute__((target("avx512f,avx512bf16"))) void HardwareDot(const float* acc, const uint32_t* a,
                                                               const uint32_t* b, float* out,
                                                               int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 r = _mm512_dpbf16_ps(_mm512_loadu_ps(acc + i), (__m512bh)_mm512_loadu_si512(a + i),
                                      (__m512bh)_mm512_loadu_si512(b + i));
    _mm512_storeu_ps(out + i, r);
  }
}

// A random bf16 of one of several families: any bit pattern, near 1, tiny
// exponents, the edges of the range, specials.
uint16_t RandomBf16(std::mt19937_64& g, int family) {
  const uint32_t r = static_cast<uint32_t>(g());
  const uint32_t sign = (r >> 31) << 15, mant = r & 0x7fu;
  switch (family) {
    case 0:
      return static_cast<uint16_t>(r & 0xffffu);
    case 1:
      return static_cast<uint16_t>(sign | (120 + (r >> 8) % 16) << 7 | mant);
    case 2:
      return static_cast<uint16_t>(sign | ((r >> 8) % 8) << 7 | mant);
    case 3:
      return static_cast<uint16_t>(sign | (60 + (r >> 8) % 10) << 7 | mant);
    case 4:
      return static_cast<uint16_t>(sign | (245 + (r >> 8) % 10) << 7 | mant);
    default: {
      const uint16_t special[] = {0x7fc1, 0xffc2, 0x7f81, 0x7f80, 0xff80, 0x0000, 0x8000, 0x0001};
      return special[(r >> 8) % 8];
    }
  }
}

// The step with the instruction's input handling: bf16 subnormals and a
// subnormal accumulator read as zeros of their sign (its DAZ).
float Daz(float x) {
  return std::fpclassify(x) == FP_SUBNORMAL ? std::copysign(0.0f, x) : x;
}

// 4M lanes of (acc, a, b) for one step pair: random accumulators and pairs
// from every family, accumulators that nearly cancel the first product
// (cancellation to subnormal results, the 2^-126 boundary) and at the
// smallest normals. kernel_operands: only what the kernels give the step --
// bf16 subnormals flushed (the pack and the activation rounding do that),
// no subnormal accumulator (every step flushes its result).
struct DotLanes {
  std::vector<float> acc;
  std::vector<uint32_t> a, b;
};
DotLanes RandomDotLanes(uint64_t seed, bool kernel_operands) {
  constexpr int64_t kLanes = int64_t{1} << 22;
  std::mt19937_64 g(seed);
  DotLanes lanes{std::vector<float>(kLanes), std::vector<uint32_t>(kLanes),
                 std::vector<uint32_t>(kLanes)};
  const auto draw = [&](int family) {
    const uint16_t h = RandomBf16(g, family);
    return kernel_operands && (h & 0x7f80u) == 0 ? static_cast<uint16_t>(h & 0x8000u) : h;
  };
  for (int64_t i = 0; i < kLanes; ++i) {
    const int family = static_cast<int>(i % 6);
    const uint16_t a0 = draw(family), a1 = draw(family);
    const uint16_t b0 = draw(family % 5), b1 = draw((family + 1) % 6);
    lanes.a[i] = uint32_t{a1} << 16 | a0;
    lanes.b[i] = uint32_t{b1} << 16 | b0;
    const uint64_t r = g();
    // Kernel operands leave out case 1.
    const int kind = kernel_operands ? std::array{0, 2, 3, 4}[(i / 6) % 4] : (i / 6) % 5;
    float& acc = lanes.acc[i];
    switch (kind) {
      case 0:
        acc = std::bit_cast<float>(static_cast<uint32_t>(r));
        break;
      case 1:  // small and subnormal accumulators
        acc = std::bit_cast<float>(static_cast<uint32_t>(r) & 0x80ffffffu);
        break;
      case 2:  // nearly minus the first product
        acc = -Bf16ToF32(a1) * Bf16ToF32(b1) *
              (1.0f + static_cast<float>(static_cast<int>(r % 2001) - 1000) * 0x1p-20f);
        break;
      case 3:  // at the smallest normals
        acc = std::bit_cast<float>(0x00800000u | (static_cast<uint32_t>(r) & 0x80000003u));
        break;
      default:
        acc = Bf16ToF32(RandomBf16(g, family)) * Bf16ToF32(RandomBf16(g, family));
        break;
    }
    if (kernel_operands) acc = Daz(acc);
  }
  return lanes;
}

TEST(Bf16MatmulTest, DotStepMatchesTheInstruction) {
  if (!Bf16DotAvailable(Isa::kAvx512)) GTEST_SKIP() << "this CPU has no AVX512_BF16";
  const DotLanes lanes = RandomDotLanes(2026, false);
  const std::vector<float>& acc = lanes.acc;
  const std::vector<uint32_t>&a = lanes.a, &b = lanes.b;
  const int64_t kLanes = static_cast<int64_t>(acc.size());
  std::vector<float> out(acc.size());
  HardwareDot(acc.data(), a.data(), b.data(), out.data(), kLanes);
  int64_t mismatches = 0;
  for (int64_t i = 0; i < kLanes; ++i) {
    const float a0 = Daz(Bf16ToF32(static_cast<uint16_t>(a[i]))),
                a1 = Daz(Bf16ToF32(static_cast<uint16_t>(a[i] >> 16)));
    const float b0 = Daz(Bf16ToF32(static_cast<uint16_t>(b[i]))),
                b1 = Daz(Bf16ToF32(static_cast<uint16_t>(b[i] >> 16)));
    const float model = Bf16DotStep(Bf16DotStep(Daz(acc[i]), a1, b1), a0, b0);
    if (std::bit_cast<uint32_t>(model) != std::bit_cast<uint32_t>(out[i])) {
      if (++mismatches <= 5) {
        ADD_FAILURE() << std::hex << "acc 0x" << std::bit_cast<uint32_t>(acc[i]) << " a 0x" << a[i]
                      << " b 0x" << b[i] << ": vdpbf16ps 0x" << std::bit_cast<uint32_t>(out[i])
                      << ", Bf16DotStep 0x" << std::bit_cast<uint32_t>(model);
      }
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << kLanes;
}

// The step as the kFlushToZero kernels compute it: two AVX-512 FMAs, first
// the pair's high halves, then the low halves, with MXCSR's flush-to-zero bit
// set (DAZ clear, round to nearest even).
__attribute__((target("avx512f"))) void FlushToZeroDot(const float* acc, const uint32_t* a,
                                                       const uint32_t* b, float* out, int64_t n) {
  const unsigned saved = _mm_getcsr();
  _mm_setcsr((saved & ~((3u << 13) | (1u << 6))) | (1u << 15));
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  for (int64_t i = 0; i < n; i += 16) {
    const __m512i va = _mm512_loadu_si512(a + i), vb = _mm512_loadu_si512(b + i);
    __m512 r =
        _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(va, high)),
                        _mm512_castsi512_ps(_mm512_and_si512(vb, high)), _mm512_loadu_ps(acc + i));
    r = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(va, 16)),
                        _mm512_castsi512_ps(_mm512_slli_epi32(vb, 16)), r);
    _mm512_storeu_ps(out + i, r);
  }
  _mm_setcsr(saved);
}

// The same with AVX2 FMAs (the kFlushToZero kernels of the AVX2 build).
__attribute__((target("avx2,fma"))) void FlushToZeroDotAvx2(const float* acc, const uint32_t* a,
                                                            const uint32_t* b, float* out,
                                                            int64_t n) {
  const unsigned saved = _mm_getcsr();
  _mm_setcsr((saved & ~((3u << 13) | (1u << 6))) | (1u << 15));
  const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    __m256 r =
        _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(va, high)),
                        _mm256_castsi256_ps(_mm256_and_si256(vb, high)), _mm256_loadu_ps(acc + i));
    r = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(va, 16)),
                        _mm256_castsi256_ps(_mm256_slli_epi32(vb, 16)), r);
    _mm256_storeu_ps(out + i, r);
  }
  _mm_setcsr(saved);
}

TEST(Bf16MatmulTest, DotStepUnderFlushToZeroMatchesTheDefinition) {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2}) {
    if (Bf16StepAvailable(isa, Bf16Step::kFlushToZero)) isas.push_back(isa);
  }
  if (isas.empty()) GTEST_SKIP() << "this CPU has neither AVX-512 nor AVX2";
  // The kFlushToZero kernels rest on x86 detecting tininess after rounding
  // with an unbounded exponent, as the step's flush does. Lanes as above,
  // with the operands the kernels give the step, and only the default NaN
  // in the kernels, so NaN lanes compare as NaNs.
  const DotLanes lanes = RandomDotLanes(2027, true);
  const std::vector<float>& acc = lanes.acc;
  const std::vector<uint32_t>&a = lanes.a, &b = lanes.b;
  const int64_t kLanes = static_cast<int64_t>(acc.size());
  std::vector<float> out(acc.size());
  for (Isa isa : isas) {
    if (isa == Isa::kAvx512) {
      FlushToZeroDot(acc.data(), a.data(), b.data(), out.data(), kLanes);
    } else {
      FlushToZeroDotAvx2(acc.data(), a.data(), b.data(), out.data(), kLanes);
    }
    int64_t mismatches = 0, flushed = 0;
    for (int64_t i = 0; i < kLanes; ++i) {
      const float a0 = Bf16ToF32(static_cast<uint16_t>(a[i])),
                  a1 = Bf16ToF32(static_cast<uint16_t>(a[i] >> 16));
      const float b0 = Bf16ToF32(static_cast<uint16_t>(b[i])),
                  b1 = Bf16ToF32(static_cast<uint16_t>(b[i] >> 16));
      const float first = Bf16DotStep(acc[i], a1, b1);
      const float model = Bf16DotStep(first, a0, b0);
      const float plain = std::fma(a0, b0, std::fma(a1, b1, acc[i]));
      flushed +=
          std::bit_cast<uint32_t>(plain) != std::bit_cast<uint32_t>(model) && !std::isnan(model);
      const bool same = std::isnan(model)
                            ? std::isnan(out[i])
                            : std::bit_cast<uint32_t>(model) == std::bit_cast<uint32_t>(out[i]);
      if (!same && ++mismatches <= 5) {
        ADD_FAILURE() << IsaName(isa) << std::hex << " acc 0x" << std::bit_cast<uint32_t>(acc[i])
                      << " a 0x" << a[i] << " b 0x" << b[i] << ": FMAs under flush-to-zero 0x"
                      << std::bit_cast<uint32_t>(out[i]) << ", Bf16DotStep 0x"
                      << std::bit_cast<uint32_t>(model);
      }
    }
    EXPECT_EQ(mismatches, 0) << IsaName(isa) << ": of " << kLanes;
    // The lanes exercise the flush: many differ from plain FMAs.
    EXPECT_GT(flushed, 1000);
  }
}

__attribute__((target("avx512f,avx512bf16"))) void HardwareRound(const float* x, uint16_t* out,
                                                                 int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __m256bh r = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
    std::memcpy(out + i, &r, 32);
  }
}

TEST(Bf16MatmulTest, ActivationRounding) {
  EXPECT_EQ(RoundToBf16(1.0f), 0x3f80);
  EXPECT_EQ(RoundToBf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie: to even
  EXPECT_EQ(RoundToBf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie: to even
  EXPECT_EQ(RoundToBf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
  EXPECT_EQ(RoundToBf16(std::bit_cast<float>(0x7f7fffffu)), 0x7f80);  // overflow: Inf
  EXPECT_EQ(RoundToBf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(RoundToBf16(std::bit_cast<float>(0x007fffffu)), 0x0000);  // subnormal: zero
  EXPECT_EQ(RoundToBf16(std::bit_cast<float>(0x80000001u)), 0x8000);
  EXPECT_EQ(RoundToBf16(std::bit_cast<float>(0x00ffffffu)), 0x0100);
  EXPECT_EQ(RoundToBf16(std::bit_cast<float>(0x7fc00001u)), 0xffc0);  // every NaN: default NaN
  EXPECT_EQ(RoundToBf16(std::bit_cast<float>(0x7f800001u)), 0xffc0);
  EXPECT_EQ(RoundToBf16(std::bit_cast<float>(0xffa00000u)), 0xffc0);
  if (!Bf16DotAvailable(Isa::kAvx512)) return;
  // Apart from NaNs (the instruction keeps their payload), the rounding is
  // vcvtneps2bf16's: every 251st f32 bit pattern and all of [0, 2^20).
  std::vector<float> x;
  for (uint64_t u = 0; u < (uint64_t{1} << 32); u += 251) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(u));
    if (!std::isnan(f)) x.push_back(f);
  }
  for (uint32_t u = 0; u < (1u << 20); ++u) x.push_back(std::bit_cast<float>(u));
  while (x.size() % 16 != 0) x.push_back(0.0f);
  std::vector<uint16_t> hw(x.size());
  HardwareRound(x.data(), hw.data(), static_cast<int64_t>(x.size()));
  int64_t mismatches = 0;
  for (size_t i = 0; i < x.size(); ++i) mismatches += RoundToBf16(x[i]) != hw[i];
  EXPECT_EQ(mismatches, 0) << "of " << x.size();
}

// ---- The kernels ----------------------------------------------------------

struct Shape {
  int64_t rows, cols, tokens;
};

void ExpectEveryVariantEqualsReference(const Shape& s, uint32_t seed) {
  const std::vector<float> x = MakeActivations(s.tokens, s.cols, seed);
  const std::vector<uint16_t> w = MakeWeights(s.rows, s.cols, seed + 1);
  std::vector<float> expected(static_cast<size_t>(s.tokens * s.rows));
  Bf16MatmulReference(w.data(), s.rows, s.cols, ReductionSlice::Full(s.cols), x.data(), s.tokens,
                      s.cols, expected.data(), s.rows);
  const PackedMatrix packed = PackedMatrix::Pack(DType::kBF16, w.data(), s.rows, s.cols,
                                                 ReductionSlice::Full(s.cols), Compute::kBf16);
  for (const Variant& v : Variants()) {
    std::vector<float> y(expected.size(), -1.0f);
    RunMatmul(v, packed, x.data(), s.tokens, s.cols, y.data(), s.rows);
    EXPECT_TRUE(SameBits(y, expected))
        << Label(v) << " " << s.rows << "x" << s.cols << " tokens " << s.tokens;
  }
}

TEST(Bf16MatmulTest, EveryIsaEqualsReference) {
  // K below 64 (empty segments), segments of odd length (a padded last
  // pair), K = 2048 and 5632 (TinyLlama); rows leaving partial panels; one
  // token (decode), the few-token path (2..32), prefill with partial token
  // blocks and several chunks.
  const Shape shapes[] = {{1, 3, 1},     {16, 64, 1},   {17, 100, 7},   {5, 129, 3},
                          {33, 200, 13}, {100, 256, 8}, {130, 2048, 1}, {40, 5632, 2},
                          {7, 1000, 64}, {70, 480, 33}, {64, 777, 25},  {48, 2048, 40}};
  uint32_t seed = 100;
  for (const Shape& s : shapes) ExpectEveryVariantEqualsReference(s, seed++);
}

TEST(Bf16MatmulTest, DecodeEqualsReference) {
  // One token: the decode blocks' software prefetch runs a fixed number of
  // bytes ahead of each panel (matmul_impl.h, kDecodePrefetchBytes); K below
  // and above that distance, odd pairs, two full 8-panel groups plus single
  // panels.
  uint32_t seed = 300;
  for (int64_t cols : {1, 17, 33, 255, 1031, 5633}) {
    ExpectEveryVariantEqualsReference({16 * 8 * 2 + 16 * 3 + 5, cols, 1}, seed++);
  }
}

TEST(Bf16MatmulTest, FlushAtTheSmallestNormalIsTheInstructions) {
  // One pair: acc = 2^-63 * 2^-63 = 2^-126, then a second product of -2^-150
  // (exact sum 2^-126 - 2^-150: 24 bits below 2^-126, flushed to +0 by
  // vdpbf16ps, while an f32 FMA rounds it up to 2^-126) or -2^-151 (rounds
  // to 2^-126 with 24 bits: kept). Every variant, every path.
  for (const float second : {0x1p-75f, 0x1p-76f}) {
    const float want = second == 0x1p-75f ? 0.0f : 0x1p-126f;
    EXPECT_EQ(Bf16DotStep(Bf16DotStep(0.0f, 0x1p-63f, 0x1p-63f), -0x1p-75f, second), want);
    // K = 128: segments of 2 columns, so columns 0 and 1 are one pair of
    // one chain (the other segments add +0).
    const int64_t rows = 17, cols = 128;
    std::vector<uint16_t> w(static_cast<size_t>(rows * cols), 0);
    for (int64_t r = 0; r < rows; ++r) {
      w[r * cols] = ToBf16(0x1p-63f);
      w[r * cols + 1] = ToBf16(-0x1p-75f);
    }
    const PackedMatrix packed = PackedMatrix::Pack(DType::kBF16, w.data(), rows, cols,
                                                   ReductionSlice::Full(cols), Compute::kBf16);
    for (int64_t tokens : {int64_t{1}, int64_t{5}, int64_t{40}}) {
      std::vector<float> x(static_cast<size_t>(tokens * cols), 0.0f);
      for (int64_t t = 0; t < tokens; ++t) {
        x[t * cols] = 0x1p-63f;
        x[t * cols + 1] = second;
      }
      for (const Variant& v : Variants()) {
        std::vector<float> y(static_cast<size_t>(tokens * rows), -1.0f);
        RunMatmul(v, packed, x.data(), tokens, cols, y.data(), rows);
        for (float got : y) {
          ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want))
              << Label(v) << " tokens " << tokens << " second " << second;
        }
      }
    }
  }
}

TEST(Bf16MatmulTest, SubnormalSumOfSegmentsIsKept) {
  // The tree adds segment sums as plain f32 adds: two normal sums that
  // nearly cancel give a subnormal, which the kFlushToZero kernels (running
  // with MXCSR's flush-to-zero bit) must not flush. Segment 0 sums
  // 2^-125 (1 + 2^-7)^2, segment 1 -2^-125 (1 + 2^-6); their sum is 2^-139,
  // and every later add of the tree adds +0 to it.
  const int64_t rows = 17, cols = 128;  // segments of 2 columns
  std::vector<uint16_t> w(static_cast<size_t>(rows * cols), 0);
  for (int64_t r = 0; r < rows; ++r) {
    w[r * cols] = ToBf16(0x1p-62f * (1.0f + 0x1p-7f));
    w[r * cols + 2] = ToBf16(-0x1p-62f * (1.0f + 0x1p-6f));
  }
  const PackedMatrix packed = PackedMatrix::Pack(DType::kBF16, w.data(), rows, cols,
                                                 ReductionSlice::Full(cols), Compute::kBf16);
  for (int64_t tokens : {int64_t{1}, int64_t{5}, int64_t{40}}) {
    std::vector<float> x(static_cast<size_t>(tokens * cols), 0.0f);
    for (int64_t t = 0; t < tokens; ++t) {
      x[t * cols] = 0x1p-63f * (1.0f + 0x1p-7f);
      x[t * cols + 2] = 0x1p-63f;
    }
    std::vector<float> expected(static_cast<size_t>(tokens * rows));
    Bf16MatmulReference(w.data(), rows, cols, ReductionSlice::Full(cols), x.data(), tokens, cols,
                        expected.data(), rows);
    ASSERT_EQ(expected[0], 0x1p-139f);
    for (const Variant& v : Variants()) {
      std::vector<float> y(expected.size(), -1.0f);
      RunMatmul(v, packed, x.data(), tokens, cols, y.data(), rows);
      EXPECT_TRUE(SameBits(y, expected)) << Label(v) << " tokens " << tokens;
    }
  }
}

TEST(Bf16MatmulTest, FlushToZeroStepLeavesTheCallersMxcsr) {
  if (!Bf16StepAvailable(Isa::kAvx2, Bf16Step::kFlushToZero)) {
    GTEST_SKIP() << "this CPU has neither AVX-512 nor AVX2";
  }
  // A caller running with round toward zero and DAZ (bits 14..13 = 11, bit
  // 6): the kernel sets its own MXCSR, gives the reference's bits, and puts
  // the caller's back.
  const Shape s{33, 200, 13};
  const std::vector<float> x = MakeActivations(s.tokens, s.cols, 91);
  const std::vector<uint16_t> w = MakeWeights(s.rows, s.cols, 92);
  std::vector<float> expected(static_cast<size_t>(s.tokens * s.rows));
  Bf16MatmulReference(w.data(), s.rows, s.cols, ReductionSlice::Full(s.cols), x.data(), s.tokens,
                      s.cols, expected.data(), s.rows);
  const PackedMatrix packed = PackedMatrix::Pack(DType::kBF16, w.data(), s.rows, s.cols,
                                                 ReductionSlice::Full(s.cols), Compute::kBf16);
  for (Isa isa : SupportedIsas()) {
    if (!Bf16StepAvailable(isa, Bf16Step::kFlushToZero)) continue;
    WithThreads(1, [&] {
      const unsigned saved = _mm_getcsr();
      const unsigned caller = saved | (3u << 13) | (1u << 6);
      _mm_setcsr(caller);
      std::vector<float> y(expected.size(), -1.0f);
      RunMatmul({isa, Bf16Step::kFlushToZero}, packed, x.data(), s.tokens, s.cols, y.data(),
                s.rows);
      const unsigned after = _mm_getcsr();
      _mm_setcsr(saved);
      // The control bits (the status flags, bits 5..0, are sticky exception
      // records that oneTBB's task dispatch does not keep).
      EXPECT_EQ(after & ~0x3fu, caller & ~0x3fu) << IsaName(isa);
      EXPECT_TRUE(SameBits(y, expected)) << IsaName(isa);
    });
  }
}

TEST(Bf16MatmulTest, LongPrefillEqualsReference) {
  // More token blocks than one round of the kernel's state (256 blocks).
  ExpectEveryVariantEqualsReference({20, 330, 1600}, 71);
}

TEST(Bf16MatmulTest, StridedInputsAndOutputs) {
  const int64_t rows = 24, cols = 130, tokens = 9, ldx = 150, ldy = 31;
  const std::vector<float> x = MakeActivations(tokens, ldx, 5);
  const std::vector<uint16_t> w = MakeWeights(rows, cols, 6);
  std::vector<float> expected(static_cast<size_t>(tokens * ldy), 0.0f);
  Bf16MatmulReference(w.data(), rows, cols, ReductionSlice::Full(cols), x.data(), tokens, ldx,
                      expected.data(), ldy);
  const PackedMatrix packed = PackedMatrix::Pack(DType::kBF16, w.data(), rows, cols,
                                                 ReductionSlice::Full(cols), Compute::kBf16);
  for (const Variant& v : Variants()) {
    std::vector<float> y(expected.size(), 0.0f);
    RunMatmul(v, packed, x.data(), tokens, ldx, y.data(), ldy);
    EXPECT_TRUE(SameBits(y, expected)) << Label(v);
  }
}

TEST(Bf16MatmulTest, TokenResultIndependentOfBatchAndThreads) {
  const int64_t rows = 70, cols = 1000, tokens = 45;
  const std::vector<float> x = MakeActivations(tokens, cols, 41);
  const std::vector<uint16_t> w = MakeWeights(rows, cols, 42);
  const PackedMatrix packed = PackedMatrix::Pack(DType::kBF16, w.data(), rows, cols,
                                                 ReductionSlice::Full(cols), Compute::kBf16);
  for (const Variant& v : Variants()) {
    // Each token alone, one thread: the baseline.
    std::vector<float> alone(static_cast<size_t>(tokens * rows));
    WithThreads(1, [&] {
      for (int64_t t = 0; t < tokens; ++t) {
        RunMatmul(v, packed, x.data() + t * cols, 1, cols, alone.data() + t * rows, rows);
      }
    });
    for (int threads : {1, 2, 3}) {
      for (int64_t batch : {2, 7, 45}) {
        std::vector<float> y(alone.size());
        WithThreads(threads, [&] {
          for (int64_t t0 = 0; t0 < tokens; t0 += batch) {
            const int64_t n = std::min(batch, tokens - t0);
            RunMatmul(v, packed, x.data() + t0 * cols, n, cols, y.data() + t0 * rows, rows);
          }
        });
        EXPECT_TRUE(SameBits(y, alone)) << Label(v) << " threads " << threads << " batch " << batch;
      }
    }
  }
}

TEST(Bf16MatmulTest, ShardsCombinedPairwiseEqualTheFullResult) {
  // K = 1000: segments of 15 and 16 columns, so shards hold padded pairs.
  const int64_t rows = 40, cols = 1000, tokens = 5;
  const std::vector<float> x = MakeActivations(tokens, cols, 31);
  const std::vector<uint16_t> w = MakeWeights(rows, cols, 32);
  std::vector<float> full(static_cast<size_t>(tokens * rows));
  Bf16MatmulReference(w.data(), rows, cols, ReductionSlice::Full(cols), x.data(), tokens, cols,
                      full.data(), rows);
  for (int tp : {2, 4, 8, 64}) {
    for (const Variant& v : Variants()) {
      std::vector<std::vector<float>> parts;
      for (int r = 0; r < tp; ++r) {
        const ReductionSlice slice = ReductionSlice::Shard(cols, r, tp);
        const PackedMatrix packed = PackedMatrix::Pack(
            DType::kBF16, w.data() + slice.column_begin(), rows, cols, slice, Compute::kBf16);
        std::vector<float> y(static_cast<size_t>(tokens * rows));
        RunMatmul(v, packed, x.data() + slice.column_begin(), tokens, cols, y.data(), rows);
        parts.push_back(std::move(y));
      }
      for (int distance = 1; distance < tp; distance *= 2) {
        for (int r = 0; r < tp; r += 2 * distance) {
          for (size_t i = 0; i < parts[r].size(); ++i) parts[r][i] += parts[r + distance][i];
        }
      }
      EXPECT_TRUE(SameBits(parts[0], full)) << Label(v) << " tp " << tp;
    }
  }
}

TEST(Bf16MatmulTest, PlainOrderIsTheSameOnEveryIsa) {
  const int64_t rows = 33, cols = 301, tokens = 10;
  const std::vector<float> x = MakeActivations(tokens, cols, 51);
  const std::vector<uint16_t> w = MakeWeights(rows, cols, 52);
  const PackedMatrix packed = PackedMatrix::Pack(DType::kBF16, w.data(), rows, cols,
                                                 ReductionSlice::Full(cols), Compute::kBf16);
  std::vector<float> first;
  for (const Variant& v : Variants()) {
    std::vector<float> y(static_cast<size_t>(tokens * rows));
    RunMatmul(v, packed, x.data(), tokens, cols, y.data(), rows, ReductionOrder::kPlain);
    if (first.empty()) {
      first = y;
    } else {
      EXPECT_TRUE(SameBits(y, first)) << Label(v);
    }
  }
}

TEST(Bf16MatmulTest, PackKeepsEveryElement) {
  const int64_t rows = 19, cols = 131;
  const std::vector<uint16_t> w = MakeWeights(rows, cols, 61);
  for (int tp : {1, 4}) {
    const ReductionSlice slice = ReductionSlice::Shard(cols, tp - 1, tp);
    const PackedMatrix packed = PackedMatrix::Pack(DType::kBF16, w.data() + slice.column_begin(),
                                                   rows, cols, slice, Compute::kBf16);
    EXPECT_EQ(packed.compute(), Compute::kBf16);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t k = 0; k < slice.columns(); ++k) {
        const uint16_t v = w[r * cols + slice.column_begin() + k];
        const uint16_t flushed = (v & 0x7f80) == 0 ? (v & 0x8000) : v;  // subnormals: zero
        ASSERT_EQ(std::bit_cast<uint32_t>(packed.At(r, k)), uint32_t{flushed} << 16)
            << r << " " << k;
      }
    }
  }
}

TEST(Bf16MatmulTest, ReferenceIsCloseToDoublePrecision) {
  // The bf16 compute rounds the activations (relative error <= 2^-9 each):
  // the result stays within 2^-8 of the sum of |products| of the exact
  // double-precision dot product of the f32 activations and the weights.
  const int64_t rows = 8, cols = 512, tokens = 4;
  const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), 81);
  std::vector<float> wf = RandomVector(static_cast<size_t>(rows * cols), 82, 0.5f);
  std::vector<uint16_t> w(wf.size());
  for (size_t i = 0; i < wf.size(); ++i) w[i] = ToBf16(wf[i]);
  std::vector<float> y(static_cast<size_t>(tokens * rows));
  Bf16MatmulReference(w.data(), rows, cols, ReductionSlice::Full(cols), x.data(), tokens, cols,
                      y.data(), rows);
  for (int64_t m = 0; m < tokens; ++m) {
    for (int64_t n = 0; n < rows; ++n) {
      double exact = 0, magnitude = 0;
      for (int64_t k = 0; k < cols; ++k) {
        const double p = static_cast<double>(Bf16ToF32(w[n * cols + k])) * x[m * cols + k];
        exact += p;
        magnitude += std::fabs(p);
      }
      EXPECT_NEAR(y[m * rows + n], exact, magnitude * 0x1p-8) << m << " " << n;
    }
  }
}

}  // namespace
}  // namespace lockstep::kernels
