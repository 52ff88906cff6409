// The bf16-compute matmul of the avx512 build with the bf16 dot-product
// instruction (vdpbf16ps), for CPUs with AVX512_BF16 (Cooper Lake, Sapphire
// Rapids, Zen 4 and later); compiled with LOCKSTEP_AVX512_FLAGS and
// -mavx512bf16. The same kernel body as kernels_avx512.cc (matmul_impl.h);
// only DotBf16 differs: the instruction here, its exact emulation there
// (bf16_matmul.h has the semantics both follow). The bf16 compute switches to
// this where the CPU has the instruction (UseBf16Dot).
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>

#include "kernel_table.h"

#define LOCKSTEP_SIMD_NS avx512bf16
#define LOCKSTEP_SIMD_BF16 1
#include "simd_avx512.h"

namespace lockstep::kernels::avx512bf16 {
// As kernels_avx512.cc.
inline constexpr int kMatmulBlockPanels = 4;
inline constexpr int kMatmulBlockTokens = 6;
inline constexpr int kMatmulDecodePanels = 8;
inline constexpr int kMatmulSmallMaxTokens = 32;
inline constexpr int kMatmulSmallBlockTokens = 8;
inline constexpr int kMatmulSmallRegisters = 28;
inline constexpr int kMatmulSmallMaxPanels = 4;
}  // namespace lockstep::kernels::avx512bf16

// clang-format off
#include "segment_chain_impl.h"
#include "matmul_impl.h"
// clang-format on

namespace lockstep::kernels::internal {

namespace {
void Bf16PairMatmulRange(const MatmulCall& call, int64_t panel_begin, int64_t panel_end,
                         int64_t token_begin, int64_t token_end) {
  avx512bf16::MatmulRangeTyped<WeightType::kBF16Pair>(call, panel_begin, panel_end, token_begin,
                                                      token_end);
}
}  // namespace

MatmulRangeFn Avx512Bf16DotMatmul() {
  return Bf16PairMatmulRange;
}

}  // namespace lockstep::kernels::internal
