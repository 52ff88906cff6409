#include "lockstep/model/synth.h"

#include <gtest/gtest.h>
#include <tbb/global_control.h>

#include <cmath>
#include <thread>

#include "lockstep/model/model_file.h"
#include "runtime/model_file_test_util.h"

namespace lockstep::runtime {
namespace {

using partitioner::ModelConfig;
using partitioner::TensorRole;
using partitioner::TensorSpec;
using testing::MicroConfig;
using testing::ReadBytes;
using testing::ScratchDir;

TEST(SynthTest, ValuesDependOnlyOnSeedPathAndIndex) {
  const ModelConfig config = MicroConfig();
  const TensorSpec spec = partitioner::ModelTensors(config)[2];  // /layers/0/attn/wq [32, 32]
  std::vector<float> all(1024), part(101);
  SynthTensorValues(config, spec, 5, 0, 1024, all.data());
  // Any sub-range, odd start and length included, gives the same elements.
  SynthTensorValues(config, spec, 5, 333, 101, part.data());
  for (int i = 0; i < 101; ++i) EXPECT_EQ(part[i], all[333 + i]);
  // So does any thread count.
  std::vector<float> one_thread(1024);
  {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 1);
    SynthTensorValues(config, spec, 5, 0, 1024, one_thread.data());
  }
  EXPECT_EQ(one_thread, all);

  // Another seed or another tensor: other values.
  std::vector<float> other_seed(1024), other_path(1024);
  SynthTensorValues(config, spec, 6, 0, 1024, other_seed.data());
  TensorSpec wk_like = spec;
  wk_like.path = "/layers/1/attn/wq";
  SynthTensorValues(config, wk_like, 5, 0, 1024, other_path.data());
  int same_seed = 0, same_path = 0;
  for (int i = 0; i < 1024; ++i) {
    same_seed += other_seed[i] == all[i];
    same_path += other_path[i] == all[i];
  }
  EXPECT_EQ(same_seed, 0);
  EXPECT_EQ(same_path, 0);
}

TEST(SynthTest, DistributionsFollowTheScaledInit) {
  ModelConfig config = MicroConfig();
  config.hidden_size = 256;
  config.intermediate_size = 512;
  config.num_heads = 8;
  config.head_dim = 32;
  config.num_layers = 8;
  for (const TensorSpec& spec : partitioner::ModelTensors(config)) {
    if (spec.layer > 0) continue;
    int64_t n = 1;
    for (int64_t d : spec.shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    SynthTensorValues(config, spec, 1, 0, n, v.data());
    double sum = 0, sum2 = 0;
    for (float x : v) sum += x;
    const double mean = sum / n;
    for (float x : v) sum2 += (x - mean) * (x - mean);
    const double stddev = std::sqrt(sum2 / (n - 1));
    const SynthDistribution want = SynthTensorDistribution(config, spec);
    // Standard errors: stddev / sqrt(n) for the mean, ~stddev / sqrt(2n) for the stddev.
    EXPECT_NEAR(mean, want.mean, 5 * want.stddev / std::sqrt(n)) << spec.path;
    EXPECT_NEAR(stddev, want.stddev, 5 * want.stddev / std::sqrt(2.0 * n)) << spec.path;
  }
  const auto dist = [&](const char* path) {
    for (const TensorSpec& spec : partitioner::ModelTensors(config)) {
      if (spec.path == path) return SynthTensorDistribution(config, spec);
    }
    return SynthDistribution{};
  };
  EXPECT_DOUBLE_EQ(dist("/layers/0/attn/wq").stddev, 1 / std::sqrt(256.0));
  EXPECT_DOUBLE_EQ(dist("/layers/0/ffn/w_down").stddev, 2 / std::sqrt(512.0 * 16));
  EXPECT_DOUBLE_EQ(dist("/layers/0/attn/wo").stddev, 1 / std::sqrt(256.0 * 16));
  EXPECT_DOUBLE_EQ(dist("/norm").mean, 1.0);
  EXPECT_DOUBLE_EQ(dist("/norm").stddev, 0.1);
  EXPECT_DOUBLE_EQ(dist("/tok_embeddings").stddev, 1.0);
  config.tie_word_embeddings = true;
  EXPECT_DOUBLE_EQ(dist("/tok_embeddings").stddev, 1 / std::sqrt(256.0));
}

// The empirical distribution of 2^20 draws against the normal CDF, tails
// included: the quantile function behind the generator is right.
TEST(SynthTest, DrawsAreStandardNormal) {
  ModelConfig config = MicroConfig();
  TensorSpec spec{"/tok_embeddings", TensorRole::kEmbedding, -1, {1 << 10, 1 << 10}};
  const int64_t n = int64_t{1} << 20;
  std::vector<float> v(static_cast<size_t>(n));
  SynthTensorValues(config, spec, 123, 0, n, v.data());  // N(0, 1): untied embedding
  for (double x : {-4.0, -3.0, -2.5, -2.0, -1.0, -0.3, 0.0, 0.5, 1.0, 1.97, 2.5, 3.0, 4.0}) {
    const double cdf = 0.5 * std::erfc(-x / std::sqrt(2.0));
    int64_t below = 0;
    for (float value : v) below += value < x;
    const double sigma = std::sqrt(cdf * (1 - cdf) / n);
    EXPECT_NEAR(static_cast<double>(below) / n, cdf, 5 * sigma + 1e-7) << "at " << x;
  }
  float lo = 0, hi = 0;
  for (float value : v) {
    lo = std::min(lo, value);
    hi = std::max(hi, value);
  }
  EXPECT_LT(lo, -4.0f);  // tails are reached
  EXPECT_GT(hi, 4.0f);
}

TEST(SynthTest, SameSeedSameBytesOtherSeedOtherBytes) {
  ScratchDir dir;
  const ModelConfig config = MicroConfig();
  const DType dtypes[] = {DType::kF32, DType::kBF16};
  for (DType dtype : dtypes) {
    const std::string name(DTypeName(dtype));
    ASSERT_TRUE(SynthesizeModel(config, dtype, 42, dir.File(name + "a.h5")).ok());
  }
  // Over a second apart: a modification time anywhere in the file would show.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  for (DType dtype : dtypes) {
    const std::string name(DTypeName(dtype));
    ASSERT_TRUE(SynthesizeModel(config, dtype, 42, dir.File(name + "b.h5")).ok());
    ASSERT_TRUE(SynthesizeModel(config, dtype, 43, dir.File(name + "c.h5")).ok());
    const std::vector<char> a = ReadBytes(dir.File(name + "a.h5"));
    EXPECT_GT(a.size(), 10000u);
    EXPECT_TRUE(a == ReadBytes(dir.File(name + "b.h5"))) << name;
    const std::vector<char> c = ReadBytes(dir.File(name + "c.h5"));
    EXPECT_EQ(a.size(), c.size());
    EXPECT_FALSE(a == c) << name;
  }
}

TEST(SynthTest, WrittenModelHoldsTheGeneratedValues) {
  ScratchDir dir;
  ModelConfig config = MicroConfig();
  config.tie_word_embeddings = true;
  ASSERT_TRUE(SynthesizeModel(config, DType::kBF16, 9, dir.File("m.h5")).ok());
  Result<ModelFile> file = ModelFile::Open(dir.File("m.h5"));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->config(), config);
  for (const TensorSpec& spec : partitioner::ModelTensors(config)) {
    const TensorInfo* info = file->Find(spec.path);
    ASSERT_NE(info, nullptr);
    std::vector<float> want(static_cast<size_t>(info->elements()));
    SynthTensorValues(config, spec, 9, 0, info->elements(), want.data());
    if (info->dtype == DType::kF32) {
      std::vector<float> got(want.size());
      ASSERT_TRUE(file->ReadAll(spec.path, got.data()).ok());
      EXPECT_EQ(got, want) << spec.path;
    } else {
      std::vector<uint16_t> got(want.size());
      ASSERT_TRUE(file->ReadAll(spec.path, got.data()).ok());
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_EQ(got[i], F32ToBf16(want[i])) << spec.path << " " << i;
      }
    }
  }
}

TEST(SynthTest, ReportsAnUnwritablePath) {
  Status status = SynthesizeModel(MicroConfig(), DType::kF32, 1, "/nonexistent/dir/m.h5");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("/nonexistent/dir/m.h5"), std::string::npos);
  EXPECT_EQ(status.message().find('\n'), std::string::npos);
}

}  // namespace
}  // namespace lockstep::runtime
