// RMSNorm, as in Llama:  y = (x * (1 / sqrt(mean(x^2) + eps))) * weight
//
// Order: sum(x^2) uses the canonical segmented tree of matmul.h (the dot
// product of x with itself, S = kNumSegments segments over dim); then
// mean = sum / dim, inv = 1.0f / std::sqrt(mean + eps) (IEEE-exact sqrt and
// division, no rsqrt approximation), y[i] = (x[i] * inv) * weight[i].
// Tensor-parallel ranks compute it replicated, identically.
#pragma once

#include <cstdint>

#include "lockstep/kernels/isa.h"

namespace lockstep::kernels {

//   x, y: [num_tokens][dim] f32 (y may alias x), weight: [dim] f32
void RmsNorm(Isa isa, const float* x, int64_t num_tokens, int64_t dim, const float* weight,
             float eps, float* y);

void RmsNormReference(const float* x, int64_t num_tokens, int64_t dim, const float* weight,
                      float eps, float* y);

}  // namespace lockstep::kernels
