// Matrix multiplication with quantized weights (q8_0, q4_0) in one fixed
// order: the same bits on every Isa, thread count, batch and tp split.
//
//   y[m][n] = sum over blocks b of  S[m][n][b] * (d_w[n][b] * d_x[m][b])
//
// W [N][K] is stored in blocks of 32 along K (K a multiple of 32, nb = K/32
// blocks per row), each an f16 scale d_w and 32 integers w (q8_0: -128..127;
// q4_0: -8..7), as in base/quant_block.h. Matmul (matmul.h) takes a
// PackedMatrix of such a W and follows this contract:
//
// 1. Activations are quantized on the fly, per token m and block b of 32
//    values x[j] (QuantizeActivationsReference is the rule in plain code):
//      amax = max_j |x[j]|;
//      amax = 0:          q[j] = 0, d_x = 0;
//      amax Inf or NaN:   q[j] = 0, d_x = NaN (the outputs that read the
//                         block are NaN);
//      otherwise:         d_x = amax / 127 and q[j] = round(x[j] * (127 /
//                         amax)), each an f32 operation, rounded to nearest
//                         even; |q[j]| <= 127.
// 2. The block dot product S = sum_j w[j] * q[j] is exact (int32; |S| <
//    2^19), so its order does not matter: VNNI, emulated VNNI and scalar code
//    give the same S.
// 3. Per (m, n), the block terms are combined by the canonical tree of
//    matmul.h taken over blocks: segment i (of 64) holds blocks
//    [floor(i*nb/64), floor((i+1)*nb/64)); inside a segment one chain in
//    increasing b from +0:  acc = fma(float(S), d_w * d_x, acc)  (d_w * d_x
//    one f32 product, float(S) exact); the 64 segment sums are added by the
//    balanced tree in index order.
// 4. Tensor parallelism: a row-parallel shard holds the segments
//    [r*64/tp, (r+1)*64/tp), i.e. blocks [r*nb/tp, (r+1)*nb/tp): whole blocks
//    and a subtree, provided tp divides nb (partitioner::CheckBlockAlignment
//    refuses other splits). Its columns are then [r*K/tp, (r+1)*K/tp), the
//    same as for a float matrix.
//
// Activations are quantized (rather than kept in f32) so that prefill and
// decode run on integer dot products (AVX512-VNNI / AVX-VNNI vpdpbusd: 64
// multiply-adds per instruction against 16 for an f32 FMA), as llama.cpp does
// for Q8_0 / Q4_0; docs/kernels.md gives the measurements and the accuracy.
#pragma once

#include <cstdint>

#include "lockstep/base/dtype.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/kernels/matmul.h"

namespace lockstep::kernels {

// First block of canonical segment `segment` of a row of num_blocks blocks.
constexpr int64_t BlockSegmentStart(int64_t num_blocks, int segment) {
  return segment * num_blocks / kNumSegments;
}

// Step 1 for one row of n values (n a multiple of 32): q[n] int8 and
// scale[n / 32] (the d_x of each block). Plain scalar code: the reference.
void QuantizeActivationsReference(const float* x, int64_t n, int8_t* q, float* scale);

// The naive reference of the whole contract, in plain loops. W: `rows` rows
// of quantized blocks covering the columns of `slice` (slice.columns() a
// multiple of 32, its first column on a block boundary), row r starting at
// element r * ld (ld a multiple of 32: blocks + r * ld / 32 * block bytes).
void QuantMatmulReference(DType dtype, const void* blocks, int64_t rows, int64_t ld,
                          ReductionSlice slice, const float* x, int64_t num_tokens, int64_t ldx,
                          float* y, int64_t ldy);

// The integer dot product. Where the CPU has AVX512-VNNI (for Isa::kAvx512)
// or AVX-VNNI (for Isa::kAvx2), the quantized kernels use vpdpbusd;
// elsewhere an exact emulation (vpmaddubsw on 4-bit halves). The results are
// the same bits. UseVnni(false), or LOCKSTEP_VNNI=0 in the environment at
// start-up, selects the emulation (for tests and benchmarks); it must not be
// called while a matmul runs.
bool VnniAvailable(Isa isa);
void UseVnni(bool enabled);
bool UsingVnni(Isa isa);  // VnniAvailable(isa) and not disabled

}  // namespace lockstep::kernels
