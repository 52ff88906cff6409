// RMSNorm: dispatch, threading (over tokens) and the naive reference.
#include "lockstep/kernels/norm.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <cmath>

#include "kernel_table_dispatch.h"
#include "lockstep/base/check.h"
#include "lockstep/kernels/matmul.h"

namespace lockstep::kernels {

void RmsNorm(Isa isa, const float* x, int64_t num_tokens, int64_t dim, const float* weight,
             float eps, float* y) {
  LOCKSTEP_CHECK(num_tokens >= 0 && dim > 0 && dim < (int64_t{1} << 31),
                 "RmsNorm: bad shape {} x {}", num_tokens, dim);
  const internal::KernelTable& table = internal::KernelsFor(isa);
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, num_tokens),
                    [&](const tbb::blocked_range<int64_t>& r) {
                      for (int64_t t = r.begin(); t < r.end(); ++t) {
                        table.rms_norm_row(x + t * dim, dim, weight, eps, y + t * dim);
                      }
                    });
}

void RmsNormReference(const float* x, int64_t num_tokens, int64_t dim, const float* weight,
                      float eps, float* y) {
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* row = x + t * dim;
    // sum(x^2): the canonical segmented tree of matmul.h.
    float sums[kNumSegments];
    for (int s = 0; s < kNumSegments; ++s) {
      float acc = 0.0f;
      for (int64_t k = SegmentStart(dim, s); k < SegmentStart(dim, s + 1); ++k) {
        acc = std::fma(row[k], row[k], acc);
      }
      sums[s] = acc;
    }
    for (int width = kNumSegments; width > 1; width /= 2) {
      for (int i = 0; i < width / 2; ++i) sums[i] = sums[2 * i] + sums[2 * i + 1];
    }
    const float mean = sums[0] / static_cast<float>(dim);
    const float inv = 1.0f / std::sqrt(mean + eps);
    for (int64_t i = 0; i < dim; ++i) y[t * dim + i] = (row[i] * inv) * weight[i];
  }
}

}  // namespace lockstep::kernels
