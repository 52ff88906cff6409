// Matrix multiplication with the canonical reduction order.
//
//   y[m][n] = sum_k x[m][k] * W[n][k]      x: [M][K] f32, W: [N][K] (torch Linear
//                                          layout: out x in), y: [M][N] f32
//
// The canonical order (docs/determinism.md). A reduction of global length
// K_global is cut into S = kNumSegments segments; segment i covers
// [floor(i*K_global/S), floor((i+1)*K_global/S)) (empty when K_global < S).
// Inside a segment: one fused multiply-add chain in increasing k starting from
// +0.0f. The segment sums are combined by a balanced binary tree in index
// order: ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7))...
//
// Tensor parallelism. A row-parallel shard holds the columns of a contiguous,
// aligned run of segments [segment_begin, segment_end) whose count is a power
// of two and whose start is a multiple of that count (a subtree of the
// canonical tree). Its matmul returns that subtree's sum; the deterministic
// allreduce in transport/ combines the subtrees into the full tree, so the
// result equals the one-rank result bit for bit. Rank r of a tp group gets
// segments [r*S/tp, (r+1)*S/tp), i.e. columns [floor(r*K/tp), floor((r+1)*K/tp)).
//
// Weights are packed once at load time (PackedMatrix) in panels of
// kPanelWidth consecutive output rows, k-major inside a panel, so that one
// vector load feeds 16 (AVX-512) or 8 (AVX2) outputs at one k. The panel
// layout is the same for every Isa. f16 and bf16 weights stay 2 bytes in the
// pack and widen to f32 exactly in registers; accumulation is always f32.
//
// Quantized weights (q8_0, q4_0: blocks of 32 along K, base/quant_block.h)
// pack into their own panel layout and follow the contract of
// quant_matmul.h: activations quantized per block, exact integer block sums,
// and this canonical tree taken over blocks instead of columns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "lockstep/base/dtype.h"
#include "lockstep/kernels/isa.h"

namespace lockstep::kernels {

inline constexpr int kNumSegments = 64;  // S, a power of two
inline constexpr int kPanelWidth = 16;   // output rows per packed panel

// First column of canonical segment `segment` for a reduction of length k_global.
constexpr int64_t SegmentStart(int64_t k_global, int segment) {
  return segment * k_global / kNumSegments;
}

// Which part of the canonical reduction a matrix's columns cover.
struct ReductionSlice {
  int64_t k_global = 0;            // length of the whole reduction (the unsharded K)
  int segment_begin = 0;           // first canonical segment held
  int segment_end = kNumSegments;  // one past the last; (end - begin) is a power
                                   // of two and begin is a multiple of it
  // The full reduction of length k.
  static ReductionSlice Full(int64_t k) { return {k, 0, kNumSegments}; }
  // Shard `rank` of `parts` (a power of two dividing kNumSegments).
  static ReductionSlice Shard(int64_t k, int rank, int parts);
  int64_t column_begin() const { return SegmentStart(k_global, segment_begin); }
  int64_t column_end() const { return SegmentStart(k_global, segment_end); }
  int64_t columns() const { return column_end() - column_begin(); }
};

// The arithmetic of a matmul. kFloat: the weights widened to f32 exactly,
// f32 activations, f32 FMA chains (this header). kBf16: bf16 weights only;
// activations rounded to bf16 and the products accumulated as the
// AVX512_BF16 dot-product instruction does, in the canonical segments and
// tree (bf16_matmul.h). The two give different bits; each is deterministic.
enum class Compute { kFloat = 0, kBf16 = 1 };
std::string_view ComputeName(Compute compute);            // "float", "bf16"
Result<Compute> ParseCompute(std::string_view name);      // the names above

// Order of the reduction. kCanonical is what lockstep runs; kPlain (one FMA
// chain over all of K, no segments) exists only so benchmarks can measure
// what determinism costs. Both are deterministic for a fixed Isa.
enum class ReductionOrder { kCanonical, kPlain };

class PackedMatrix {
 public:
  PackedMatrix() = default;

  // Packs W[rows][slice.columns()] given row-major with leading dimension
  // `ld` (elements, >= slice.columns()) in `dtype`. Copies; `data` can be
  // freed afterwards. Quantized dtypes: `data` holds rows of blocks (row r
  // at block r * ld / 32), ld and the slice's column bounds are multiples of
  // 32 and fall on the block segments of quant_matmul.h, and every scale is
  // finite (callers validate their input; these are checked, and abort).
  //
  // compute: the arithmetic Matmul will use with this pack. Compute::kBf16
  // needs dtype kBF16 (checked; abort) and packs the weights in pairs of
  // columns per canonical segment (bf16_matmul.h).
  static PackedMatrix Pack(DType dtype, const void* data, int64_t rows, int64_t ld,
                           ReductionSlice slice, Compute compute = Compute::kFloat);
  // Convenience: a whole matrix, full reduction.
  static PackedMatrix Pack(DType dtype, const void* data, int64_t rows, int64_t cols) {
    return Pack(dtype, data, rows, cols, ReductionSlice::Full(cols));
  }

  DType dtype() const { return dtype_; }
  Compute compute() const { return compute_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return slice_.columns(); }
  const ReductionSlice& slice() const { return slice_; }
  size_t bytes() const { return bytes_; }  // memory held by the pack
  const void* data() const { return data_.get(); }

  // Element W[row][col] widened to f32 (slow; for tests and references; a
  // quantized element is its scale times its integer).
  float At(int64_t row, int64_t col) const;

 private:
  struct FreeDeleter {
    void operator()(void* p) const;
  };
  DType dtype_ = DType::kF32;
  Compute compute_ = Compute::kFloat;
  int64_t rows_ = 0;
  ReductionSlice slice_;
  size_t bytes_ = 0;
  std::unique_ptr<void, FreeDeleter> data_;  // 64-byte aligned
};

// y[m][n] for m in [0, num_tokens), n in [0, w.rows()), with the pack's
// Compute (kBf16: the contract of bf16_matmul.h).
//   x: num_tokens rows of w.cols() floats, row stride ldx (>= w.cols())
//   y: num_tokens rows of w.rows() floats, row stride ldy (>= w.rows())
// The result for each (m, n) depends only on x[m] and W[n]: never on
// num_tokens, other rows of x, the thread count or the isa.
void Matmul(Isa isa, const PackedMatrix& w, const float* x, int64_t num_tokens, int64_t ldx,
            float* y, int64_t ldy, ReductionOrder order = ReductionOrder::kCanonical);

inline void Matmul(Isa isa, const PackedMatrix& w, const float* x, int64_t num_tokens, float* y) {
  Matmul(isa, w, x, num_tokens, w.cols(), y, w.rows());
}

// The naive reference: the canonical order written as plain loops over an
// unpacked row-major W (f32 values). Slow; used by tests.
void MatmulReference(const float* w, int64_t rows, int64_t ld, ReductionSlice slice, const float* x,
                     int64_t num_tokens, int64_t ldx, float* y, int64_t ldy);

// Widens `count` elements of `dtype` to f32 (exact). Used for embedding rows.
// Quantized dtypes: `count` a multiple of 32, src whole blocks.
void ConvertToF32(Isa isa, DType dtype, const void* src, int64_t count, float* dst);

}  // namespace lockstep::kernels
