// The bf16-compute matmul of the avx512 build with the dot-product step as
// two bare FMAs under the MXCSR flush-to-zero bit; compiled with
// LOCKSTEP_AVX512_FLAGS. The same kernel body as kernels_avx512.cc
// (matmul_impl.h); only DotBf16 and the segment tree's add differ
// (LOCKSTEP_SIMD_FTZ). Same bits as vdpbf16ps and as the checked emulation
// (bf16_matmul.h has the semantics all three follow).
//
// Why: on Intel's AVX512_BF16 cores (Cooper Lake to Emerald Rapids)
// vdpbf16ps issues at half the f32 FMA's multiply-add rate, and the checked
// emulation spends more on its flush test than on its FMAs; two FMAs per pair
// with the flush done by the hardware are the fastest exact bf16 compute
// there (benchmarks/RESULTS.md, "bf16 compute at the FMA rate").
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>

#include "flush_to_zero_scope.h"
#include "kernel_table.h"

#define LOCKSTEP_SIMD_NS avx512ftz
#define LOCKSTEP_SIMD_FTZ 1
#include "simd_avx512.h"

namespace lockstep::kernels::avx512ftz {
// As kernels_avx512.cc.
inline constexpr int kMatmulBlockPanels = 4;
inline constexpr int kMatmulBlockTokens = 6;
inline constexpr int kMatmulDecodePanels = 8;
inline constexpr int kMatmulSmallMaxTokens = 32;
inline constexpr int kMatmulSmallBlockTokens = 8;
inline constexpr int kMatmulSmallRegisters = 28;
inline constexpr int kMatmulSmallMaxPanels = 4;
}  // namespace lockstep::kernels::avx512ftz

// clang-format off
#include "segment_chain_impl.h"
#include "matmul_impl.h"
// clang-format on

namespace lockstep::kernels::internal {

namespace {

// The kernel, kept out of line: none of its floating-point operations may be
// moved across the MXCSR writes around the call (FlushToZeroScope).
[[gnu::noinline]] void FlushToZeroBody(const MatmulCall& call, int64_t panel_begin,
                                       int64_t panel_end, int64_t token_begin, int64_t token_end) {
  avx512ftz::MatmulRangeTyped<WeightType::kBF16Pair>(call, panel_begin, panel_end, token_begin,
                                                     token_end);
}

void Bf16PairMatmulRange(const MatmulCall& call, int64_t panel_begin, int64_t panel_end,
                         int64_t token_begin, int64_t token_end) {
  const FlushToZeroScope ftz;
  FlushToZeroBody(call, panel_begin, panel_end, token_begin, token_end);
}

}  // namespace

MatmulRangeFn Avx512Bf16FtzMatmul() {
  return Bf16PairMatmulRange;
}

}  // namespace lockstep::kernels::internal
