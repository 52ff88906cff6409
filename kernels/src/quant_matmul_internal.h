// The quantized half of PackedMatrix and Matmul (matmul.cc calls these for
// q8_0 / q4_0 packs; quant_matmul.cc implements them).
#pragma once

#include <cstddef>
#include <cstdint>

#include "lockstep/base/dtype.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/kernels/matmul.h"

namespace lockstep::kernels::internal {

// Bytes of the quantized pack of rows x cols (kernel_table.h has the layout).
size_t QuantPackBytes(DType dtype, int64_t rows, int64_t cols);
// The per-panel stride of that pack.
int64_t QuantPanelBytes(DType dtype, int64_t cols);
// Packs `rows` rows of cols / 32 blocks (row r at blocks + r * ld / 32 block
// bytes) into dst (QuantPackBytes, zeroed by the caller).
void PackQuantPanels(DType dtype, const void* blocks, int64_t rows, int64_t ld, int64_t cols,
                     uint8_t* dst);
// W[row][col] of a quantized pack, widened to f32.
float QuantPackedAt(DType dtype, const uint8_t* pack, int64_t cols, int64_t row, int64_t col);
// Checks (aborts) that a slice's column bounds fall on block boundaries.
void CheckQuantSlice(const ReductionSlice& slice);

void QuantMatmul(Isa isa, const PackedMatrix& w, const float* x, int64_t num_tokens, int64_t ldx,
                 float* y, int64_t ldy, ReductionOrder order);

}  // namespace lockstep::kernels::internal
