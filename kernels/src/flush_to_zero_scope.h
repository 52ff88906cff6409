// The MXCSR of the bf16 compute's FTZ kernels (kernels_avx512_ftz.cc,
// kernels_avx2_ftz.cc): flush to zero on, rounding to nearest even, DAZ off
// (DAZ would read the segment tree's subnormal partial sums as zeros), and
// the caller's MXCSR back at the end, also when the kernel throws
// (std::bad_alloc). Baseline code (SSE's ldmxcsr/stmxcsr).
#pragma once

#include <xmmintrin.h>

namespace lockstep::kernels::internal {

class FlushToZeroScope {
 public:
  // MXCSR bits: flush to zero (15), rounding control (14..13, 00 = nearest
  // even), denormals are zero (6).
  static constexpr unsigned kFtz = 1u << 15, kRounding = 3u << 13, kDaz = 1u << 6;

  FlushToZeroScope() : saved_(_mm_getcsr()) { _mm_setcsr((saved_ & ~(kRounding | kDaz)) | kFtz); }
  ~FlushToZeroScope() { _mm_setcsr(saved_); }
  FlushToZeroScope(const FlushToZeroScope&) = delete;
  FlushToZeroScope& operator=(const FlushToZeroScope&) = delete;

 private:
  unsigned saved_;
};

}  // namespace lockstep::kernels::internal
