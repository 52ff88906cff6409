// Element-wise kernels: dispatch, threading and the naive references.
#include "lockstep/kernels/activation.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernel_table_dispatch.h"
#include "lockstep/base/check.h"
#include "lockstep/kernels/matmul.h"

namespace lockstep::kernels {
namespace {

// Element-wise work is cut into blocks of this many elements per task; any
// cut gives the same bits.
constexpr int64_t kElementwiseBlock = 16384;

// The canonical segmented-tree sum (matmul.h) of x[0..n), plain loops.
float CanonicalSumReference(const float* x, int64_t n) {
  float sums[kNumSegments];
  for (int s = 0; s < kNumSegments; ++s) {
    float acc = 0.0f;
    for (int64_t k = SegmentStart(n, s); k < SegmentStart(n, s + 1); ++k) acc = acc + x[k];
    sums[s] = acc;
  }
  for (int width = kNumSegments; width > 1; width /= 2) {
    for (int i = 0; i < width / 2; ++i) sums[i] = sums[2 * i] + sums[2 * i + 1];
  }
  return sums[0];
}

}  // namespace

float Exp(float x) {
  return internal::ScalarExp(x);
}

void SwiGlu(Isa isa, const float* gate, const float* up, int64_t n, float* out) {
  LOCKSTEP_CHECK(n >= 0, "SwiGlu: negative length {}", n);
  const internal::KernelTable& table = internal::KernelsFor(isa);
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, (n + kElementwiseBlock - 1) / kElementwiseBlock),
                    [&](const tbb::blocked_range<int64_t>& r) {
                      const int64_t b = r.begin() * kElementwiseBlock;
                      const int64_t e = std::min(n, r.end() * kElementwiseBlock);
                      table.swiglu(gate + b, up + b, e - b, out + b);
                    });
}

void Add(Isa isa, float* y, const float* x, int64_t n) {
  LOCKSTEP_CHECK(n >= 0, "Add: negative length {}", n);
  const internal::KernelTable& table = internal::KernelsFor(isa);
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, (n + kElementwiseBlock - 1) / kElementwiseBlock),
                    [&](const tbb::blocked_range<int64_t>& r) {
                      const int64_t b = r.begin() * kElementwiseBlock;
                      const int64_t e = std::min(n, r.end() * kElementwiseBlock);
                      table.add(y + b, x + b, e - b);
                    });
}

void AddBias(Isa isa, float* y, int64_t rows, int64_t ldy, const float* bias, int64_t n) {
  LOCKSTEP_CHECK(rows >= 0 && n >= 0 && ldy >= n, "AddBias: bad shape ({} rows of {}, ldy {})",
                 rows, n, ldy);
  const internal::KernelTable& table = internal::KernelsFor(isa);
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, rows),
                    [&](const tbb::blocked_range<int64_t>& r) {
                      for (int64_t row = r.begin(); row < r.end(); ++row)
                        table.add(y + row * ldy, bias, n);
                    });
}

void Softmax(Isa isa, float* x, int64_t n) {
  LOCKSTEP_CHECK(n >= 0 && n < (int64_t{1} << 31), "Softmax: length {} out of range", n);
  internal::KernelsFor(isa).softmax(x, n);
}

void SwiGluReference(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = (g / (1.0f + Exp(-g))) * up[i];
  }
}

void SoftmaxReference(float* x, int64_t n) {
  if (n <= 0) return;
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
  for (int64_t i = 0; i < n; ++i) x[i] = Exp(x[i] - m);
  const float sum = CanonicalSumReference(x, n);
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] / sum;
}

}  // namespace lockstep::kernels
