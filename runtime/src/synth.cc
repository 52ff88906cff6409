#include "lockstep/runtime/synth.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <chrono>
#include <cmath>
#include <numbers>
#include <vector>

#include "lockstep/base/log.h"
#include "lockstep/runtime/model_file.h"

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

// The two standard normals of pair k.
inline void NormalPair(uint64_t key, uint64_t k, double* n0, double* n1) {
  const uint64_t w1 = SplitMix64(key + (2 * k + 1) * kGamma);
  const uint64_t w2 = SplitMix64(key + (2 * k + 2) * kGamma);
  const double u1 = static_cast<double>((w1 >> 11) + 1) * 0x1.0p-53;  // (0, 1]
  const double u2 = static_cast<double>(w2 >> 11) * 0x1.0p-53;        // [0, 1)
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  *n0 = r * std::cos(angle);
  *n1 = r * std::sin(angle);
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
    case TensorRole::kRowParallel: {
      const double fan_in = static_cast<double>(spec.shape[1]);  // q_dim or intermediate_size
      return {0.0, residual_scale / std::sqrt(fan_in)};
    }
  }
  return {};
}

void SynthTensorValues(const ModelConfig& config, const TensorSpec& spec, uint64_t seed,
                       int64_t begin, int64_t count, float* out) {
  if (count <= 0) return;
  const SynthDistribution dist = SynthTensorDistribution(config, spec);
  const uint64_t key = TensorKey(seed, spec.path);
  const int64_t end = begin + count;
  const int64_t first_pair = begin / 2;
  const int64_t last_pair = (end - 1) / 2;  // inclusive
  // Threads split pairs; each element's value is a function of its index only.
  tbb::parallel_for(tbb::blocked_range<int64_t>(first_pair, last_pair + 1, 8192),
                    [&](const tbb::blocked_range<int64_t>& range) {
                      for (int64_t k = range.begin(); k != range.end(); ++k) {
                        double n[2];
                        NormalPair(key, static_cast<uint64_t>(k), &n[0], &n[1]);
                        for (int j = 0; j < 2; ++j) {
                          const int64_t i = 2 * k + j;
                          if (i >= begin && i < end) {
                            out[i - begin] = static_cast<float>(dist.mean + dist.stddev * n[j]);
                          }
                        }
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
    total_bytes += elements * static_cast<int64_t>(
                                  DTypeSize(spec.role == TensorRole::kNorm ? DType::kF32 : dtype));
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

  // Row blocks of about 4 Mi values (16 MB of f32).
  constexpr int64_t kBlockElements = int64_t{4} << 20;
  std::vector<float> block;
  int64_t done_bytes = 0;
  for (size_t t = 0; t < specs.size(); ++t) {
    const TensorSpec& spec = specs[t];
    const int64_t rows = spec.shape[0];
    const int64_t cols = spec.shape.size() == 2 ? spec.shape[1] : 1;
    const int64_t block_rows = std::max<int64_t>(1, kBlockElements / cols);
    const size_t element_size = DTypeSize(spec.role == TensorRole::kNorm ? DType::kF32 : dtype);
    for (int64_t r = 0; r < rows; r += block_rows) {
      const int64_t n = std::min(block_rows, rows - r);
      block.resize(static_cast<size_t>(n * cols));
      SynthTensorValues(config, spec, seed, r * cols, n * cols, block.data());
      LOCKSTEP_RETURN_IF_ERROR(writer.WriteRows(spec, r, n, block.data()));
      done_bytes += n * cols * static_cast<int64_t>(element_size);
      if (report && seconds_since(last_report) >= 2.0) {
        last_report = Clock::now();
        LOCKSTEP_LOG_INFO("synth", "{:3.0f}%  {:.2f} / {:.2f} GB, tensor {}/{} ({}), {:.1f} s",
                          100.0 * done_bytes / total_bytes, done_bytes / 1e9, total_bytes / 1e9,
                          t + 1, specs.size(), spec.path, seconds_since(start));
      }
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
