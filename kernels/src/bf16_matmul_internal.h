// The bf16 compute's pack and activation layout, shared by matmul.cc and
// bf16_matmul.cc (bf16_matmul.h is the contract).
//
// Pair layout. For the columns of a ReductionSlice, each canonical segment's
// columns are taken in pairs from the segment's start; an odd segment's last
// pair is padded with +0. Pair j of the slice holds the columns (k, k+1) of
// its segment, as one 32-bit element: bf16 of column k in bits 31..16, of
// column k + 1 (or the pad) in bits 15..0, the order in which vdpbf16ps adds
// a lane's two products.
//
// Pack (WeightType::kBF16Pair): panels of 16 rows, pair-major inside a panel:
//   pack[p][j][r] = pair j of row 16p + r   (uint32; padding rows zero)
// Activations: one row of `pairs` elements per token, the same pairs.
#pragma once

#include <cstdint>
#include <vector>

#include "lockstep/kernels/bf16_matmul.h"
#include "lockstep/kernels/matmul.h"

namespace lockstep::kernels::internal {

struct Bf16PairLayout {
  std::vector<int64_t> columns;  // local column bounds of the slice's segments (n + 1)
  std::vector<int64_t> pairs;    // local pair bounds of the same segments (n + 1)
  int64_t num_pairs() const { return pairs.back(); }
};
Bf16PairLayout Bf16Pairs(const ReductionSlice& slice);

// The pair bounds alone (Bf16Pairs(slice).pairs).
std::vector<int64_t> Bf16PairBounds(const ReductionSlice& slice);

// Packs W (rows x slice.columns() bf16, row stride ld) into `dst` (zeroed,
// ceil(rows/16) * 16 * num_pairs elements), subnormal weights flushed to a
// zero of their sign.
void PackBf16Pairs(const uint16_t* src, int64_t rows, int64_t ld, const ReductionSlice& slice,
                   uint32_t* dst);

// One token's activations (the slice's columns, x[0] the first) rounded to
// bf16 (RoundToBf16) in the pair layout, as 32-bit elements in f32 slots.
void RoundToBf16Pairs(const float* x, const Bf16PairLayout& layout, float* dst);

// Of Bf16Step::kInstruction and kFlushToZero (the CPU must have both), the
// one whose prefill kernel is faster on this CPU: each times a 48-token,
// 256 x 1024 bf16-compute matmul on one thread, best of 5 alternating
// rounds (matmul.cc). Either gives the same bits.
Bf16Step MeasureFasterBf16Step();

// Element W[row][col] of a bf16-compute pack, widened to f32.
float Bf16PairPackedAt(const uint32_t* pack, const ReductionSlice& slice, int64_t row, int64_t col);

}  // namespace lockstep::kernels::internal
