// RMSNorm: every Isa bit-exact against the reference; tokens independent of
// each other and of the thread count; the reference against double.
#include "lockstep/kernels/norm.h"

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

TEST(RmsNormTest, EveryIsaEqualsReference) {
  const int64_t tokens = 5;
  for (int64_t dim : {1, 7, 63, 64, 100, 2048, 5000}) {
    const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * dim), 1, 3.0f);
    const std::vector<float> w = RandomVector(static_cast<size_t>(dim), 2);
    std::vector<float> expected(x.size());
    RmsNormReference(x.data(), tokens, dim, w.data(), 1e-5f, expected.data());
    for (Isa isa : SupportedIsas()) {
      std::vector<float> y(x.size());
      RmsNorm(isa, x.data(), tokens, dim, w.data(), 1e-5f, y.data());
      EXPECT_TRUE(SameBits(y, expected)) << IsaName(isa) << " dim " << dim;
      std::vector<float> in_place = x;
      RmsNorm(isa, in_place.data(), tokens, dim, w.data(), 1e-5f, in_place.data());
      EXPECT_TRUE(SameBits(in_place, expected)) << IsaName(isa) << " in place, dim " << dim;
      // Token 3 alone gives the same row.
      std::vector<float> alone(static_cast<size_t>(dim));
      RmsNorm(isa, x.data() + 3 * dim, 1, dim, w.data(), 1e-5f, alone.data());
      EXPECT_TRUE(SameBits(alone.data(), expected.data() + 3 * dim, dim)) << IsaName(isa);
    }
  }
}

TEST(RmsNormTest, ThreadCountDoesNotChangeBits) {
  const int64_t tokens = 33, dim = 768;
  const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * dim), 3);
  const std::vector<float> w = RandomVector(static_cast<size_t>(dim), 4);
  for (Isa isa : SupportedIsas()) {
    std::vector<float> a(x.size()), b(x.size());
    WithThreads(1, [&] { RmsNorm(isa, x.data(), tokens, dim, w.data(), 1e-6f, a.data()); });
    WithThreads(2, [&] { RmsNorm(isa, x.data(), tokens, dim, w.data(), 1e-6f, b.data()); });
    EXPECT_TRUE(SameBits(a, b)) << IsaName(isa);
  }
}

TEST(RmsNormTest, ReferenceIsAccurate) {
  const int64_t dim = 3000;
  const std::vector<float> x = RandomVector(dim, 5, 2.0f), w = RandomVector(dim, 6);
  std::vector<float> y(dim);
  RmsNormReference(x.data(), 1, dim, w.data(), 1e-5f, y.data());
  double ss = 0.0;
  for (float v : x) ss += double{v} * v;
  const double inv = 1.0 / std::sqrt(ss / dim + 1e-5);
  for (int64_t i = 0; i < dim; ++i) {
    const double expected = x[i] * inv * w[i];
    EXPECT_NEAR(y[i], expected, 1e-5 * std::abs(expected) + 1e-30);
  }
}

}  // namespace
}  // namespace lockstep::kernels
