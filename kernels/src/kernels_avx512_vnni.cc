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

// clang-format off
#include "blocking_avx512.h"
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

// MeasureInt8DotPeak's loop: 24 of the 32 zmm registers.
DotPeakKernel Avx512VnniInt8DotPeak() {
  constexpr int kChains = 24;
  return {avx512vnni::Int8DotChains<kChains>, avx512vnni::kInt8DotFlopsPerIteration<kChains>};
}

}  // namespace lockstep::kernels::internal
