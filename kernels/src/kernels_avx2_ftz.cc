// The bf16-compute matmul of the avx2 build with the dot-product step as two
// bare FMAs under the MXCSR flush-to-zero bit (as kernels_avx512_ftz.cc, which
// says why); compiled with LOCKSTEP_AVX2_FLAGS. CPUs with AVX2 but no AVX-512
// have no bf16 dot-product instruction, so this is their fast exact bf16
// compute: the checked emulation pays a flush test per step.
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <vector>

#include "flush_to_zero_scope.h"
#include "kernel_table.h"

#define LOCKSTEP_SIMD_NS avx2ftz
#define LOCKSTEP_SIMD_FTZ 1
#include "simd_avx2.h"

namespace lockstep::kernels::avx2ftz {
// As kernels_avx2.cc.
inline constexpr int kMatmulBlockPanels = 1;
inline constexpr int kMatmulBlockTokens = 6;
inline constexpr int kMatmulDecodePanels = 4;
inline constexpr int kMatmulSmallMaxTokens = 32;
inline constexpr int kMatmulSmallBlockTokens = 6;
inline constexpr int kMatmulSmallRegisters = 7;
inline constexpr int kMatmulSmallMaxPanels = 2;
}  // namespace lockstep::kernels::avx2ftz

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
  avx2ftz::MatmulRangeTyped<WeightType::kBF16Pair>(call, panel_begin, panel_end, token_begin,
                                                   token_end);
}

void Bf16PairMatmulRange(const MatmulCall& call, int64_t panel_begin, int64_t panel_end,
                         int64_t token_begin, int64_t token_end) {
  const FlushToZeroScope ftz;
  FlushToZeroBody(call, panel_begin, panel_end, token_begin, token_end);
}

}  // namespace

MatmulRangeFn Avx2Bf16FtzMatmul() {
  return Bf16PairMatmulRange;
}

}  // namespace lockstep::kernels::internal
