// Rotary position embedding, Llama convention in the Hugging Face
// "rotate-half" layout (the layout of model format v1): within a head of
// size d, element i (< d/2) is paired with element i + d/2:
//   out[i]       = x[i] * cos(p*f_i) - x[i+d/2] * sin(p*f_i)
//   out[i + d/2] = x[i+d/2] * cos(p*f_i) + x[i] * sin(p*f_i)
// with f_i = theta^(-2i/d), or the frequencies of a rope scaling (below).
// (Checkpoints using interleaved pairs are permuted into this layout by the
// converters.) The products and the sum are separate
// IEEE operations (no FMA), identical in every Isa.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "lockstep/kernels/isa.h"

namespace lockstep::kernels {

// cos/sin for positions [0, max_positions) and frequencies [0, head_dim/2),
// computed once in double precision with the C library and rounded to f32, so
// every Isa and every rank reads the same table.
class RopeTable {
 public:
  // Writes the head_dim/2 inverse frequencies of `position` into `inv_freq`.
  using FrequencyFunction = std::function<void(int position, double* inv_freq)>;

  // Plain RoPE: inv_freq_i = theta^(-2i/head_dim) at every position.
  RopeTable(int head_dim, double theta, int max_positions);
  // Any frequencies (rope scaling, partitioner/rope_scaling.h): entry (p, i)
  // is cos(p * inv_freq_i(p)) * attention_factor (and sin likewise), the
  // product in double, rounded to f32 once. With `depends_on_position`
  // false the function is called once (for position 0). attention_factor 1
  // gives exactly the plain table's bits for the same frequencies.
  RopeTable(int head_dim, int max_positions, double attention_factor, bool depends_on_position,
            const FrequencyFunction& inverse_frequencies);
  int head_dim() const { return head_dim_; }
  int max_positions() const { return max_positions_; }
  const float* cos_at(int position) const {
    return cos_.data() + int64_t{position} * (head_dim_ / 2);
  }
  const float* sin_at(int position) const {
    return sin_.data() + int64_t{position} * (head_dim_ / 2);
  }

 private:
  int head_dim_;
  int max_positions_;
  std::vector<float> cos_;  // [max_positions][head_dim/2]
  std::vector<float> sin_;
};

// In place on x: [num_tokens][num_heads][head_dim]; token t is at positions[t]
// (< table.max_positions()). Row stride ldx floats (>= num_heads*head_dim).
void ApplyRope(Isa isa, const RopeTable& table, float* x, int64_t num_tokens, int64_t ldx,
               int num_heads, const int32_t* positions);

void ApplyRopeReference(const RopeTable& table, float* x, int64_t num_tokens, int64_t ldx,
                        int num_heads, const int32_t* positions);

}  // namespace lockstep::kernels
