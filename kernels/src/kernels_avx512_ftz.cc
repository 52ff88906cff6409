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

#include "kernel_table.h"

#define LOCKSTEP_SIMD_NS avx512ftz
#define LOCKSTEP_SIMD_FTZ 1
#include "simd_avx512.h"

// clang-format off
#include "blocking_avx512.h"
#include "segment_chain_impl.h"
#include "matmul_impl.h"
#include "bf16_ftz_matmul_impl.h"
// clang-format on

namespace lockstep::kernels::internal {

MatmulRangeFn Avx512Bf16FtzMatmul() {
  return avx512ftz::Bf16FtzMatmulRange;
}

}  // namespace lockstep::kernels::internal
