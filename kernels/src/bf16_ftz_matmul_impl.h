// The bf16-compute matmul of the FTZ builds (kernels_avx512_ftz.cc,
// kernels_avx2_ftz.cc): the kernel body of matmul_impl.h, whose dot-product
// step is two bare FMAs there (LOCKSTEP_SIMD_FTZ), run with MXCSR's
// flush-to-zero bit set: flush to zero on, rounding to nearest even, DAZ off
// (DAZ would read the segment tree's subnormal partial sums as zeros), and
// the caller's MXCSR back at the end, also when the kernel throws
// (std::bad_alloc). Included after matmul_impl.h.
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

namespace lockstep::kernels::LOCKSTEP_SIMD_NS {

// The kernel, kept out of line: none of its floating-point operations may be
// moved across the MXCSR writes around the call.
[[gnu::noinline]] inline void Bf16FtzBody(const internal::MatmulCall& call, int64_t panel_begin,
                                          int64_t panel_end, int64_t token_begin,
                                          int64_t token_end) {
  MatmulRangeTyped<internal::WeightType::kBF16Pair>(call, panel_begin, panel_end, token_begin,
                                                    token_end);
}

inline void Bf16FtzMatmulRange(const internal::MatmulCall& call, int64_t panel_begin,
                               int64_t panel_end, int64_t token_begin, int64_t token_end) {
  const internal::FlushToZeroScope ftz;
  Bf16FtzBody(call, panel_begin, panel_end, token_begin, token_end);
}

}  // namespace lockstep::kernels::LOCKSTEP_SIMD_NS
