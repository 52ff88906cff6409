// The quantized matmul of the avx2 build with the VNNI dot product
// (vpdpbusd), for CPUs with AVX-VNNI (Alder Lake, Sapphire Rapids, Zen 5 and later); compiled with
// LOCKSTEP_AVX2_VNNI_FLAGS. The same kernel body as kernels_avx2.cc
// (quant_matmul_impl.h); only DotU8S8 / DotU4S8 differ (simd_avx2.h), and
// they compute the same exact integers. Avx2KernelTable() switches to these
// when the CPU has the instructions (quant_matmul.h, UseVnni).
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>

#include "kernel_table.h"

#define LOCKSTEP_SIMD_NS avx2vnni
#define LOCKSTEP_SIMD_VNNI 1
#include "simd_avx2.h"

namespace lockstep::kernels::avx2vnni {
// As kernels_avx2.cc.
inline constexpr int kQuantDecodePanels = 2;
inline constexpr int kQuantBlockTokens = 3;
inline constexpr int kQuantRegisters = 7;
inline constexpr int kQuantMaxPanels = 2;
inline constexpr int kQuantChunkBlocks = 16;
}  // namespace lockstep::kernels::avx2vnni

// clang-format off
#include "segment_chain_impl.h"
#include "quant_matmul_impl.h"
// clang-format on

namespace lockstep::kernels::internal {

const QuantKernels& Avx2VnniQuantKernels() {
  namespace k = avx2vnni;
  static const QuantKernels kernels = {k::kQuantDecodePanels, k::kQuantBlockTokens,
                                       k::QuantPanelsFor, k::kQuantChunkBlocks,
                                       k::QuantMatmulRange};
  return kernels;
}


namespace {
// `iterations` rounds of kInt8DotPeakChains independent vpdpbusd chains
// (each 8 lanes x 4 multiply-adds of u8 x s8 into s32).
constexpr int kInt8DotPeakChains = 24;
float Int8DotChains(int64_t iterations, float seed) {
  __m256i acc[kInt8DotPeakChains];
  for (int i = 0; i < kInt8DotPeakChains; ++i) {
    acc[i] = _mm256_set1_epi32(static_cast<int>(seed) + i);
  }
  const __m256i a = _mm256_set1_epi8(1);
  const __m256i b = _mm256_set1_epi8(1);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kInt8DotPeakChains; ++i) acc[i] = _mm256_dpbusd_avx_epi32(acc[i], a, b);
  }
  for (int i = 1; i < kInt8DotPeakChains; ++i) acc[0] = _mm256_add_epi32(acc[0], acc[i]);
  int32_t lanes[8];
  std::memcpy(lanes, &acc[0], sizeof(lanes));
  return static_cast<float>(lanes[0]);
}
}  // namespace

DotPeakKernel Avx2VnniInt8DotPeak() {
  return {Int8DotChains, int64_t{2} * 4 * 8 * kInt8DotPeakChains};
}

}  // namespace lockstep::kernels::internal
