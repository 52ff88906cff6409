// Synthetic models: every tensor filled with seeded random values, for tests
// and benchmarks (`lockstep synth`).
//
// Values come from a counter-based generator: element i of tensor `path`
// depends only on (seed, path, i) -- not on the order tensors are written, on
// how a tensor is cut into blocks, or on the thread count. So the same
// (config, dtype, seed) always gives the same file, byte for byte.
//
// Generator. key = SplitMix64(SplitMix64(seed) ^ FNV-1a-64(path)). Elements
// come in pairs: pair k draws the 64-bit words w1 = SplitMix64(key + (2k+1)γ)
// and w2 = SplitMix64(key + (2k+2)γ) (γ = 0x9e3779b97f4a7c15, SplitMix64 is
// the finaliser of Steele, Lea & Flood 2014), makes u1 = ((w1 >> 11) + 1) /
// 2^53 in (0, 1] and u2 = (w2 >> 11) / 2^53 in [0, 1), and applies Box-Muller
// in double precision (C library log, sqrt, cos, sin): element 2k is
// sqrt(-2 ln u1) cos(2π u2), element 2k+1 is sqrt(-2 ln u1) sin(2π u2). The
// value stored is mean + std * normal, rounded to f32 (then to the file's
// dtype). The C library's log/cos/sin are not correctly rounded, so a
// different libm could in principle change a rare last bit of the double
// before the rounding to f32; on one machine the result is fixed.
//
// Initialisation (scaled normal, so activations keep a sane range through
// every layer and the logits are spread, not degenerate):
//   tok_embeddings    N(0, 1); if tied to lm_head, N(0, 1/hidden_size)
//   wq, wk, wv        N(0, 1/hidden_size)                  (std 1/sqrt(fan_in))
//   w_gate, w_up      N(0, 1/hidden_size)
//   wo                N(0, 1/(q_dim * 2 * num_layers))     (residual branches
//   w_down            N(0, 1/(intermediate_size * 2 * num_layers))  scaled down)
//   lm_head           N(0, 1/hidden_size)
//   norms             1 + N(0, 0.1^2)   (not all ones, so that applying them is tested)
//
// Thread safety: SynthTensorValues is pure. SynthesizeModel uses oneTBB
// threads for the values and HDF5 from the calling thread.
#pragma once

#include <cstdint>
#include <string>

#include "lockstep/base/dtype.h"
#include "lockstep/base/status.h"
#include "lockstep/partitioner/model_config.h"
#include "lockstep/runtime/tokenizer.h"

namespace lockstep::runtime {

// Mean and standard deviation of a tensor's values (table above).
struct SynthDistribution {
  double mean = 0.0;
  double stddev = 1.0;
};
SynthDistribution SynthTensorDistribution(const partitioner::ModelConfig& config,
                                          const partitioner::TensorSpec& spec);

// Elements [begin, begin + count) of `spec` in row-major order, as f32.
void SynthTensorValues(const partitioner::ModelConfig& config, const partitioner::TensorSpec& spec,
                       uint64_t seed, int64_t begin, int64_t count, float* out);

// Writes a complete model file at `path` (truncating it) with matrices in
// `dtype` and norms in f32, tensor by tensor in blocks of rows (memory stays
// around 16 MB whatever the model size). For models over 256 MB it logs a
// progress line ("synth" component) every few seconds. With `tokenizer`,
// the file carries it (ModelWriterOptions::tokenizer, which checks that it
// fits the vocabulary).
Status SynthesizeModel(const partitioner::ModelConfig& config, DType dtype, uint64_t seed,
                       const std::string& path, const TokenizerData* tokenizer = nullptr);

}  // namespace lockstep::runtime
