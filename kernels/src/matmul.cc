// Matmul: weight packing, the parallel driver and the naive reference.
//
// Pack layout (the same for every Isa). W has `rows` output rows and `cols`
// reduction columns. Rows are grouped in panels of kPanelWidth = 16; the last
// panel is padded with zero rows. Inside a panel the layout is k-major:
//
//   pack[p][k][r] = W[16p + r][k]      p < ceil(rows/16), k < cols, r < 16
//
// so the 16 weights of one column of a panel are contiguous (64 bytes in f32,
// 32 in f16/bf16) and one vector load feeds 16 outputs at one k. Panel p
// starts at element p * cols * 16; the buffer is 64-byte aligned, so every
// f32 row of a panel is one cache line.
//
// Threads split panels (outputs) and token blocks, never k: each output's
// reduction runs start to end in one block kernel (matmul_impl.h).
#include "lockstep/kernels/matmul.h"

#include <tbb/blocked_range.h>
#include <tbb/blocked_range2d.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernel_table_dispatch.h"
#include "lockstep/base/check.h"
#include "lockstep/base/quant_block.h"
#include "bf16_matmul_internal.h"
#include "lockstep/kernels/bf16_matmul.h"
#include "quant_matmul_internal.h"

namespace lockstep::kernels {
namespace {

bool ValidSlice(const ReductionSlice& s) {
  const int count = s.segment_end - s.segment_begin;
  return s.k_global >= 0 && s.segment_begin >= 0 && s.segment_end <= kNumSegments && count > 0 &&
         std::has_single_bit(static_cast<unsigned>(count)) && s.segment_begin % count == 0;
}

internal::WeightType ToWeightType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return internal::WeightType::kF32;
    case DType::kF16:
      return internal::WeightType::kF16;
    case DType::kBF16:
      return internal::WeightType::kBF16;
    case DType::kQ8_0:
      return internal::WeightType::kQ8_0;
    case DType::kQ4_0:
      return internal::WeightType::kQ4_0;
  }
  LOCKSTEP_CHECK(false, "unknown dtype {}", static_cast<int>(dtype));
  return internal::WeightType::kF32;
}

// Copies W[rows][cols] (row-major, leading dimension ld) into the panel
// layout. Works on 16 rows x 64 columns at a time so both sides stay in cache.
template <typename T>
void PackPanels(const T* src, int64_t rows, int64_t ld, int64_t cols, T* dst) {
  const int64_t num_panels = (rows + kPanelWidth - 1) / kPanelWidth;
  constexpr int64_t kBlock = 64;
  for (int64_t p = 0; p < num_panels; ++p) {
    T* panel = dst + p * cols * kPanelWidth;
    for (int64_t k0 = 0; k0 < cols; k0 += kBlock) {
      const int64_t k1 = std::min(cols, k0 + kBlock);
      for (int r = 0; r < kPanelWidth; ++r) {
        const int64_t row = p * kPanelWidth + r;
        if (row >= rows) break;  // padding rows stay zero
        const T* s = src + row * ld;
        for (int64_t k = k0; k < k1; ++k) panel[k * kPanelWidth + r] = s[k];
      }
    }
  }
}

}  // namespace

std::string_view ComputeName(Compute compute) {
  return compute == Compute::kBf16 ? "bf16" : "float";
}

Result<Compute> ParseCompute(std::string_view name) {
  if (name == "float") return Compute::kFloat;
  if (name == "bf16") return Compute::kBf16;
  return InvalidArgument("unknown compute mode '{}' (expected float or bf16)", name);
}

ReductionSlice ReductionSlice::Shard(int64_t k, int rank, int parts) {
  LOCKSTEP_CHECK(parts > 0 && parts <= kNumSegments && kNumSegments % parts == 0 &&
                     std::has_single_bit(static_cast<unsigned>(parts)),
                 "shard count {} must be a power of two dividing {}", parts, kNumSegments);
  LOCKSTEP_CHECK(rank >= 0 && rank < parts, "shard rank {} out of [0, {})", rank, parts);
  const int per = kNumSegments / parts;
  return {k, rank * per, (rank + 1) * per};
}

void PackedMatrix::FreeDeleter::operator()(void* p) const {
  std::free(p);
}

namespace {

// A zeroed, 64-byte aligned buffer of `bytes` (rounded up to 64) for a pack
// of rows x cols. (Transparent huge pages for large packs were measured and
// left out: bf16 decode matmuls ran 1.2x slower on them, benchmarks/RESULTS.md
// "bf16 compute at the FMA rate".)
void* AllocatePack(size_t bytes, int64_t rows, int64_t cols) {
  const size_t alloc = std::max<size_t>(64, (bytes + 63) / 64 * 64);
  void* buffer = std::aligned_alloc(64, alloc);
  LOCKSTEP_CHECK(buffer != nullptr, "out of memory packing a {} x {} matrix ({} bytes)", rows, cols,
                 alloc);
  std::memset(buffer, 0, alloc);
  return buffer;
}

}  // namespace

PackedMatrix PackedMatrix::Pack(DType dtype, const void* data, int64_t rows, int64_t ld,
                                ReductionSlice slice, Compute compute) {
  LOCKSTEP_CHECK(ValidSlice(slice), "invalid reduction slice [{}, {}) of K={}", slice.segment_begin,
                 slice.segment_end, slice.k_global);
  const int64_t cols = slice.columns();
  LOCKSTEP_CHECK(rows >= 0 && ld >= cols, "bad matrix shape {} x {} (ld {})", rows, cols, ld);
  LOCKSTEP_CHECK(data != nullptr || rows == 0 || cols == 0, "null weight data");
  PackedMatrix m;
  m.dtype_ = dtype;
  m.rows_ = rows;
  m.slice_ = slice;
  m.compute_ = compute;
  if (compute == Compute::kBf16) {
    LOCKSTEP_CHECK(dtype == DType::kBF16, "the bf16 compute needs bf16 weights, got {}",
                   DTypeName(dtype));
    const int64_t num_pairs = internal::Bf16PairBounds(slice).back();
    const int64_t num_panels = (rows + kPanelWidth - 1) / kPanelWidth;
    m.bytes_ = static_cast<size_t>(num_panels * num_pairs * kPanelWidth) * sizeof(uint32_t);
    void* buffer = AllocatePack(m.bytes_, rows, cols);
    m.data_.reset(buffer);
    internal::PackBf16Pairs(static_cast<const uint16_t*>(data), rows, ld, slice,
                            static_cast<uint32_t*>(buffer));
    return m;
  }
  if (DTypeIsQuantized(dtype)) {
    internal::CheckQuantSlice(slice);
    LOCKSTEP_CHECK(ld % kQuantBlockSize == 0, "quantized rows of {} elements", ld);
    const int64_t row_blocks = ld / kQuantBlockSize;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t bad = FirstNonFiniteScale(
          dtype, static_cast<const uint8_t*>(data) + r * row_blocks * DTypeBlockBytes(dtype),
          cols / kQuantBlockSize);
      LOCKSTEP_CHECK(bad < 0, "non-finite scale in block {} of row {}", bad, r);
    }
    m.bytes_ = internal::QuantPackBytes(dtype, rows, cols);
    void* buffer = AllocatePack(m.bytes_, rows, cols);
    m.data_.reset(buffer);
    internal::PackQuantPanels(dtype, data, rows, ld, cols, static_cast<uint8_t*>(buffer));
    return m;
  }
  const int64_t num_panels = (rows + kPanelWidth - 1) / kPanelWidth;
  const size_t elem_size = DTypeSize(dtype);
  m.bytes_ = static_cast<size_t>(num_panels * cols * kPanelWidth) * elem_size;
  void* buffer = AllocatePack(m.bytes_, rows, cols);
  m.data_.reset(buffer);
  if (elem_size == 4) {
    PackPanels(static_cast<const float*>(data), rows, ld, cols, static_cast<float*>(buffer));
  } else {
    PackPanels(static_cast<const uint16_t*>(data), rows, ld, cols, static_cast<uint16_t*>(buffer));
  }
  return m;
}

float PackedMatrix::At(int64_t row, int64_t col) const {
  LOCKSTEP_CHECK(row >= 0 && row < rows_ && col >= 0 && col < cols(), "At({}, {}) out of range",
                 row, col);
  if (compute_ == Compute::kBf16) {
    return internal::Bf16PairPackedAt(static_cast<const uint32_t*>(data()), slice_, row, col);
  }
  if (DTypeIsQuantized(dtype_)) {
    return internal::QuantPackedAt(dtype_, static_cast<const uint8_t*>(data()), cols(), row, col);
  }
  const int64_t index = ((row / kPanelWidth) * cols() + col) * kPanelWidth + row % kPanelWidth;
  switch (dtype_) {
    case DType::kF32:
      return static_cast<const float*>(data())[index];
    case DType::kF16:
      return F16ToF32(static_cast<const uint16_t*>(data())[index]);
    case DType::kBF16:
      return Bf16ToF32(static_cast<const uint16_t*>(data())[index]);
    case DType::kQ8_0:
    case DType::kQ4_0:
      break;
  }
  return 0.0f;
}

namespace {

// Matmul with the bf16 compute's step given (Bf16StepFor(isa) or a step the
// CPU has).
void MatmulWithStep(Isa isa, const PackedMatrix& w, const float* x, int64_t num_tokens,
                    int64_t ldx, float* y, int64_t ldy, ReductionOrder order, Bf16Step step) {
  const int64_t rows = w.rows();
  int64_t cols = w.cols();
  LOCKSTEP_CHECK(num_tokens >= 0 && ldx >= cols && ldy >= rows,
                 "Matmul: bad shapes (tokens {}, ldx {} < K {} or ldy {} < N {})", num_tokens, ldx,
                 cols, ldy, rows);
  if (num_tokens == 0 || rows == 0) return;
  if (DTypeIsQuantized(w.dtype())) {
    internal::QuantMatmul(isa, w, x, num_tokens, ldx, y, ldy, order);
    return;
  }
  const internal::KernelTable& table = internal::KernelsFor(isa);
  internal::MatmulRangeFn matmul = table.matmul;

  // Local column bounds of the segments this matrix holds.
  std::vector<int64_t> bounds;
  internal::MatmulCall call;
  call.weight_type = ToWeightType(w.dtype());
  std::unique_ptr<float[]> pairs;
  if (w.compute() == Compute::kBf16) {
    // The bf16 compute (bf16_matmul.h): the kernels run on pairs of columns,
    // activations rounded to bf16 pairs first, in the pack's pair layout.
    const internal::Bf16PairLayout layout = internal::Bf16Pairs(w.slice());
    bounds = layout.pairs;
    const int64_t num_pairs = layout.num_pairs();
    pairs.reset(new float[static_cast<size_t>(std::max<int64_t>(1, num_tokens * num_pairs))]);
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, num_tokens),
                      [&](const tbb::blocked_range<int64_t>& r) {
                        for (int64_t m = r.begin(); m < r.end(); ++m) {
                          internal::RoundToBf16Pairs(x + m * ldx, layout,
                                                     pairs.get() + m * num_pairs);
                        }
                      });
    if (order != ReductionOrder::kCanonical) bounds = {0, num_pairs};
    call.weight_type = internal::WeightType::kBF16Pair;
    x = pairs.get();
    ldx = cols = num_pairs;
    if (step == Bf16Step::kInstruction) matmul = internal::Avx512Bf16DotMatmul();
    if (step == Bf16Step::kFlushToZero) {
      matmul =
          isa == Isa::kAvx512 ? internal::Avx512Bf16FtzMatmul() : internal::Avx2Bf16FtzMatmul();
    }
  } else if (order == ReductionOrder::kCanonical) {
    const ReductionSlice& s = w.slice();
    for (int seg = s.segment_begin; seg <= s.segment_end; ++seg) {
      bounds.push_back(SegmentStart(s.k_global, seg) - s.column_begin());
    }
  } else {
    bounds = {0, cols};  // one chain over all of K
  }
  call.panels = w.data();
  call.rows = rows;
  call.cols = cols;
  call.segment_bounds = bounds.data();
  call.num_segments = static_cast<int>(bounds.size()) - 1;
  call.x = x;
  call.ldx = ldx;
  call.y = y;
  call.ldy = ldy;

  const int64_t num_panels = (rows + kPanelWidth - 1) / kPanelWidth;
  if (num_tokens == 1) {
    call.xp = nullptr;
    // Decode: split panels in groups of the kernel's decode width.
    const int64_t group = table.matmul_decode_panels;
    const int64_t num_groups = (num_panels + group - 1) / group;
    tbb::parallel_for(
        tbb::blocked_range<int64_t>(0, num_groups), [&](const tbb::blocked_range<int64_t>& r) {
          matmul(call, r.begin() * group, std::min(num_panels, r.end() * group), 0, 1);
        });
    return;
  }
  // More than one token. Few tokens (up to the kernel's small-token limit)
  // take the direct path (matmul_impl.h, DirectPanels): token blocks of at
  // most matmul_small_block_tokens, balanced, so that every block shares each
  // weight load among as many tokens as the registers allow. Otherwise the
  // prefill path with the kernel's register blocking.
  const bool direct = num_tokens <= table.matmul_small_max_tokens;
  int64_t pb = table.matmul_block_panels, tb = table.matmul_block_tokens;
  if (direct) {
    const int64_t blocks =
        (num_tokens + table.matmul_small_block_tokens - 1) / table.matmul_small_block_tokens;
    tb = (num_tokens + blocks - 1) / blocks;
    pb = table.matmul_small_panels(static_cast<int>(tb));
  }
  const int64_t num_pblocks = (num_panels + pb - 1) / pb;
  const int64_t num_tblocks = (num_tokens + tb - 1) / tb;

  // Chunks of K for the prefill walk (kernel_table.h). Canonical order:
  // whole, aligned runs of 2^j segments of about the kernel's preferred
  // length, so no chunk edge falls inside a segment (the kernel then never
  // has to carry a half-done FMA chain across chunks). Plain order: cuts of
  // the preferred length. The direct path with one token block walks K in
  // one chunk (one pass over each weight, nothing to share between chunks).
  const int64_t target = direct && num_tblocks == 1 ? cols : table.matmul_chunk_columns;
  std::vector<int64_t> chunk_bounds = {0};
  if (order == ReductionOrder::kCanonical) {
    const int num_segments = call.num_segments;
    int group = 1;
    while (group < num_segments && 2 * group * cols <= target * num_segments) group *= 2;
    for (int s = group; s <= num_segments; s += group) chunk_bounds.push_back(bounds[s]);
    call.chunk_levels = std::countr_zero(static_cast<unsigned>(group));
  } else {
    for (int64_t k = std::min(target, cols); k < cols; k += target) chunk_bounds.push_back(k);
    chunk_bounds.push_back(cols);
  }
  int64_t chunk_stride = 1;
  for (size_t c = 0; c + 1 < chunk_bounds.size(); ++c) {
    chunk_stride = std::max(chunk_stride, chunk_bounds[c + 1] - chunk_bounds[c]);
  }
  const int64_t num_chunks = static_cast<int64_t>(chunk_bounds.size()) - 1;
  call.chunk_bounds = chunk_bounds.data();
  call.num_chunks = static_cast<int>(num_chunks);
  call.chunk_stride = chunk_stride;

  // The activations in the kernels' order (kernel_table.h), copied once here
  // and shared by every task: for each chunk, token block after token block,
  // each block's columns interleaved [kk][t] so that the kernel reads all its
  // operands at fixed offsets from two pointers.
  const int64_t xp_tokens = num_tblocks * tb;
  // The FTZ kernels of the bf16 compute take the pairs widened, two f32 per
  // token and column: first halves of a block's columns kk at [2 kk][t],
  // second halves at [2 kk + 1][t] (matmul_impl.h, kWidePairScratch).
  const bool wide = w.compute() == Compute::kBf16 && step == Bf16Step::kFlushToZero;
  const int64_t halves = wide ? 2 : 1;
  // Not value-initialised: every element read is written below.
  const std::unique_ptr<float[]> xp(new float[static_cast<size_t>(
      std::max<int64_t>(1, num_chunks * xp_tokens * chunk_stride * halves))]);
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, num_tblocks),
                    [&](const tbb::blocked_range<int64_t>& r) {
                      for (int64_t c = 0; c < num_chunks; ++c) {
                        const int64_t k0 = chunk_bounds[c], n = chunk_bounds[c + 1] - k0;
                        for (int64_t b = r.begin(); b < r.end(); ++b) {
                          float* block =
                              xp.get() + (c * xp_tokens + b * tb) * chunk_stride * halves;
                          for (int64_t t = 0; t < tb; ++t) {
                            const int64_t token = b * tb + t;
                            const float* src = x + token * ldx + k0;
                            for (int64_t kk = 0; kk < n; ++kk) {
                              const float v = token < num_tokens ? src[kk] : 0.0f;
                              if (wide) {
                                const uint32_t pair = std::bit_cast<uint32_t>(v);
                                block[(2 * kk) * tb + t] = std::bit_cast<float>(pair & 0xffff0000u);
                                block[(2 * kk + 1) * tb + t] = std::bit_cast<float>(pair << 16);
                              } else {
                                block[kk * tb + t] = v;
                              }
                            }
                          }
                        }
                      }
                    });
  call.xp = xp.get();
  call.xp_tokens = xp_tokens;
  call.block_tokens = static_cast<int>(tb);
  call.direct = direct;

  if (direct) {
    // Split panel groups only: all tokens of a panel group in one task, so
    // each weight comes from memory once.
    tbb::parallel_for(
        tbb::blocked_range<int64_t>(0, num_pblocks), [&](const tbb::blocked_range<int64_t>& r) {
          matmul(call, r.begin() * pb, std::min(num_panels, r.end() * pb), 0, num_tokens);
        });
    return;
  }
  // Prefill: split panel blocks x token blocks of the kernel's register
  // blocking, so no task ends in a partial block except at the matrix edge.
  // Token blocks are split only when there are too few panel blocks to keep
  // every thread busy: each task reuses its tokens' activations for all its
  // panels.
  const int64_t wanted = 4 * tbb::this_task_arena::max_concurrency();
  const int64_t token_parts = num_pblocks >= wanted ? 1 : (wanted + num_pblocks - 1) / num_pblocks;
  const int64_t tgrain = std::max<int64_t>(1, (num_tblocks + token_parts - 1) / token_parts);
  tbb::parallel_for(tbb::blocked_range2d<int64_t>(0, num_pblocks, 1, 0, num_tblocks, tgrain),
                    [&](const tbb::blocked_range2d<int64_t>& r) {
                      matmul(call, r.rows().begin() * pb,
                                   std::min(num_panels, r.rows().end() * pb), r.cols().begin() * tb,
                                   std::min(num_tokens, r.cols().end() * tb));
                    });
}

}  // namespace

void Matmul(Isa isa, const PackedMatrix& w, const float* x, int64_t num_tokens, int64_t ldx,
            float* y, int64_t ldy, ReductionOrder order) {
  const Bf16Step step = w.compute() == Compute::kBf16 ? Bf16StepFor(isa) : Bf16Step::kChecked;
  MatmulWithStep(isa, w, x, num_tokens, ldx, y, ldy, order, step);
}

namespace internal {

Bf16Step MeasureFasterBf16Step() {
  constexpr int64_t kRows = 256, kCols = 1024, kTokens = 48;
  std::vector<uint16_t> wb(static_cast<size_t>(kRows * kCols));
  std::vector<float> x(static_cast<size_t>(kTokens * kCols)), y(static_cast<size_t>(kTokens * kRows));
  uint32_t state = 12345;  // values near 1 (a few bits of an LCG): no flushes, no overflow
  for (uint16_t& v : wb) {
    state = state * 1664525u + 1013904223u;
    v = static_cast<uint16_t>(0x3f80u | (state >> 25));
  }
  for (float& v : x) {
    state = state * 1664525u + 1013904223u;
    v = 1.0f + static_cast<float>(state >> 9) * 0x1p-23f;
  }
  const PackedMatrix w = PackedMatrix::Pack(DType::kBF16, wb.data(), kRows, kCols,
                                            ReductionSlice::Full(kCols), Compute::kBf16);
  const Bf16Step steps[2] = {Bf16Step::kInstruction, Bf16Step::kFlushToZero};
  double best[2] = {1e30, 1e30};
  tbb::task_arena one_thread(1);
  one_thread.execute([&] {
    for (int round = 0; round < 5; ++round) {
      for (int i = 0; i < 2; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        MatmulWithStep(Isa::kAvx512, w, x.data(), kTokens, kCols, y.data(), kRows,
                       ReductionOrder::kCanonical, steps[i]);
        const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
        best[i] = std::min(best[i], dt.count());
      }
    }
  });
  return best[1] < best[0] ? steps[1] : steps[0];
}

}  // namespace internal

void MatmulReference(const float* w, int64_t rows, int64_t ld, ReductionSlice slice, const float* x,
                     int64_t num_tokens, int64_t ldx, float* y, int64_t ldy) {
  LOCKSTEP_CHECK(ValidSlice(slice), "invalid reduction slice");
  const int num_segments = slice.segment_end - slice.segment_begin;
  std::vector<float> sums(num_segments);
  for (int64_t m = 0; m < num_tokens; ++m) {
    for (int64_t n = 0; n < rows; ++n) {
      // Each segment: one FMA chain in increasing k from +0.
      for (int s = 0; s < num_segments; ++s) {
        const int64_t k0 =
            SegmentStart(slice.k_global, slice.segment_begin + s) - slice.column_begin();
        const int64_t k1 =
            SegmentStart(slice.k_global, slice.segment_begin + s + 1) - slice.column_begin();
        float acc = 0.0f;
        for (int64_t k = k0; k < k1; ++k) acc = std::fma(w[n * ld + k], x[m * ldx + k], acc);
        sums[s] = acc;
      }
      // Balanced binary tree in index order.
      for (int width = num_segments; width > 1; width /= 2) {
        for (int i = 0; i < width / 2; ++i) sums[i] = sums[2 * i] + sums[2 * i + 1];
      }
      y[m * ldy + n] = sums[0];
    }
  }
}

void ConvertToF32(Isa isa, DType dtype, const void* src, int64_t count, float* dst) {
  LOCKSTEP_CHECK(count >= 0, "negative count");
  if (count == 0) return;
  if (DTypeIsQuantized(dtype)) {
    DequantizeRow(dtype, src, count, dst);  // exact; the same on every Isa
    return;
  }
  internal::KernelsFor(isa).convert_to_f32(ToWeightType(dtype), src, count, dst);
}

}  // namespace lockstep::kernels
