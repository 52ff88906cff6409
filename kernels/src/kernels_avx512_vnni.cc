// The quantized matmul of the avx512 build with the VNNI dot product
// (vpdpbusd), for CPUs with AVX512-VNNI (Ice Lake, Sapphire Rapids, Zen 4 and later); compiled with
// LOCKSTEP_AVX512_VNNI_FLAGS. The same kernel body as kernels_avx512.cc
// (quant_matmul_impl.h); only DotU8S8 / DotU4S8 differ (simd_avx512.h), and
// they compute the same exact integers. Avx512KernelTable() switches to these
// when the CPU has the instructions (quant_matmul.h, UseVnni).
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>

#include "kernel_table.h"

#define LOCKSTEP_SIMD_NS avx512vnni
#define LOCKSTEP_SIMD_VNNI 1
#include "simd_avx512.h"

namespace lockstep::kernels::avx512vnni {
// As kernels_avx512.cc.
inline constexpr int kQuantDecodePanels = 8;
inline constexpr int kQuantBlockTokens = 6;
inline constexpr int kQuantRegisters = 26;
inline constexpr int kQuantMaxPanels = 4;
inline constexpr int kQuantChunkBlocks = 16;
}  // namespace lockstep::kernels::avx512vnni

// clang-format off
#include "segment_chain_impl.h"
#include "quant_matmul_impl.h"
// clang-format on

namespace lockstep::kernels::internal {

const QuantKernels& Avx512VnniQuantKernels() {
  namespace k = avx512vnni;
  static const QuantKernels kernels = {k::kQuantDecodePanels, k::kQuantBlockTokens,
                                       k::QuantPanelsFor, k::kQuantChunkBlocks,
                                       k::QuantMatmulRange};
  return kernels;
}


namespace {
// `iterations` rounds of kInt8DotPeakChains independent vpdpbusd chains
// (each 16 lanes x 4 multiply-adds of u8 x s8 into s32).
constexpr int kInt8DotPeakChains = 24;
float Int8DotChains(int64_t iterations, float seed) {
  __m512i acc[kInt8DotPeakChains];
  for (int i = 0; i < kInt8DotPeakChains; ++i) {
    acc[i] = _mm512_set1_epi32(static_cast<int>(seed) + i);
  }
  const __m512i a = _mm512_set1_epi8(1);
  const __m512i b = _mm512_set1_epi8(1);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kInt8DotPeakChains; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  }
  for (int i = 1; i < kInt8DotPeakChains; ++i) acc[0] = _mm512_add_epi32(acc[0], acc[i]);
  int32_t lanes[16];
  std::memcpy(lanes, &acc[0], sizeof(lanes));
  return static_cast<float>(lanes[0]);
}
}  // namespace

DotPeakKernel Avx512VnniInt8DotPeak() {
  return {Int8DotChains, int64_t{2} * 4 * 16 * kInt8DotPeakChains};
}

}  // namespace lockstep::kernels::internal
