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

#include "kernel_table.h"

#define LOCKSTEP_SIMD_NS avx2ftz
#define LOCKSTEP_SIMD_FTZ 1
#include "simd_avx2.h"

// clang-format off
#include "blocking_avx2.h"
#include "segment_chain_impl.h"
#include "matmul_impl.h"
#include "bf16_ftz_matmul_impl.h"
// clang-format on

namespace lockstep::kernels::internal {

MatmulRangeFn Avx2Bf16FtzMatmul() {
  return avx2ftz::Bf16FtzMatmulRange;
}

}  // namespace lockstep::kernels::internal
