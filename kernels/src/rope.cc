// Rotary embedding: the cos/sin table, dispatch, threading and the reference.
#include "lockstep/kernels/rope.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <cmath>

#include "kernel_table_dispatch.h"
#include "lockstep/base/check.h"

namespace lockstep::kernels {

RopeTable::RopeTable(int head_dim, double theta, int max_positions)
    : RopeTable(head_dim, max_positions, 1.0, false, [&](int, double* inv_freq) {
        LOCKSTEP_CHECK(theta > 0.0, "RoPE theta {}", theta);
        // f_i = theta^(-2i/d), in double.
        for (int i = 0; i < head_dim / 2; ++i) inv_freq[i] = std::pow(theta, -2.0 * i / head_dim);
      }) {}

RopeTable::RopeTable(int head_dim, int max_positions, double attention_factor,
                     bool depends_on_position, const FrequencyFunction& inverse_frequencies)
    : head_dim_(head_dim), max_positions_(max_positions) {
  LOCKSTEP_CHECK(head_dim > 0 && head_dim % 2 == 0, "RoPE head_dim {} must be even", head_dim);
  LOCKSTEP_CHECK(max_positions > 0 && attention_factor > 0.0,
                 "RoPE max_positions {} / attention factor {}", max_positions, attention_factor);
  const int half = head_dim / 2;
  cos_.resize(static_cast<size_t>(max_positions) * half);
  sin_.resize(cos_.size());
  std::vector<double> freq(static_cast<size_t>(half));
  if (!depends_on_position) inverse_frequencies(0, freq.data());
  for (int p = 0; p < max_positions; ++p) {
    if (depends_on_position) inverse_frequencies(p, freq.data());
    for (int i = 0; i < half; ++i) {
      // The angle p * f_i in double; one rounding to f32 at the end.
      const double angle = static_cast<double>(p) * freq[static_cast<size_t>(i)];
      cos_[static_cast<size_t>(p) * half + i] =
          static_cast<float>(std::cos(angle) * attention_factor);
      sin_[static_cast<size_t>(p) * half + i] =
          static_cast<float>(std::sin(angle) * attention_factor);
    }
  }
}

void ApplyRope(Isa isa, const RopeTable& table, float* x, int64_t num_tokens, int64_t ldx,
               int num_heads, const int32_t* positions) {
  LOCKSTEP_CHECK(num_tokens >= 0 && num_heads >= 0 &&
                     ldx >= static_cast<int64_t>(num_heads) * table.head_dim(),
                 "ApplyRope: bad shape ({} tokens, {} heads, ldx {})", num_tokens, num_heads, ldx);
  const internal::KernelTable& kernels = internal::KernelsFor(isa);
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, num_tokens), [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t t = r.begin(); t < r.end(); ++t) {
          const int32_t p = positions[t];
          LOCKSTEP_CHECK(p >= 0 && p < table.max_positions(),
                         "RoPE position {} outside the table [0, {})", p, table.max_positions());
          kernels.rope_row(table.cos_at(p), table.sin_at(p), table.head_dim(), num_heads,
                           x + t * ldx);
        }
      });
}

void ApplyRopeReference(const RopeTable& table, float* x, int64_t num_tokens, int64_t ldx,
                        int num_heads, const int32_t* positions) {
  const int d = table.head_dim(), half = d / 2;
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* c = table.cos_at(positions[t]);
    const float* s = table.sin_at(positions[t]);
    for (int h = 0; h < num_heads; ++h) {
      float* v = x + t * ldx + static_cast<int64_t>(h) * d;
      for (int i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

}  // namespace lockstep::kernels
