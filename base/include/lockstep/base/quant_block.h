// Quantized weight blocks: q8_0 and q4_0, bit for bit the Q8_0 and Q4_0
// blocks of GGUF / ggml (ggml-common.h: block_q8_0, block_q4_0).
//
// A row of K values (K a multiple of 32) is cut into K/32 blocks along the
// row. A block holds 32 consecutive values as one f16 scale d (IEEE binary16,
// little-endian) and 32 small integers q; value j of the block is d * q[j]:
//
//   q8_0  34 bytes: d, then int8 q[0..31] (one byte each, -128..127).
//   q4_0  18 bytes: d, then 16 bytes qs; q[j] = (qs[j] & 15) - 8 and
//         q[j + 16] = (qs[j] >> 4) - 8 for j < 16 (values -8..7).
//
// Dequantising is exact in f32 (an f16 times an integer of at most 8 bits
// needs at most 19 significant bits).
//
// Quantising is ggml's reference quantiser (ggml-quants.c,
// quantize_row_q8_0_ref / quantize_row_q4_0_ref), written out here with every
// operation in f32 and none fused:
//
//   q8_0  amax = max |x[j]|; d = amax / 127; id = d != 0 ? 1 / d : 0;
//         q[j] = roundf(x[j] * id) (half away from zero); stored d = f16(d).
//   q4_0  m = the x[j] of largest magnitude (the first one on ties);
//         d = m / -8; id = d != 0 ? 1 / d : 0;
//         q[j] + 8 = min(15, trunc(x[j] * id + 8.5)); stored d = f16(d).
//
// f16(d) rounds to nearest even (what ggml's F16C conversion does). Note that
// the integers are computed with the f32 d, not the stored f16 one, as ggml
// does. Inputs must be finite (callers check: AllFinite); a non-finite value
// gives a non-finite or meaningless block, never undefined behaviour.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>

#include "lockstep/base/dtype.h"

namespace lockstep {

struct BlockQ8_0 {
  uint16_t d;     // f16 scale
  int8_t qs[32];  // values
};
struct BlockQ4_0 {
  uint16_t d;      // f16 scale
  uint8_t qs[16];  // values 0..15 (q + 8): element j low nibble, j + 16 high nibble
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18);

// Quantises `n` values (a multiple of 32) into n / 32 blocks of `dtype`
// (q8_0 or q4_0) at `blocks`.
void QuantizeRow(DType dtype, const float* x, int64_t n, void* blocks);

// Widens n values (a multiple of 32) of `dtype` (q8_0 or q4_0) to f32, exactly.
void DequantizeRow(DType dtype, const void* blocks, int64_t n, float* y);

// Rewrites q4_0 blocks as q8_0 blocks with the same values, exactly (the
// same scale; q8 = q4).
void WidenQ4_0ToQ8_0(const void* q4_blocks, int64_t num_blocks, void* q8_blocks);

// The f16 scale bits of block `index` of an array of blocks of `dtype`.
uint16_t QuantBlockScaleBits(DType dtype, const void* blocks, int64_t index);
// Integer value j (0..31) of block `index`: -128..127 (q8_0) or -8..7 (q4_0).
int QuantBlockValue(DType dtype, const void* blocks, int64_t index, int j);

// The index of the first block of `num_blocks` whose scale is Inf or NaN, or
// -1 if all are finite.
int64_t FirstNonFiniteScale(DType dtype, const void* blocks, int64_t num_blocks);

// The index of the first of n values that is Inf or NaN, or -1.
int64_t FirstNonFinite(const float* x, int64_t n);

}  // namespace lockstep
