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

// clang-format off
#include "blocking_avx2.h"
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

// MeasureInt8DotPeak's loop: 6 chains of two ymm halves: 12 of the 16 ymm registers.
DotPeakKernel Avx2VnniInt8DotPeak() {
  constexpr int kChains = 6;
  return {avx2vnni::Int8DotChains<kChains>, avx2vnni::kInt8DotFlopsPerIteration<kChains>};
}

}  // namespace lockstep::kernels::internal
