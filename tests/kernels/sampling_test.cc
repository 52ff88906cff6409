// Sampling: Philox known answers (Random123 kat_vectors), UniformAt, Argmax
// ties and NaN, Sample against a naive full-sort implementation of the
// specification in sampling.h, determinism, and token frequencies.
#include "lockstep/kernels/sampling.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "kernel_test_util.h"
#include "lockstep/kernels/activation.h"

namespace lockstep::kernels {
namespace {

using testing::RandomVector;
using testing::SupportedIsas;

TEST(PhiloxTest, KnownAnswers) {
  // Random123 kat_vectors, "philox4x32 10" lines: counter, key, expected.
  using Words = std::array<uint32_t, 4>;
  EXPECT_EQ(Philox4x32({0, 0, 0, 0}, {0, 0}),
            (Words{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(
      Philox4x32({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}),
      (Words{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(
      Philox4x32({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}),
      (Words{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(PhiloxTest, UniformAtIsInRangeAndKeyedByAllThree) {
  double sum = 0.0;
  for (uint64_t p = 0; p < 10000; ++p) {
    const float u = UniformAt(42, 7, p);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.01);
  EXPECT_EQ(UniformAt(1, 2, 3), UniformAt(1, 2, 3));
  EXPECT_NE(UniformAt(1, 2, 3), UniformAt(2, 2, 3));
  EXPECT_NE(UniformAt(1, 2, 3), UniformAt(1, 3, 3));
  EXPECT_NE(UniformAt(1, 2, 3), UniformAt(1, 2, 4));
  EXPECT_NE(UniformAt(1, 2, 3), UniformAt(1, 2, 3 + (uint64_t{1} << 32)));
}

TEST(ArgmaxTest, TiesGoToTheLowestIdAndNanIsNeverChosen) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(Argmax(std::vector<float>{1, 3, 2, 3}.data(), 4), 1);
  EXPECT_EQ(Argmax(std::vector<float>{nan, 1, 3, 3, nan}.data(), 5), 2);
  EXPECT_EQ(Argmax(std::vector<float>{nan, nan}.data(), 2), 0);
  EXPECT_EQ(Argmax(std::vector<float>{-inf, -inf}.data(), 2), 0);
  EXPECT_EQ(Argmax(std::vector<float>{-0.0f, 0.0f}.data(), 2), 0);
  EXPECT_EQ(Argmax(std::vector<float>{5}.data(), 1), 0);
}

// The specification of sampling.h written the obvious way: full sort.
int32_t NaiveSample(const std::vector<float>& logits, const SamplingParams& params, uint64_t seed,
                    uint64_t stream, uint64_t position) {
  const int64_t vocab = static_cast<int64_t>(logits.size());
  if (!(params.temperature > 0.0f)) return Argmax(logits.data(), vocab);
  std::vector<float> p(logits.size());
  for (size_t i = 0; i < p.size(); ++i) p[i] = logits[i] / params.temperature;
  SoftmaxReference(p.data(), vocab);
  const float u01 = UniformAt(seed, stream, position);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  int64_t keep = vocab;
  const bool cut_k = params.top_k > 0 && params.top_k < vocab;
  if (cut_k || params.top_p < 1.0f) {
    std::sort(order.begin(), order.end(),
              [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    if (cut_k) keep = params.top_k;
    if (params.top_p < 1.0f) {
      float cumulative = 0.0f;
      for (int64_t i = 0; i < keep; ++i) {
        cumulative = cumulative + p[order[i]];
        if (cumulative >= params.top_p) {
          keep = i + 1;
          break;
        }
      }
    }
  }
  float total = 0.0f;
  for (int64_t i = 0; i < keep; ++i) total = total + p[order[i]];
  const float u = u01 * total;
  float running = 0.0f;
  int32_t last = -1;
  for (int64_t i = 0; i < keep; ++i) {
    if (!(p[order[i]] > 0.0f)) continue;
    running = running + p[order[i]];
    last = order[i];
    if (running > u) return order[i];
  }
  return last;
}

TEST(SampleTest, EqualsTheFullSortSpecification) {
  const SamplingParams params[] = {{0.7f, 0, 1.0f},     {1.0f, 40, 1.0f},   {1.0f, 0, 0.9f},
                                   {1.3f, 50, 0.8f},    {0.5f, 1, 1.0f},    {1.0f, 0, 0.0f},
                                   {1.0f, 1000, 0.95f}, {2.0f, 5000, 1.0f}, {1.0f, 3, 0.999f},
                                   {0.05f, 0, 0.5f},    {1.0f, 0, 0.99999f}};
  // Random logits, and logits with many exact ties.
  std::vector<float> random = RandomVector(1000, 1, 3.0f);
  std::vector<float> ties = RandomVector(1000, 2, 2.0f);
  for (float& v : ties) v = std::round(v);
  std::vector<float> scratch;
  for (const std::vector<float>* logits : {&random, &ties}) {
    for (const SamplingParams& sp : params) {
      for (uint64_t pos = 0; pos < 40; ++pos) {
        const int32_t expected = NaiveSample(*logits, sp, 99, 5, pos);
        for (Isa isa : SupportedIsas()) {
          EXPECT_EQ(Sample(isa, logits->data(), 1000, sp, 99, 5, pos, &scratch), expected)
              << IsaName(isa) << " T " << sp.temperature << " k " << sp.top_k << " p " << sp.top_p
              << " position " << pos;
        }
      }
    }
  }
}

TEST(SampleTest, LargeVocabularyEqualsSpecification) {
  const std::vector<float> logits = RandomVector(128256, 3, 4.0f);
  std::vector<float> scratch;
  for (const SamplingParams sp : {SamplingParams{0.8f, 0, 0.95f}, SamplingParams{1.0f, 50, 1.0f},
                                  SamplingParams{1.0f, 0, 1.0f}}) {
    for (uint64_t pos = 0; pos < 3; ++pos) {
      EXPECT_EQ(Sample(BestIsa(), logits.data(), 128256, sp, 1, 2, pos, &scratch),
                NaiveSample(logits, sp, 1, 2, pos));
    }
  }
}

TEST(SampleTest, GreedyAndDegenerateCuts) {
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f};
  std::vector<float> scratch;
  for (Isa isa : SupportedIsas()) {
    for (uint64_t pos = 0; pos < 20; ++pos) {
      // temperature 0: argmax, ties to the lower id.
      EXPECT_EQ(Sample(isa, logits.data(), 5, {0.0f, 0, 1.0f}, 1, 1, pos, &scratch), 1);
      // top_k = 1 and a tiny top_p keep only the most probable token.
      EXPECT_EQ(Sample(isa, logits.data(), 5, {1.0f, 1, 1.0f}, 1, 1, pos, &scratch), 1);
      EXPECT_EQ(Sample(isa, logits.data(), 5, {1.0f, 0, 1e-6f}, 1, 1, pos, &scratch), 1);
      // top_k = 2 keeps ids 1 and 3 (equal logits).
      const int32_t t = Sample(isa, logits.data(), 5, {1.0f, 2, 1.0f}, 1, 1, pos, &scratch);
      EXPECT_TRUE(t == 1 || t == 3) << t;
    }
  }
  // A NaN logit makes every probability NaN: Sample falls back to Argmax.
  const std::vector<float> with_nan = {0.5f, std::numeric_limits<float>::quiet_NaN(), 3.0f};
  EXPECT_EQ(Sample(BestIsa(), with_nan.data(), 3, {1.0f, 0, 1.0f}, 1, 1, 0, &scratch), 2);
}

TEST(SampleTest, DeterministicForSeedStreamPosition) {
  const std::vector<float> logits = RandomVector(32000, 4, 2.0f);
  std::vector<float> scratch;
  const SamplingParams sp{0.9f, 0, 0.9f};
  std::vector<int32_t> first, again;
  for (uint64_t pos = 0; pos < 20; ++pos) {
    first.push_back(Sample(Isa::kScalar, logits.data(), 32000, sp, 7, 3, pos, &scratch));
  }
  for (uint64_t pos = 0; pos < 20; ++pos) {
    again.push_back(Sample(BestIsa(), logits.data(), 32000, sp, 7, 3, pos, &scratch));
  }
  EXPECT_EQ(first, again);
  // Another stream (request) draws differently.
  std::vector<int32_t> other;
  for (uint64_t pos = 0; pos < 20; ++pos) {
    other.push_back(Sample(BestIsa(), logits.data(), 32000, sp, 7, 4, pos, &scratch));
  }
  EXPECT_NE(first, other);
}

TEST(SampleTest, FrequenciesFollowTheDistribution) {
  // Deterministic (Philox): a chi-square statistic over 100000 positions.
  const std::vector<double> probs = {0.4, 0.25, 0.15, 0.1, 0.07, 0.03};
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  std::vector<float> scratch;
  const int draws = 100000;
  struct Case {
    SamplingParams params;
    std::vector<double> expected;
  };
  const Case cases[] = {
      {{1.0f, 0, 1.0f}, probs},
      {{1.0f, 2, 1.0f}, {0.4 / 0.65, 0.25 / 0.65, 0, 0, 0, 0}},
      {{1.0f, 0, 0.6f}, {0.4 / 0.65, 0.25 / 0.65, 0, 0, 0, 0}},  // cumulative 0.65 >= 0.6
      {{1.0f, 0, 0.95f}, {0.4 / 0.97, 0.25 / 0.97, 0.15 / 0.97, 0.1 / 0.97, 0.07 / 0.97, 0}},
  };
  for (const Case& c : cases) {
    std::vector<int> counts(probs.size(), 0);
    for (int pos = 0; pos < draws; ++pos) {
      ++counts[Sample(BestIsa(), logits.data(), 6, c.params, 12345, 1, pos, &scratch)];
    }
    double chi2 = 0.0;
    int dof = -1;
    for (size_t i = 0; i < probs.size(); ++i) {
      if (c.expected[i] == 0.0) {
        EXPECT_EQ(counts[i], 0) << "token " << i << " must be cut";
        continue;
      }
      const double e = c.expected[i] * draws;
      chi2 += (counts[i] - e) * (counts[i] - e) / e;
      ++dof;
    }
    // 99.9th percentile of chi-square with up to 5 degrees of freedom.
    EXPECT_LT(chi2, 20.5) << "dof " << dof << " top_k " << c.params.top_k << " top_p "
                          << c.params.top_p;
  }
}

}  // namespace
}  // namespace lockstep::kernels
