#include "lockstep/base/dtype.h"

#include <cpuid.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <random>

#include <gtest/gtest.h>

namespace lockstep {
namespace {

// F16C's hardware conversion is the reference for the portable code.
__attribute__((target("f16c"))) uint16_t HardwareF32ToF16(float f) {
  return static_cast<uint16_t>(
      _mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0));
}
__attribute__((target("f16c"))) float HardwareF16ToF32(uint16_t h) { return _cvtsh_ss(h); }

// CPUID leaf 1, ECX bit 29 (clang 14's __builtin_cpu_supports does not know
// "f16c"; kernels/src/isa.cc reads the same bit).
bool CpuHasF16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
}

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}

TEST(DTypeTest, NamesRoundTrip) {
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
    auto parsed = ParseDType(DTypeName(t));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, t);
  }
  auto bad = ParseDType("int8");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("int8"), std::string::npos);
  EXPECT_EQ(DTypeSize(DType::kF32), 4u);
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
}

// Bit for bit, NaNs included: F16C quiets a signalling NaN (0x7c01..0x7dff
// and their negatives: 1,022 patterns), and so must the scalar code, or the
// same f16 weights would give different bits on different ISAs.
TEST(DTypeTest, F16WideningMatchesF16cBitForBitForEveryPattern) {
  if (!CpuHasF16c()) GTEST_SKIP() << "CPU without F16C";
  int nans = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    const float ours = F16ToF32(static_cast<uint16_t>(h));
    const float theirs = HardwareF16ToF32(static_cast<uint16_t>(h));
    ASSERT_EQ(Bits(ours), Bits(theirs)) << "half bits 0x" << std::hex << h;
    if (std::isnan(ours)) {
      ++nans;
      EXPECT_NE(Bits(ours) & 0x00400000u, 0u) << "NaN not quiet for half bits 0x" << std::hex << h;
    }
  }
  EXPECT_EQ(nans, 2 * 1023);
}

TEST(DTypeTest, F16NarrowingOfEveryNanPayloadMatchesF16c) {
  if (!CpuHasF16c()) GTEST_SKIP() << "CPU without F16C";
  // Every f32 NaN whose low 13 payload bits are 0 or 1 (all 2 x 2^10 x 2
  // upper payloads, signalling and quiet), both signs.
  for (uint32_t sign : {0u, 0x80000000u}) {
    for (uint32_t upper = 0; upper < 1024; ++upper) {
      for (uint32_t low : {0u, 1u, 0x1fffu}) {
        const uint32_t b = sign | 0x7f800000u | upper << 13 | low;
        if ((b & 0x7fffffu) == 0) continue;  // infinity
        float f;
        std::memcpy(&f, &b, 4);
        ASSERT_EQ(F32ToF16(f), HardwareF32ToF16(f)) << "f32 bits 0x" << std::hex << b;
      }
    }
  }
}

TEST(DTypeTest, F16NarrowingMatchesF16c) {
  if (!CpuHasF16c()) GTEST_SKIP() << "CPU without F16C";
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 2000000; ++i) {
    uint32_t b = bits(rng);
    // Bias half of the samples into the f16 range, subnormals included.
    if (i % 2 == 0) b = (b & 0x807fffffu) | ((100u + (b >> 24) % 45u) << 23);
    float f;
    std::memcpy(&f, &b, 4);
    uint16_t ours = F32ToF16(f);
    uint16_t theirs = HardwareF32ToF16(f);
    ASSERT_EQ(ours, theirs) << "f32 bits " << std::hex << b;
  }
}

TEST(DTypeTest, Bf16RoundsToNearestEven) {
  EXPECT_EQ(F32ToBf16(1.0f), 0x3f80);
  // 1 + 2^-8 is exactly half-way between two bf16 values: ties to even (down).
  EXPECT_EQ(F32ToBf16(1.0f + 1.0f / 256), 0x3f80);
  // 1 + 3*2^-8 is half-way as well: ties to even (up).
  EXPECT_EQ(F32ToBf16(1.0f + 3.0f / 256), 0x3f82);
  EXPECT_EQ(F32ToBf16(1.0f + 1.0f / 256 + 1.0f / 65536), 0x3f81);
  EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(std::nanf("")))));
  EXPECT_EQ(Bf16ToF32(F32ToBf16(-2.5f)), -2.5f);
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = Bf16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(F32ToBf16(f), h);
  }
}

}  // namespace
}  // namespace lockstep
