// Rope scaling (rope_scaling.h): each type's inverse frequencies against the
// formulas of their sources, written out here in double; the per-position
// definitions of dynamic and longrope; context lengths; the config.json form.
#include "lockstep/partitioner/rope_scaling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <numbers>
#include <vector>

namespace lockstep::partitioner {
namespace {

using nlohmann::json;

std::vector<double> Freqs(const RopeScaling& s, double theta, int head_dim, int64_t position) {
  std::vector<double> out(static_cast<size_t>(head_dim / 2));
  RopeInverseFrequencies(s, theta, head_dim, position, out);
  return out;
}

double Plain(double theta, int head_dim, int i) {
  return std::pow(theta, -2.0 * i / head_dim);
}

TEST(RopeScalingTest, NoneAndLinear) {
  RopeScaling none;
  const std::vector<double> f = Freqs(none, 10000.0, 64, 123);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(f[i], Plain(10000.0, 64, i)) << i;
  RopeScaling linear;
  linear.type = RopeScalingType::kLinear;
  linear.factor = 4.0;
  const std::vector<double> g = Freqs(linear, 10000.0, 64, 5);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(g[i], Plain(10000.0, 64, i) / 4.0) << i;
  EXPECT_EQ(RopeContextLength(linear, 4096), 16384);
  EXPECT_FALSE(RopeDependsOnPosition(linear));
}

// Dynamic NTK, per position: below L the plain frequencies bit for bit; from
// L on the base of a sequence of position + 1 tokens.
TEST(RopeScalingTest, DynamicIsPerPosition) {
  RopeScaling s;
  s.type = RopeScalingType::kDynamic;
  s.factor = 2.0;
  s.original_max_position_embeddings = 100;
  EXPECT_TRUE(RopeDependsOnPosition(s));
  for (int64_t p : {0, 50, 99}) {
    const std::vector<double> f = Freqs(s, 10000.0, 16, p);
    for (int i = 0; i < 8; ++i) EXPECT_EQ(f[i], Plain(10000.0, 16, i)) << p << " " << i;
  }
  for (int64_t p : {100, 150, 199}) {
    const double length = static_cast<double>(p + 1);
    const double base = 10000.0 * std::pow(2.0 * length / 100.0 - 1.0, 16.0 / 14.0);
    const std::vector<double> f = Freqs(s, 10000.0, 16, p);
    for (int i = 0; i < 8; ++i) EXPECT_DOUBLE_EQ(f[i], std::pow(base, -2.0 * i / 16)) << p;
    EXPECT_EQ(f[0], 1.0);
    EXPECT_LT(f[7], Plain(10000.0, 16, 7));  // a larger base: lower frequencies
  }
  EXPECT_EQ(RopeContextLength(s, 100), 200);
}

// Llama 3.1 (Meta's apply_scaling): pairs with wavelengths under L/4 kept,
// over L divided by the factor, smoothly in between.
TEST(RopeScalingTest, Llama3) {
  RopeScaling s;
  s.type = RopeScalingType::kLlama3;
  s.factor = 8.0;
  s.low_freq_factor = 1.0;
  s.high_freq_factor = 4.0;
  s.original_max_position_embeddings = 8192;
  const std::vector<double> f = Freqs(s, 500000.0, 128, 0);
  int kept = 0, divided = 0, smoothed = 0;
  for (int i = 0; i < 64; ++i) {
    const double inv = Plain(500000.0, 128, i);
    const double wavelen = 2 * std::numbers::pi / inv;
    if (wavelen < 8192.0 / 4.0) {
      EXPECT_EQ(f[i], inv / 1.0);
      ++kept;
    } else if (wavelen > 8192.0) {
      EXPECT_EQ(f[i], inv / 8.0);
      ++divided;
    } else {
      const double smooth = (8192.0 / wavelen - 1.0) / 3.0;
      EXPECT_DOUBLE_EQ(f[i], (1 - smooth) * inv / 8.0 + smooth * inv);
      ++smoothed;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(smoothed, 0);
  EXPECT_EQ(RopeContextLength(s, 131072), 131072);
  // The divisors a GGUF's rope_freqs carries replace the formula.
  RopeScaling g = s;
  g.frequency_factors.assign(64, 1.0);
  g.frequency_factors[63] = 8.0;
  const std::vector<double> h = Freqs(g, 500000.0, 128, 0);
  EXPECT_EQ(h[0], Plain(500000.0, 128, 0));
  EXPECT_EQ(h[63], Plain(500000.0, 128, 63) / 8.0);
}

// YaRN (Peng et al. 2023; transformers' _compute_yarn_parameters).
TEST(RopeScalingTest, Yarn) {
  const json config = {
      {"rope_scaling",
       {{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}}}};
  Result<RopeScaling> parsed = RopeScalingFromHfJson(config, "c.json", 32768, 128);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const RopeScaling& s = *parsed;
  EXPECT_EQ(s.type, RopeScalingType::kYarn);
  EXPECT_DOUBLE_EQ(s.attention_factor, 0.1 * std::log(4.0) + 1.0);
  EXPECT_EQ(RopeContextLength(s, 32768), 131072);
  auto correction_dim = [](double rotations) {
    return 128 * std::log(32768.0 / (rotations * 2 * std::numbers::pi)) / (2 * std::log(1e6));
  };
  const double low = std::max(0.0, std::floor(correction_dim(32.0)));
  const double high = std::min(127.0, std::ceil(correction_dim(1.0)));
  const std::vector<double> f = Freqs(s, 1e6, 128, 0);
  for (int i = 0; i < 64; ++i) {
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    const double extrapolation = 1.0 - ramp;
    const double inv = Plain(1e6, 128, i);
    EXPECT_DOUBLE_EQ(f[i], inv / 4.0 * (1 - extrapolation) + inv * extrapolation) << i;
  }
  EXPECT_EQ(f[0], 1.0);                         // fast pairs extrapolate
  EXPECT_EQ(f[63], Plain(1e6, 128, 63) / 4.0);  // slow ones interpolate
  // DeepSeek's mscale / mscale_all_dim.
  json deepseek = config;
  deepseek["rope_scaling"]["mscale"] = 0.707;
  deepseek["rope_scaling"]["mscale_all_dim"] = 0.707;
  EXPECT_DOUBLE_EQ(RopeScalingFromHfJson(deepseek, "c.json", 32768, 128)->attention_factor, 1.0);
}

TEST(RopeScalingTest, LongRopePicksFactorsByPosition) {
  RopeScaling s;
  s.type = RopeScalingType::kLongRope;
  s.original_max_position_embeddings = 64;
  s.short_factor = {1.0, 2.0, 3.0, 4.0};
  s.long_factor = {5.0, 6.0, 7.0, 8.0};
  EXPECT_TRUE(RopeDependsOnPosition(s));
  for (int64_t p : {0, 63, 64, 500}) {
    const std::vector<double>& factors = p < 64 ? s.short_factor : s.long_factor;
    const std::vector<double> f = Freqs(s, 10000.0, 8, p);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(f[i], Plain(10000.0, 8, i) / factors[i]) << p;
  }
}

TEST(RopeScalingTest, HfJsonRoundTripsAndRefuses) {
  for (const char* text :
       {R"({"rope_type": "linear", "factor": 2.0})", R"({"type": "dynamic", "factor": 3.0})",
        R"({"rope_type": "yarn", "factor": 4.0, "beta_fast": 16.0, "truncate": false})",
        R"({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64})",
        R"({"rope_type": "longrope", "short_factor": [1, 1, 1, 1], "long_factor": [2, 2, 2, 2],
            "factor": 4.0, "original_max_position_embeddings": 64})"}) {
    const json config = {{"rope_scaling", json::parse(text)}};
    Result<RopeScaling> s = RopeScalingFromHfJson(config, "c.json", 256, 8);
    ASSERT_TRUE(s.ok()) << text << ": " << s.status().message();
    const json again = {{"rope_scaling", RopeScalingToHfJson(*s)}};
    Result<RopeScaling> back = RopeScalingFromHfJson(again, "c.json", 256, 8);
    ASSERT_TRUE(back.ok()) << again.dump() << ": " << back.status().message();
    EXPECT_EQ(*back, *s) << text;
  }
  const json none = {{"rope_scaling", {{"rope_type", "default"}}}};
  EXPECT_FALSE(RopeScalingFromHfJson(none, "c.json", 256, 8)->active());
  EXPECT_TRUE(RopeScalingToHfJson(RopeScaling{}).is_null());
  const json missing = {{"rope_scaling", {{"rope_type", "linear"}}}};
  EXPECT_EQ(RopeScalingFromHfJson(missing, "c.json", 256, 8).status().message(),
            "c.json: rope_scaling.factor is missing (rope_scaling.type \"linear\" needs it)");
  const json no_type = {{"rope_scaling", {{"factor", 2.0}}}};
  EXPECT_EQ(RopeScalingFromHfJson(no_type, "c.json", 256, 8).status().message(),
            "c.json: rope_scaling has no \"rope_type\" (or \"type\") field");
  EXPECT_EQ(ParseRopeScalingType("longrope").value(), RopeScalingType::kLongRope);
  EXPECT_FALSE(ParseRopeScalingType("ntk").ok());
}

}  // namespace
}  // namespace lockstep::partitioner
