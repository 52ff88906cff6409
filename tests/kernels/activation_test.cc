// Exp accuracy and special values; SwiGlu, Add and Softmax bit-exact against
// their references on every Isa; the references against double precision.
#include "lockstep/kernels/activation.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "kernel_test_util.h"

namespace lockstep::kernels {
namespace {

using testing::RandomVector;
using testing::SameBits;
using testing::SupportedIsas;
using testing::WithThreads;

// Distance in units in the last place between two finite floats of the same
// sign (monotonic integer mapping of the bit patterns).
int64_t UlpDistance(float a, float b) {
  auto key = [](float f) {
    const int32_t i = std::bit_cast<int32_t>(f);
    return i < 0 ? int64_t{INT32_MIN} - i : int64_t{i};
  };
  return std::abs(key(a) - key(b));
}

TEST(ExpTest, WithinTwoUlpOfCorrectlyRoundedExp) {
  int64_t worst = 0;
  float worst_x = 0.0f;
  // Every 1009th float of [-87, 87] (2.2 million values; all 2.2e9 would take
  // minutes), compared with exp in double rounded once to float.
  const uint32_t limit = std::bit_cast<uint32_t>(87.0f);
  for (uint32_t sign : {0u, 0x80000000u}) {
    for (uint32_t bits = 0; bits <= limit; bits += 1009) {
      const float x = std::bit_cast<float>(bits | sign);
      const float expected = static_cast<float>(std::exp(static_cast<double>(x)));
      const int64_t ulp = UlpDistance(Exp(x), expected);
      if (ulp > worst) {
        worst = ulp;
        worst_x = x;
      }
    }
  }
  EXPECT_LE(worst, 2) << "worst at x = " << worst_x;
  RecordProperty("worst_ulp", static_cast<int>(worst));
}

TEST(ExpTest, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(Exp(0.0f), 1.0f);
  EXPECT_EQ(Exp(-0.0f), 1.0f);
  EXPECT_EQ(Exp(-inf), 0.0f);
  EXPECT_EQ(Exp(inf), inf);
  EXPECT_TRUE(std::isnan(Exp(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(Exp(89.0f), inf);
  EXPECT_EQ(Exp(1000.0f), inf);
  EXPECT_EQ(Exp(-200.0f), 0.0f);
  EXPECT_EQ(Exp(-110.0f), 0.0f);
  // Largest finite result and the subnormal range.
  EXPECT_TRUE(std::isfinite(Exp(88.7f)));
  EXPECT_LE(UlpDistance(Exp(88.7f), static_cast<float>(std::exp(double{88.7f}))), 2);
  for (float x : {-87.5f, -90.0f, -95.0f, -100.0f, -103.0f}) {
    const float expected = static_cast<float>(std::exp(static_cast<double>(x)));
    EXPECT_GT(Exp(x), 0.0f) << x;
    EXPECT_LE(UlpDistance(Exp(x), expected), 2) << x;
  }
  EXPECT_EQ(Exp(1.0f), static_cast<float>(std::exp(1.0)));
}

// Edge values mixed into random data, so every Isa's Exp sees them.
std::vector<float> WithSpecialValues(size_t n, uint32_t seed, float scale) {
  std::vector<float> v = RandomVector(n, seed, scale);
  const float specials[] = {0.0f, -0.0f, 88.0f, -88.0f, 100.0f, -100.0f, 1e-30f, -1e-30f};
  for (size_t i = 0; i < n && i < 8; ++i) v[i * 3 % n] = specials[i];
  return v;
}

TEST(ActivationTest, SwiGluEqualsReference) {
  for (int64_t n : {1, 15, 16, 17, 1000, 40001}) {
    const std::vector<float> gate = WithSpecialValues(n, 1, 4.0f);
    const std::vector<float> up = RandomVector(n, 2);
    std::vector<float> expected(n);
    SwiGluReference(gate.data(), up.data(), n, expected.data());
    for (Isa isa : SupportedIsas()) {
      std::vector<float> out(n);
      SwiGlu(isa, gate.data(), up.data(), n, out.data());
      EXPECT_TRUE(SameBits(out, expected)) << IsaName(isa) << " n " << n;
      std::vector<float> in_place = gate;  // out aliasing gate
      SwiGlu(isa, in_place.data(), up.data(), n, in_place.data());
      EXPECT_TRUE(SameBits(in_place, expected)) << IsaName(isa) << " in place, n " << n;
    }
  }
}

TEST(ActivationTest, SwiGluReferenceIsAccurate) {
  const std::vector<float> gate = RandomVector(1000, 3, 3.0f), up = RandomVector(1000, 4);
  std::vector<float> out(1000);
  SwiGluReference(gate.data(), up.data(), 1000, out.data());
  for (int i = 0; i < 1000; ++i) {
    const double g = gate[i];
    const double expected = g / (1.0 + std::exp(-g)) * up[i];
    EXPECT_NEAR(out[i], expected, 1e-6 * std::abs(expected) + 1e-30);
  }
}

TEST(ActivationTest, AddEqualsPlainAdds) {
  for (int64_t n : {1, 17, 50000}) {
    const std::vector<float> x = RandomVector(n, 5), y0 = RandomVector(n, 6);
    std::vector<float> expected(n);
    for (int64_t i = 0; i < n; ++i) expected[i] = y0[i] + x[i];
    for (Isa isa : SupportedIsas()) {
      std::vector<float> y = y0;
      Add(isa, y.data(), x.data(), n);
      EXPECT_TRUE(SameBits(y, expected)) << IsaName(isa);
    }
  }
}

TEST(ActivationTest, SoftmaxEqualsReference) {
  for (int64_t n : {1, 2, 5, 63, 64, 65, 1000, 32000, 128256}) {
    const std::vector<float> x = WithSpecialValues(n, 7, 5.0f);
    std::vector<float> expected = x;
    SoftmaxReference(expected.data(), n);
    for (Isa isa : SupportedIsas()) {
      std::vector<float> y = x;
      Softmax(isa, y.data(), n);
      EXPECT_TRUE(SameBits(y, expected)) << IsaName(isa) << " n " << n;
    }
  }
}

TEST(ActivationTest, SoftmaxReferenceIsAccurate) {
  const int n = 5000;
  const std::vector<float> x = RandomVector(n, 8, 3.0f);
  std::vector<float> y = x;
  SoftmaxReference(y.data(), n);
  double m = x[0], sum = 0.0;
  for (float v : x) m = std::max(m, double{v});
  for (float v : x) sum += std::exp(v - m);
  double total = 0.0;
  for (int i = 0; i < n; ++i) {
    const double expected = std::exp(x[i] - m) / sum;
    EXPECT_NEAR(y[i], expected, 1e-5 * expected);
    total += y[i];
  }
  EXPECT_NEAR(total, 1.0, 1e-5);
}

TEST(ActivationTest, ThreadCountDoesNotChangeBits) {
  const int64_t n = 100000;
  const std::vector<float> gate = RandomVector(n, 9), up = RandomVector(n, 10);
  for (Isa isa : SupportedIsas()) {
    std::vector<float> a(n), b(n);
    WithThreads(1, [&] { SwiGlu(isa, gate.data(), up.data(), n, a.data()); });
    WithThreads(2, [&] { SwiGlu(isa, gate.data(), up.data(), n, b.data()); });
    EXPECT_TRUE(SameBits(a, b)) << IsaName(isa);
  }
}

}  // namespace
}  // namespace lockstep::kernels
