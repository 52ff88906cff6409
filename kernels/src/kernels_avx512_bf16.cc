// The bf16-compute matmul of the avx512 build with the bf16 dot-product
// instruction (vdpbf16ps), for CPUs with AVX512_BF16 (Cooper Lake, Sapphire
// Rapids, Zen 4 and later); compiled with LOCKSTEP_AVX512_FLAGS and
// -mavx512bf16. The same kernel body as kernels_avx512.cc (matmul_impl.h);
// only DotBf16 differs: the instruction here, its exact emulation there
// (bf16_matmul.h has the semantics both follow). The bf16 compute switches to
// this where the CPU has the instruction and it is the faster step
// (Bf16StepFor).
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>

#include "kernel_table.h"

#define LOCKSTEP_SIMD_NS avx512bf16
#define LOCKSTEP_SIMD_BF16 1
#include "simd_avx512.h"

// clang-format off
#include "blocking_avx512.h"
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

namespace {
// `iterations` rounds of kBf16DotPeakChains independent vdpbf16ps chains
// (each 16 lanes x 2 multiply-adds).
constexpr int kBf16DotPeakChains = 24;
float Bf16DotChains(int64_t iterations, float seed) {
  using avx512bf16::VecF;
  VecF acc[kBf16DotPeakChains];
  for (int i = 0; i < kBf16DotPeakChains; ++i) acc[i] = VecF::Set1(seed + static_cast<float>(i));
  // Pairs (0.999, 1e-3) of bf16 bits, as f32 slots.
  const VecF a = VecF::FromBits(avx512bf16::VecI::Set1(0x3f7f3a83));
  const VecF b = VecF::FromBits(avx512bf16::VecI::Set1(0x3f7f3a83));
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kBf16DotPeakChains; ++i) acc[i] = avx512bf16::DotBf16Native(acc[i], a, b);
  }
  for (int i = 1; i < kBf16DotPeakChains; ++i) acc[0] = acc[0] + acc[i];
  float lanes[16];
  acc[0].Store(lanes);
  return lanes[0];
}
}  // namespace

DotPeakKernel Avx512Bf16DotPeak() {
  return {Bf16DotChains, int64_t{2} * 32 * kBf16DotPeakChains};
}

}  // namespace lockstep::kernels::internal
