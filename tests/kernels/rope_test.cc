// RoPE: the table against double-precision cos/sin; ApplyRope on every Isa
// bit-exact against the reference (head sizes that leave vector tails); the
// rotate-half convention checked on a hand-computed case; tables of any
// frequencies (rope scaling): the plain table's bits at attention factor 1,
// one rounding of the double product otherwise, per-position frequencies.
#include "lockstep/kernels/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernel_test_util.h"

namespace lockstep::kernels {
namespace {

using testing::RandomVector;
using testing::SameBits;
using testing::SupportedIsas;
using testing::WithThreads;

TEST(RopeTest, TableHoldsRoundedDoubleCosSin) {
  const RopeTable table(64, 500000.0, 300);
  for (int p : {0, 1, 63, 299}) {
    for (int i : {0, 1, 17, 31}) {
      const double angle = p * std::pow(500000.0, -2.0 * i / 64);
      EXPECT_EQ(table.cos_at(p)[i], static_cast<float>(std::cos(angle)));
      EXPECT_EQ(table.sin_at(p)[i], static_cast<float>(std::sin(angle)));
    }
  }
  EXPECT_EQ(table.cos_at(0)[5], 1.0f);
  EXPECT_EQ(table.sin_at(0)[5], 0.0f);
}

TEST(RopeTest, FrequencyTableWithPlainFrequenciesIsThePlainTable) {
  const RopeTable plain(32, 10000.0, 200);
  const RopeTable general(32, 200, 1.0, false, [](int, double* f) {
    for (int i = 0; i < 16; ++i) f[i] = std::pow(10000.0, -2.0 * i / 32);
  });
  for (int p = 0; p < 200; ++p) {
    EXPECT_TRUE(SameBits(plain.cos_at(p), general.cos_at(p), 16)) << p;
    EXPECT_TRUE(SameBits(plain.sin_at(p), general.sin_at(p), 16)) << p;
  }
}

TEST(RopeTest, FrequencyTableRoundsTheScaledDoubleOnce) {
  // Frequencies that change at position 50 and an attention factor: entry
  // (p, i) = f32(cos(p * f_i(p)) * factor).
  auto freq = [](int p, int i) { return (p < 50 ? 0.5 : 0.25) / (1.0 + i); };
  int calls = 0;
  const RopeTable table(8, 100, 1.25, true, [&](int p, double* f) {
    ++calls;
    for (int i = 0; i < 4; ++i) f[i] = freq(p, i);
  });
  EXPECT_EQ(calls, 100);
  for (int p : {0, 1, 49, 50, 99}) {
    for (int i = 0; i < 4; ++i) {
      const double angle = p * freq(p, i);
      EXPECT_EQ(table.cos_at(p)[i], static_cast<float>(std::cos(angle) * 1.25)) << p << " " << i;
      EXPECT_EQ(table.sin_at(p)[i], static_cast<float>(std::sin(angle) * 1.25)) << p << " " << i;
    }
  }
  // Position-independent frequencies are asked for once.
  calls = 0;
  const RopeTable once(8, 100, 1.0, false, [&](int, double* f) {
    ++calls;
    for (int i = 0; i < 4; ++i) f[i] = 0.1;
  });
  EXPECT_EQ(calls, 1);
}

TEST(RopeTest, RotateHalfConvention) {
  // head_dim 4: pairs (0, 2) and (1, 3) rotate by p*f_0 and p*f_1.
  const RopeTable table(4, 10000.0, 8);
  std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f};
  const int32_t position = 3;
  ApplyRopeReference(table, x.data(), 1, 4, 1, &position);
  const float c0 = table.cos_at(3)[0], s0 = table.sin_at(3)[0];
  const float c1 = table.cos_at(3)[1], s1 = table.sin_at(3)[1];
  EXPECT_EQ(x[0], 1.0f * c0 - 3.0f * s0);
  EXPECT_EQ(x[2], 3.0f * c0 + 1.0f * s0);
  EXPECT_EQ(x[1], 2.0f * c1 - 4.0f * s1);
  EXPECT_EQ(x[3], 4.0f * c1 + 2.0f * s1);
}

TEST(RopeTest, EveryIsaEqualsReference) {
  const int64_t tokens = 7;
  for (int head_dim : {2, 8, 34, 64, 80, 96, 128}) {
    const int heads = 3;
    const int64_t ldx = heads * head_dim + 5;  // strided rows
    const RopeTable table(head_dim, 10000.0, 4096);
    const std::vector<int32_t> positions = {0, 1, 63, 64, 1000, 4095, 17};
    const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * ldx), 1);
    std::vector<float> expected = x;
    ApplyRopeReference(table, expected.data(), tokens, ldx, heads, positions.data());
    for (Isa isa : SupportedIsas()) {
      std::vector<float> y = x;
      ApplyRope(isa, table, y.data(), tokens, ldx, heads, positions.data());
      EXPECT_TRUE(SameBits(y, expected)) << IsaName(isa) << " head_dim " << head_dim;
      std::vector<float> z = x;
      WithThreads(2,
                  [&] { ApplyRope(isa, table, z.data(), tokens, ldx, heads, positions.data()); });
      EXPECT_TRUE(SameBits(z, expected)) << IsaName(isa) << " 2 threads";
    }
  }
}

}  // namespace
}  // namespace lockstep::kernels
