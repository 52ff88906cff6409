// Element-wise kernels. exp is one algorithm (range reduction by ln 2 and a
// polynomial, written with explicit FMAs) in every Isa and in scalar code, so
// softmax and SiLU give the same bits everywhere. std::exp is never used.
#pragma once

#include <cstdint>

#include "lockstep/kernels/isa.h"

namespace lockstep::kernels {

// The project's exp: max 2 ulp from the true value for |x| < 87; exp(-inf) = 0,
// underflow gives 0, overflow gives +inf, NaN propagates. Scalar form of the
// algorithm every SIMD path runs.
float Exp(float x);

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1.0f + Exp(-g)).
// out may alias gate or up.
void SwiGlu(Isa isa, const float* gate, const float* up, int64_t n, float* out);

// y[i] += x[i] (residual connections).
void Add(Isa isa, float* y, const float* x, int64_t n);

// y[r][i] += bias[i] for rows r < rows (row stride ldy >= n) and i < n: one
// IEEE add per element, as Add (the q/k/v biases).
void AddBias(Isa isa, float* y, int64_t rows, int64_t ldy, const float* bias, int64_t n);

// In-place softmax over x[0..n): m = max; e_i = Exp(x_i - m);
// sum = canonical segmented tree of e (as matmul.h, over n); x_i = e_i / sum.
void Softmax(Isa isa, float* x, int64_t n);

void SwiGluReference(const float* gate, const float* up, int64_t n, float* out);
void SoftmaxReference(float* x, int64_t n);

}  // namespace lockstep::kernels
