// Rotary position embedding frequencies, with the context-extension
// ("rope scaling") variants of Hugging Face's `rope_scaling` and llama.cpp's
// GGUF metadata: none, linear, dynamic (NTK), yarn, llama3 and longrope
// (Phi-3's, "su" in older configs).
//
// RoPE rotates dimension pair i of a head (i < head_dim/2) at position p by
// the angle p * inv_freq_i(p), and multiplies cos and sin by an attention
// factor a (1 but for yarn and longrope):
//
//   none      inv_freq_i = theta^(-2i/d)                       (d = head_dim)
//   linear    inv_freq_i = theta^(-2i/d) / factor
//   dynamic   inv_freq_i(p) = base(p)^(-2i/d), base(p) = theta * (factor * s / L - (factor -
//   1))^(d/(d-2))
//             with s = max(p + 1, L), L = original_max_position_embeddings
//   yarn      inv_freq_i = theta^(-2i/d) * ((1 - e_i) / factor + e_i), e_i = 1 - ramp(i) over the
//             correction range of beta_fast / beta_slow rotations in L positions
//   llama3    inv_freq_i = theta^(-2i/d) / f_i, f_i = factor for long wavelengths, 1 for short
//             ones, smoothly in between (low_freq_factor, high_freq_factor, L); or the
//             explicit divisors frequency_factors (GGUF's rope_freqs tensor)
//   longrope  inv_freq_i(p) = theta^(-2i/d) / short_factor_i for p < L, / long_factor_i for p >= L
//
// Hugging Face's "dynamic" recomputes its base from the longest sequence of
// the forward call, and its "longrope" picks short or long factors by the
// same length: both would make a token's rotation depend on what else is in
// the batch and on how a prompt is cut into chunks. lockstep defines both
// per position instead (s = p + 1; long factors from position L on), which is
// what Hugging Face's generate() computes for every token it decodes one at a
// time, and depends on nothing but the position (docs/determinism.md).
//
// Every formula is evaluated in double precision; engine/ rounds the cos/sin
// table to f32 once (kernels/rope.h).
//
// Thread safety: plain data and pure functions.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/base/status.h"

namespace lockstep::partitioner {

enum class RopeScalingType { kNone, kLinear, kDynamic, kYarn, kLlama3, kLongRope };

// "none", "linear", "dynamic", "yarn", "llama3", "longrope".
std::string_view RopeScalingTypeName(RopeScalingType type);
Result<RopeScalingType> ParseRopeScalingType(std::string_view name);

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  // linear, dynamic, yarn, llama3: the context extension factor (>= 1).
  double factor = 1.0;
  // L above: dynamic, yarn, llama3, longrope (> 0 for those; 0 for none and linear).
  int64_t original_max_position_embeddings = 0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  double beta_fast = 32.0;        // yarn
  double beta_slow = 1.0;         // yarn
  bool truncate = true;           // yarn: round the correction range outwards
  // Multiplies cos and sin (so q.k by its square): yarn's and longrope's
  // attention factor, resolved from the config when it is read. 1 otherwise.
  double attention_factor = 1.0;
  std::vector<double> short_factor;  // longrope: head_dim/2 divisors below L
  std::vector<double> long_factor;   // longrope: head_dim/2 divisors from L on
  // llama3 from a GGUF file: the head_dim/2 divisors llama.cpp's converter
  // computed (rope_freqs.weight); replaces factor/low/high/L when not empty.
  std::vector<double> frequency_factors;

  bool active() const { return type != RopeScalingType::kNone; }
  bool operator==(const RopeScaling&) const = default;
};

// The consistency of `scaling` for a head size: positive factors, vectors of
// head_dim/2 positive entries, L set where the type needs it. The message
// names the field ("rope_scaling.factor ...").
Status ValidateRopeScaling(const RopeScaling& scaling, int head_dim);

// The number of positions a model can run (its context): max_position_embeddings,
// times the factor for linear and dynamic, L * factor for yarn if larger (the
// context these types extend to, as vLLM derives it; llama3 and longrope
// configs already give the extended length).
int64_t RopeContextLength(const RopeScaling& scaling, int64_t max_position_embeddings);

// inv_freq_i(position) for i < head_dim/2 into `out` (head_dim/2 values), in
// double precision, per the table above. Requires a valid `scaling`.
void RopeInverseFrequencies(const RopeScaling& scaling, double theta, int head_dim,
                            int64_t position, std::span<double> out);
// Whether inv_freq depends on the position (dynamic, longrope).
bool RopeDependsOnPosition(const RopeScaling& scaling);

// Hugging Face config.json: `rope_scaling` (null, or an object with
// "rope_type" or "type" and the type's fields) plus, for longrope, the
// top-level `original_max_position_embeddings` Phi-3 uses. `config` is the
// whole config.json object; `head_dim` checks the factor vectors. Errors are
// one line naming `source` and the field, e.g.
//   config.json: rope_scaling.type "foo" is not supported (supported: ...)
Result<RopeScaling> RopeScalingFromHfJson(const nlohmann::json& config, std::string_view source,
                                          int64_t max_position_embeddings, int head_dim);
// The `rope_scaling` object Hugging Face would read back (null for none).
nlohmann::json RopeScalingToHfJson(const RopeScaling& scaling);

}  // namespace lockstep::partitioner
