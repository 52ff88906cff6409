// Quantized matmul: the pack, the parallel driver, the VNNI choice and the
// naive reference (quant_matmul.h is the contract; quant_matmul_impl.h the
// block kernels; kernel_table.h the pack and activation layouts).
//
// Threads split panels (outputs) and token blocks, never blocks of K: each
// output's chain and tree run start to end in one block kernel.
#include "lockstep/kernels/quant_matmul.h"

#include <cpuid.h>
#include <tbb/blocked_range.h>
#include <tbb/blocked_range2d.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string_view>
#include <vector>

#include "kernel_table_dispatch.h"
#include "lockstep/base/check.h"
#include "lockstep/base/quant_block.h"
#include "quant_matmul_internal.h"

namespace lockstep::kernels {
namespace {

// How many blocks ahead a single pass over the weights (decode, one token
// block) prefetches them into L2 (0: leave it to the hardware prefetchers).
// Measured (matmul_bench --mode decode, RESULTS.md "Issue 17 items 3-4"):
// q4_0 decode went from ~0.85 to ~0.92 of the read probe with 2 blocks (one
// pair, 576 bytes of each panel, ahead), 4 was no better; q8_0 already
// streams at the probe's rate without it, and was 5-10% slower with it.
int64_t QuantPrefetchBlocks(DType dtype) {
  return dtype == DType::kQ4_0 ? 2 : 0;
}

internal::WeightType QuantWeightType(DType dtype) {
  LOCKSTEP_CHECK(DTypeIsQuantized(dtype), "not a quantized dtype: {}", DTypeName(dtype));
  return dtype == DType::kQ8_0 ? internal::WeightType::kQ8_0 : internal::WeightType::kQ4_0;
}

int32_t QuantOffset(DType dtype) {
  return dtype == DType::kQ8_0 ? 128 : 8;
}

std::atomic<bool>& VnniEnabled() {
  static std::atomic<bool> enabled([] {
    const char* env = std::getenv("LOCKSTEP_VNNI");
    return env == nullptr || std::string_view(env) != "0";
  }());
  return enabled;
}

// The quantized kernels of `isa`: the VNNI build where available and enabled.
internal::QuantKernels QuantKernelsFor(Isa isa) {
  const internal::KernelTable& t = internal::KernelsFor(isa);
  if (UsingVnni(isa)) {
    return isa == Isa::kAvx512 ? internal::Avx512VnniQuantKernels()
                               : internal::Avx2VnniQuantKernels();
  }
  return {t.quant_decode_panels, t.quant_block_tokens, t.quant_panels, t.quant_chunk_blocks,
          t.quant_matmul};
}

// 64-byte aligned scratch of n elements (vector loads should not straddle
// cache lines).
template <typename T>
struct AlignedBuffer {
  explicit AlignedBuffer(int64_t n)
      : data(static_cast<T*>(std::aligned_alloc(
            64, std::max<size_t>(64, (static_cast<size_t>(n) * sizeof(T) + 63) / 64 * 64)))) {
    LOCKSTEP_CHECK(data != nullptr, "out of memory ({} activation values)", n);
  }
  ~AlignedBuffer() { std::free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  T* data;
};

// The VNNI bits read from CPUID leaf 7 directly: clang 14 (Debian 12's, the
// sanitizer presets) does not know "avxvnni" in __builtin_cpu_supports. The
// OS support of the vector state is IsaSupported's check.
bool CpuidLeaf7Bit(unsigned subleaf, int reg, unsigned bit) {
  unsigned r[4] = {};
  if (__get_cpuid_count(7, subleaf, &r[0], &r[1], &r[2], &r[3]) == 0) return false;
  return (r[reg] >> bit & 1u) != 0;
}

}  // namespace

bool VnniAvailable(Isa isa) {
  if (!IsaSupported(isa)) return false;
  // Read once: CPUID traps to the hypervisor under a VM, and this runs on
  // every quantized matmul.
  static const bool avx512_vnni = CpuidLeaf7Bit(0, 2, 11);  // ECX bit 11: AVX512_VNNI
  static const bool avx_vnni = CpuidLeaf7Bit(1, 0, 4);      // EAX bit 4: AVX-VNNI
  switch (isa) {
    case Isa::kAvx512:
      return avx512_vnni;
    case Isa::kAvx2:
      return avx_vnni;
    case Isa::kScalar:
      return false;
  }
  return false;
}

void UseVnni(bool enabled) {
  VnniEnabled().store(enabled);
}

bool UsingVnni(Isa isa) {
  return VnniEnabled().load() && VnniAvailable(isa);
}

namespace internal {

int64_t QuantPanelBytes(DType dtype, int64_t cols) {
  const int64_t blocks = cols / kQuantBlockSize;
  return (blocks + 1) / 2 * QuantPairBytes(QuantWeightType(dtype));
}

size_t QuantPackBytes(DType dtype, int64_t rows, int64_t cols) {
  const int64_t panels = (rows + kPanelWidth - 1) / kPanelWidth;
  return static_cast<size_t>(panels * QuantPanelBytes(dtype, cols));
}

void PackQuantPanels(DType dtype, const void* blocks, int64_t rows, int64_t ld, int64_t cols,
                     uint8_t* dst) {
  const WeightType type = QuantWeightType(dtype);
  const int64_t nb = cols / kQuantBlockSize;
  const int64_t block_bytes = DTypeBlockBytes(dtype);
  const int64_t row_bytes = ld / kQuantBlockSize * block_bytes;
  const int64_t panel_bytes = QuantPanelBytes(dtype, cols);
  const int64_t quant_bytes = QuantBlockQuantBytes(type);
  const auto* src = static_cast<const uint8_t*>(blocks);
  const int64_t num_panels = (rows + kPanelWidth - 1) / kPanelWidth;
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, num_panels), [&](const tbb::blocked_range<int64_t>& range) {
        for (int64_t p = range.begin(); p < range.end(); ++p) {
          uint8_t* panel = dst + p * panel_bytes;
          for (int64_t b = 0; b < nb; ++b) {
            uint8_t* record = panel + (b / 2) * QuantPairBytes(type);
            uint8_t* scales = record + (b % 2) * 32;
            uint8_t* quants = record + kQuantPairScaleBytes + (b % 2) * quant_bytes;
            for (int r = 0; r < kPanelWidth; ++r) {
              const int64_t row = p * kPanelWidth + r;
              if (row >= rows) break;  // padding rows stay zero (scale 0)
              const uint8_t* block = src + row * row_bytes + b * block_bytes;
              std::memcpy(scales + 2 * r, block, 2);
              const uint8_t* qs = block + 2;
              if (type == WeightType::kQ8_0) {
                // u = q + 128: flipping the sign bit of the int8.
                for (int j = 0; j < 32; ++j) {
                  quants[(j / 4) * 64 + r * 4 + j % 4] = static_cast<uint8_t>(qs[j] ^ 0x80u);
                }
              } else {
                // GGUF's qs[i] holds element i (low nibble) and i + 16 (high):
                // exactly vector h = i / 4, byte i % 4 (groups h and h + 4).
                for (int i = 0; i < 16; ++i) quants[(i / 4) * 64 + r * 4 + i % 4] = qs[i];
              }
            }
          }
        }
      });
}

float QuantPackedAt(DType dtype, const uint8_t* pack, int64_t cols, int64_t row, int64_t col) {
  const WeightType type = QuantWeightType(dtype);
  const int64_t b = col / kQuantBlockSize, j = col % kQuantBlockSize;
  const int64_t r = row % kPanelWidth;
  const uint8_t* record =
      pack + (row / kPanelWidth) * QuantPanelBytes(dtype, cols) + (b / 2) * QuantPairBytes(type);
  uint16_t d;
  std::memcpy(&d, record + (b % 2) * 32 + 2 * r, 2);
  const uint8_t* quants = record + kQuantPairScaleBytes + (b % 2) * QuantBlockQuantBytes(type);
  int q;
  if (type == WeightType::kQ8_0) {
    q = quants[(j / 4) * 64 + r * 4 + j % 4] - 128;
  } else {
    const int64_t i = j % 16;
    const uint8_t byte = quants[(i / 4) * 64 + r * 4 + i % 4];
    q = (j < 16 ? byte & 15 : byte >> 4) - 8;
  }
  return F16ToF32(d) * static_cast<float>(q);
}

void CheckQuantSlice(const ReductionSlice& s) {
  LOCKSTEP_CHECK(s.k_global % kQuantBlockSize == 0,
                 "quantized reduction of length {} is not whole blocks of {}", s.k_global,
                 kQuantBlockSize);
  const int64_t nb = s.k_global / kQuantBlockSize;
  LOCKSTEP_CHECK(
      s.column_begin() == BlockSegmentStart(nb, s.segment_begin) * kQuantBlockSize &&
          s.column_end() == BlockSegmentStart(nb, s.segment_end) * kQuantBlockSize,
      "quantized slice [{}, {}) of K={} cuts a block: segments [{}, {}) of {} blocks are not "
      "whole blocks",
      s.column_begin(), s.column_end(), s.k_global, s.segment_begin, s.segment_end, nb);
}

void QuantMatmul(Isa isa, const PackedMatrix& w, const float* x, int64_t num_tokens, int64_t ldx,
                 float* y, int64_t ldy, ReductionOrder order) {
  const int64_t rows = w.rows(), cols = w.cols();
  const int64_t nb = cols / kQuantBlockSize;
  const internal::KernelTable& table = internal::KernelsFor(isa);
  const QuantKernels qk = QuantKernelsFor(isa);

  // Local block bounds of the segments this matrix holds.
  std::vector<int64_t> bounds;
  if (order == ReductionOrder::kCanonical) {
    const ReductionSlice& s = w.slice();
    const int64_t nb_global = s.k_global / kQuantBlockSize;
    const int64_t first = BlockSegmentStart(nb_global, s.segment_begin);
    for (int seg = s.segment_begin; seg <= s.segment_end; ++seg) {
      bounds.push_back(BlockSegmentStart(nb_global, seg) - first);
    }
  } else {
    bounds = {0, nb};  // one chain over all blocks
  }
  QuantMatmulCall call;
  call.panels = static_cast<const uint8_t*>(w.data());
  call.weight_type = QuantWeightType(w.dtype());
  call.rows = rows;
  call.blocks = nb;
  call.panel_bytes = QuantPanelBytes(w.dtype(), cols);
  call.segment_bounds = bounds.data();
  call.num_segments = static_cast<int>(bounds.size()) - 1;
  call.tokens = num_tokens;
  call.y = y;
  call.ldy = ldy;

  // Token blocks: one token alone (decode), else balanced blocks of at most
  // the kernel's block size.
  int64_t tb = 1;
  if (num_tokens > 1) {
    const int64_t max_tb = qk.block_tokens;
    const int64_t blocks = (num_tokens + max_tb - 1) / max_tb;
    tb = (num_tokens + blocks - 1) / blocks;
  }
  const int64_t num_tblocks = (num_tokens + tb - 1) / tb;
  const int64_t pb = qk.panels(static_cast<int>(tb));
  const int64_t num_panels = (rows + kPanelWidth - 1) / kPanelWidth;
  const int64_t num_pblocks = (num_panels + pb - 1) / pb;

  // The activations, quantized once per call and shared by every task.
  const int64_t padded = num_tblocks * tb;
  AlignedBuffer<int8_t> xq(padded * nb * kQuantBlockSize);
  AlignedBuffer<float> xs(padded * nb);
  AlignedBuffer<int32_t> xbias(padded * nb);
  QuantizeActivationsCall qcall;
  qcall.x = x;
  qcall.ldx = ldx;
  qcall.tokens = num_tokens;
  qcall.a = {xq.data, xs.data, xbias.data, nb, static_cast<int>(tb), QuantOffset(w.dtype())};
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, padded),
                    [&](const tbb::blocked_range<int64_t>& r) {
                      table.quantize_activations(qcall, r.begin(), r.end());
                    });
  call.x = qcall.a;

  // Chunks of blocks: with one token block, one pass (one chunk); otherwise
  // whole, aligned runs of 2^j segments of about the kernel's chunk size
  // (canonical), or cuts of that size (plain).
  const int64_t target = num_tblocks == 1 ? nb : qk.chunk_blocks;
  std::vector<int64_t> chunk_bounds = {0};
  std::vector<int> chunk_segments = {0};
  if (order == ReductionOrder::kCanonical) {
    const int num_segments = call.num_segments;
    int group = 1;
    while (group < num_segments && 2 * group * nb <= target * num_segments) group *= 2;
    for (int s = group; s <= num_segments; s += group) {
      chunk_bounds.push_back(bounds[s]);
      chunk_segments.push_back(s);
    }
    call.chunk_levels = std::countr_zero(static_cast<unsigned>(group));
  } else {
    for (int64_t k = std::min(target, nb); k < nb; k += target) chunk_bounds.push_back(k);
    chunk_bounds.push_back(nb);
    chunk_segments.resize(chunk_bounds.size(), 1);  // every chunk walks segment 0
  }
  call.chunk_bounds = chunk_bounds.data();
  call.chunk_segments = chunk_segments.data();
  call.num_chunks = static_cast<int>(chunk_bounds.size()) - 1;
  call.prefetch_blocks = QuantPrefetchBlocks(w.dtype());

  if (num_tblocks == 1) {
    // Split panel groups only: each weight comes from memory once.
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, num_pblocks),
                      [&](const tbb::blocked_range<int64_t>& r) {
                        qk.matmul(call, r.begin() * pb, std::min(num_panels, r.end() * pb), 0, 1);
                      });
    return;
  }
  // Several token blocks: panel groups x token-block ranges, the token blocks
  // split only when there are too few panel groups to keep every thread busy.
  const int64_t wanted = 4 * tbb::this_task_arena::max_concurrency();
  const int64_t token_parts = num_pblocks >= wanted ? 1 : (wanted + num_pblocks - 1) / num_pblocks;
  const int64_t tgrain = std::max<int64_t>(1, (num_tblocks + token_parts - 1) / token_parts);
  tbb::parallel_for(tbb::blocked_range2d<int64_t>(0, num_pblocks, 1, 0, num_tblocks, tgrain),
                    [&](const tbb::blocked_range2d<int64_t>& r) {
                      qk.matmul(call, r.rows().begin() * pb,
                                std::min(num_panels, r.rows().end() * pb), r.cols().begin(),
                                r.cols().end());
                    });
}

}  // namespace internal

void QuantizeActivationsReference(const float* x, int64_t n, int8_t* q, float* scale) {
  LOCKSTEP_CHECK(n % kQuantBlockSize == 0, "{} values are not whole blocks", n);
  for (int64_t b = 0; b < n / kQuantBlockSize; ++b) {
    const float* xb = x + b * kQuantBlockSize;
    float amax = 0.0f;
    bool finite = true;
    for (int j = 0; j < kQuantBlockSize; ++j) {
      finite = finite && std::isfinite(xb[j]);
      amax = std::max(amax, std::fabs(xb[j]));
    }
    if (!finite || amax == 0.0f) {
      for (int j = 0; j < kQuantBlockSize; ++j) q[b * kQuantBlockSize + j] = 0;
      scale[b] = finite ? 0.0f : std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    scale[b] = amax / 127.0f;
    const float s = 127.0f / amax;
    for (int j = 0; j < kQuantBlockSize; ++j) {
      // std::nearbyint rounds to nearest even in the default rounding mode.
      q[b * kQuantBlockSize + j] = static_cast<int8_t>(std::nearbyint(xb[j] * s));
    }
  }
}

void QuantMatmulReference(DType dtype, const void* blocks, int64_t rows, int64_t ld,
                          ReductionSlice slice, const float* x, int64_t num_tokens, int64_t ldx,
                          float* y, int64_t ldy) {
  internal::CheckQuantSlice(slice);
  const int64_t cols = slice.columns();
  const int64_t nb = cols / kQuantBlockSize;
  const int64_t nb_global = slice.k_global / kQuantBlockSize;
  const int64_t first = BlockSegmentStart(nb_global, slice.segment_begin);
  const int64_t row_blocks = ld / kQuantBlockSize;
  const int num_segments = slice.segment_end - slice.segment_begin;
  std::vector<int8_t> q(static_cast<size_t>(cols));
  std::vector<float> scale(static_cast<size_t>(nb));
  std::vector<float> sums(static_cast<size_t>(num_segments));
  for (int64_t m = 0; m < num_tokens; ++m) {
    QuantizeActivationsReference(x + m * ldx, cols, q.data(), scale.data());
    for (int64_t n = 0; n < rows; ++n) {
      for (int s = 0; s < num_segments; ++s) {
        const int64_t b0 = BlockSegmentStart(nb_global, slice.segment_begin + s) - first;
        const int64_t b1 = BlockSegmentStart(nb_global, slice.segment_begin + s + 1) - first;
        float acc = 0.0f;
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t index = n * row_blocks + b;
          int32_t dot = 0;
          for (int j = 0; j < kQuantBlockSize; ++j) {
            dot += QuantBlockValue(dtype, blocks, index, j) * q[b * kQuantBlockSize + j];
          }
          const float d = F16ToF32(QuantBlockScaleBits(dtype, blocks, index));
          acc = std::fma(static_cast<float>(dot), d * scale[b], acc);
        }
        sums[s] = acc;
      }
      for (int width = num_segments; width > 1; width /= 2) {
        for (int i = 0; i < width / 2; ++i) sums[i] = sums[2 * i] + sums[2 * i + 1];
      }
      y[m * ldy + n] = sums[0];
    }
  }
}

}  // namespace lockstep::kernels
