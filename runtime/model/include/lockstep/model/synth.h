// Synthetic models: every tensor filled with seeded random values, for tests
// and benchmarks (`lockstep synth`).
//
// Values come from a counter-based generator: element i of tensor `path`
// depends only on (seed, path, i) -- not on the order tensors are written, on
// how a tensor is cut into blocks, or on the thread count. So the same
// (config, dtype, seed) always gives the same file, byte for byte.
//
// Generator. key = SplitMix64(SplitMix64(seed) ^ FNV-1a-64(path)). Element i
// draws the 64-bit word w = SplitMix64(key + (i+1)γ) (γ = 0x9e3779b97f4a7c15;
// SplitMix64 is the finaliser of Steele, Lea & Flood 2014, used here as a
// counter-based generator), makes the uniform p = ((w >> 11) + 0.5) / 2^53 in
// (0, 1), and maps it through the standard normal quantile function
// (P. J. Acklam's rational approximation, relative error < 1.15e-9) in
// double precision. The value stored is mean + std * normal, rounded to f32
// (then to the file's dtype). 95% of draws use only +, *, / and are the same
// bits on any IEEE machine; the tails (p < 0.02425 or p > 0.97575) call the C
// library's log, which a different libm could in principle round differently
// in the last bit of a double -- invisible after rounding to f32 in all but
// astronomically rare cases.
//
// Initialisation (scaled normal, so activations keep a sane range through
// every layer and the logits are spread, not degenerate):
//   tok_embeddings    N(0, 1); if tied to lm_head, N(0, 1/hidden_size)
//   wq, wk, wv        N(0, 1/hidden_size)                  (std 1/sqrt(fan_in))
//   w_gate, w_up      N(0, 1/hidden_size)
//   wo                N(0, 1/(q_dim * 2 * num_layers))     (residual branches
//   w_down            N(0, 4/(intermediate_size * 2 * num_layers))  scaled down;
//                     w_down x2 for the SwiGLU gain (silu(g)*u has rms ~0.6),
//                     which also keeps greedy decoding of tied models from
//                     locking onto one token)
//   lm_head           N(0, 1/hidden_size)
//   bq, bk, bv        N(0, 0.1^2)   (qkv_bias)
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
#include "lockstep/tokenizer/tokenizer.h"

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
