#include "lockstep/model/synth.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <chrono>
#include <cmath>
#include <future>
#include <vector>

#include "lockstep/base/log.h"
#include "lockstep/model/model_file.h"

namespace lockstep::runtime {
namespace {

using partitioner::ModelConfig;
using partitioner::TensorRole;
using partitioner::TensorSpec;

constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ull;

constexpr uint64_t SplitMix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t TensorKey(uint64_t seed, std::string_view path) {
  uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a 64
  for (unsigned char ch : path) {
    hash ^= ch;
    hash *= 0x100000001b3ull;
  }
  return SplitMix64(SplitMix64(seed) ^ hash);
}

// The standard normal quantile function, by P. J. Acklam's rational
// approximations (relative error below 1.15e-9, far under f32 resolution).
// The central region (95% of draws) uses only +, *, / in double precision,
// so it gives the same bits on every IEEE machine; the tails add log and sqrt.
double InverseNormalCdf(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  if (p < kLow || p > 1.0 - kLow) {
    const double q = std::sqrt(-2.0 * std::log(p < kLow ? p : 1.0 - p));
    const double x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
                     ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    return p < kLow ? x : -x;
  }
  const double q = p - 0.5;
  const double r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
}

// The standard normal draw of element i: a uniform in (0, 1) from the 53 top
// bits of one SplitMix64 word, through the quantile function.
inline double Normal(uint64_t key, uint64_t i) {
  const uint64_t word = SplitMix64(key + (i + 1) * kGamma);
  const double p = (static_cast<double>(word >> 11) + 0.5) * 0x1.0p-53;  // (0, 1)
  return InverseNormalCdf(p);
}

}  // namespace

SynthDistribution SynthTensorDistribution(const ModelConfig& c, const TensorSpec& spec) {
  const double residual_scale = 1.0 / std::sqrt(2.0 * c.num_layers);
  const double hidden = static_cast<double>(c.hidden_size);
  switch (spec.role) {
    case TensorRole::kEmbedding:
      return {0.0, c.tie_word_embeddings ? 1.0 / std::sqrt(hidden) : 1.0};
    case TensorRole::kNorm:
      return {1.0, 0.1};
    case TensorRole::kColumnParallel:
      return {0.0, 1.0 / std::sqrt(hidden)};
    case TensorRole::kLmHead:
      return {0.0, 1.0 / std::sqrt(hidden)};
    case TensorRole::kColumnBias:
      // Small against q, k, v (rms ~1): larger biases make a tied model's
      // greedy decoding repeat one token.
      return {0.0, 0.1};
    case TensorRole::kRowParallel: {
      const double fan_in = static_cast<double>(spec.shape[1]);  // q_dim or intermediate_size
      // w_down gets x2: silu(g) * u has an rms of only ~0.6 for unit-normal g
      // and u, and the FFN branch -- the part of the residual that follows
      // the current token -- must outweigh the slowly varying attention
      // context, or greedy decoding of a tied model locks onto one token.
      const double gain = spec.path.ends_with("/ffn/w_down") ? 2.0 : 1.0;
      return {0.0, gain * residual_scale / std::sqrt(fan_in)};
    }
  }
  return {};
}

void SynthTensorValues(const ModelConfig& config, const TensorSpec& spec, uint64_t seed,
                       int64_t begin, int64_t count, float* out) {
  if (count <= 0) return;
  const SynthDistribution dist = SynthTensorDistribution(config, spec);
  const uint64_t key = TensorKey(seed, spec.path);
  // Threads split the elements; each value is a function of its index only.
  tbb::parallel_for(tbb::blocked_range<int64_t>(begin, begin + count, 16384),
                    [&](const tbb::blocked_range<int64_t>& range) {
                      for (int64_t i = range.begin(); i != range.end(); ++i) {
                        const double n = Normal(key, static_cast<uint64_t>(i));
                        out[i - begin] = static_cast<float>(dist.mean + dist.stddev * n);
                      }
                    });
}

Status SynthesizeModel(const ModelConfig& config, DType dtype, uint64_t seed,
                       const std::string& path, const TokenizerData* tokenizer) {
  ModelWriterOptions options;
  options.dtype = dtype;
  if (tokenizer != nullptr) options.tokenizer = *tokenizer;
  LOCKSTEP_ASSIGN_OR_RETURN(ModelWriter writer, ModelWriter::Create(path, config, options));

  const std::vector<TensorSpec> specs = partitioner::ModelTensors(config);
  int64_t total_bytes = 0;
  for (const TensorSpec& spec : specs) {
    int64_t elements = 1;
    for (int64_t d : spec.shape) elements *= d;
    total_bytes += DTypeBytes(partitioner::IsF32Tensor(spec.role) ? DType::kF32 : dtype, elements);
  }
  const bool report = total_bytes > (int64_t{256} << 20);
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  Clock::time_point last_report = start;
  auto seconds_since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  if (report) {
    LOCKSTEP_LOG_INFO("synth", "writing {} ({} tensors, {:.2f} GB of {} weights, seed {})", path,
                      specs.size(), total_bytes / 1e9, DTypeName(dtype), seed);
  }

  // The work in row blocks of about 4 Mi values (16 MB of f32).
  struct Block {
    size_t tensor;
    int64_t row_begin, num_rows, cols;
  };
  constexpr int64_t kBlockElements = int64_t{4} << 20;
  std::vector<Block> blocks;
  for (size_t t = 0; t < specs.size(); ++t) {
    const int64_t rows = specs[t].shape[0];
    const int64_t cols = specs[t].shape.size() == 2 ? specs[t].shape[1] : 1;
    const int64_t block_rows = std::max<int64_t>(1, kBlockElements / cols);
    for (int64_t r = 0; r < rows; r += block_rows) {
      blocks.push_back({t, r, std::min(block_rows, rows - r), cols});
    }
  }

  // Generation and writing overlap: while this thread hands block b to HDF5
  // (which may wait for the disk), another fills block b + 1. Two buffers.
  std::vector<float> buffers[2];
  auto generate = [&](size_t b) {
    const Block& block = blocks[b];
    std::vector<float>& buffer = buffers[b % 2];
    buffer.resize(static_cast<size_t>(block.num_rows * block.cols));
    SynthTensorValues(config, specs[block.tensor], seed, block.row_begin * block.cols,
                      block.num_rows * block.cols, buffer.data());
  };
  std::future<void> next = std::async(std::launch::async, generate, 0);
  int64_t done_bytes = 0;
  for (size_t b = 0; b < blocks.size(); ++b) {
    next.get();
    if (b + 1 < blocks.size()) next = std::async(std::launch::async, generate, b + 1);
    const Block& block = blocks[b];
    const TensorSpec& spec = specs[block.tensor];
    Status written = writer.WriteRows(spec, block.row_begin, block.num_rows, buffers[b % 2].data());
    if (!written.ok()) {
      if (next.valid()) next.wait();  // it still uses the buffers
      return written;
    }
    done_bytes += DTypeBytes(partitioner::IsF32Tensor(spec.role) ? DType::kF32 : dtype,
                             block.num_rows * block.cols);
    if (report && seconds_since(last_report) >= 2.0) {
      last_report = Clock::now();
      LOCKSTEP_LOG_INFO("synth", "{:3.0f}%  {:.2f} / {:.2f} GB, tensor {}/{} ({}), {:.1f} s",
                        100.0 * done_bytes / total_bytes, done_bytes / 1e9, total_bytes / 1e9,
                        block.tensor + 1, specs.size(), spec.path, seconds_since(start));
    }
  }
  LOCKSTEP_RETURN_IF_ERROR(writer.Close());
  if (report) {
    LOCKSTEP_LOG_INFO("synth", "wrote {} ({:.2f} GB) in {:.1f} s", path, total_bytes / 1e9,
                      seconds_since(start));
  }
  return Status::Ok();
}

}  // namespace lockstep::runtime
