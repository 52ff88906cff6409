// The per-instruction-set kernel entry points.
//
// Every kernel body is written once, as a template over the 16-lane vector
// types of simd_scalar.h / simd_avx2.h / simd_avx512.h, in the *_impl.h
// headers. Three translation units (kernels_scalar.cc, kernels_avx2.cc,
// kernels_avx512.cc) instantiate them, each compiled with its own -m flags,
// and export one KernelTable. The public functions (matmul.cc, norm.cc, ...)
// own threading (oneTBB) and argument checks, and call through the table of
// the Isa they were given.
//
// This header is included by the per-ISA translation units, so it must not
// contain inline functions or include headers that do (an inline function
// compiled with -mavx512f could be chosen by the linker for baseline code).
// Only plain structs and function pointers here.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lockstep::kernels::internal {

// Element type of packed weights (the first five mirror lockstep::DType's
// values). kBF16Pair: the pack of the bf16 compute (bf16_matmul.h), each
// 32-bit element a pair of bfloat16 weights of consecutive columns, the
// first in bits 31..16; the kernels then take the activations as pairs too.
enum class WeightType : int {
  kF32 = 0,
  kF16 = 1,
  kBF16 = 2,
  kQ8_0 = 3,
  kQ4_0 = 4,
  kBF16Pair = 5
};

// Largest head_dim Attention supports (the per-head accumulators live on the
// stack).
inline constexpr int kMaxHeadDim = 512;
// Depth of the binary-counter stack of segment sums: log2(64) + 1.
inline constexpr int kSegmentStackDepth = 7;

// One matmul y[M][N] = x[M][K] * W[N][K]^T over a packed W (layout in
// matmul.cc: panels of 16 rows, k-major inside a panel, panel p at
// panels + p * cols * 16 elements).
struct MatmulCall {
  const void* panels = nullptr;
  WeightType weight_type = WeightType::kF32;
  int64_t rows = 0;  // N, valid output rows (the last panel may be partial)
  int64_t cols = 0;  // K of this (possibly sharded) matrix
  // num_segments + 1 increasing local column offsets; segment s is
  // [segment_bounds[s], segment_bounds[s+1]). num_segments is a power of two.
  const int64_t* segment_bounds = nullptr;
  int num_segments = 0;
  const float* x = nullptr;  // [M][ldx]
  int64_t ldx = 0;
  // For more than one token, K is walked in chunks: chunk c covers columns
  // [chunk_bounds[c], chunk_bounds[c+1]) (num_chunks + 1 entries, at most
  // chunk_stride columns each; canonical chunks are whole runs of segments).
  // The caller copies the activations, for each chunk c and token block b
  // (T = matmul_block_tokens tokens), interleaved by column:
  //   x[b*T + t][chunk_bounds[c] + kk] at xp[(c * xp_tokens + b*T) * chunk_stride + kk*T + t]
  // with tokens padded with zeros to xp_tokens (a multiple of T). Null for
  // one token. The bf16 compute's FTZ kernels (kernels_avx512_ftz.cc) take
  // each pair widened, twice as many floats: the first halves at
  //   xp[((c * xp_tokens + b*T) * chunk_stride + kk*T) * 2 + t], the second T further.
  const int64_t* chunk_bounds = nullptr;
  int num_chunks = 0;
  // Canonical chunks hold 2^chunk_levels aligned segments, so stack levels
  // below chunk_levels are filled and emptied within one chunk.
  int chunk_levels = 0;
  int64_t chunk_stride = 0;
  const float* xp = nullptr;
  int64_t xp_tokens = 0;
  // T of the layout above: matmul_block_tokens, or for the few-token path
  // (direct) the block size the caller chose (<= matmul_small_block_tokens).
  int block_tokens = 0;
  // The few-token path: blocks read the weights straight from the pack
  // (matmul_impl.h, DirectPanels) instead of through a widened L1 copy.
  bool direct = false;
  float* y = nullptr;  // [M][ldy]
  int64_t ldy = 0;
};

// The quantized pack (quant_matmul.cc): panels of 16 rows; inside a panel the
// blocks go in pairs, each pair one record of whole cache lines:
//   [f16 scales of block 2i, 16 rows][f16 scales of block 2i+1, 16 rows]
//   [quants of block 2i][quants of block 2i+1]
// Quants of a block, as unsigned bytes u = q + offset (offset 128 for q8_0,
// 8 for q4_0):
//   q8_0  512 bytes: group g (elements 4g..4g+3, g < 8) at g * 64, row r's 4
//         bytes at + 4r;
//   q4_0  256 bytes: vector h (h < 4) at h * 64, row r's 4 bytes at + 4r;
//         the low nibbles are group h, the high nibbles group h + 4.
// A panel is panel_bytes long (ceil(blocks / 2) records; an odd last block
// leaves its pair partner zero).
inline constexpr int64_t kQuantPairScaleBytes = 64;
constexpr int64_t QuantBlockQuantBytes(WeightType t) { return t == WeightType::kQ8_0 ? 512 : 256; }
constexpr int64_t QuantPairBytes(WeightType t) {
  return kQuantPairScaleBytes + 2 * QuantBlockQuantBytes(t);
}

// Activations quantized for a quantized matmul (quant_matmul.h has the rule),
// laid out for token blocks of T = block_tokens tokens (tokens past the last
// are zero):
//   q:     the 4 int8 of group g of block b of token t of token block tb at
//          q + (((tb * blocks + b) * 8 + g) * T + t) * 4
//   scale: f32 at scale[(tb * blocks + b) * T + t]
//   bias:  int32 at bias[(tb * blocks + b) * T + t] = -offset * (sum of the
//          block's 32 q), which turns the unsigned-weight dot product into
//          the signed one
struct QuantActivations {
  int8_t* q = nullptr;
  float* scale = nullptr;
  int32_t* bias = nullptr;
  int64_t blocks = 0;
  int block_tokens = 1;
  int32_t offset = 0;
};

// Quantizes tokens [token_begin, token_end) of x ([tokens][ldx] f32, blocks
// * 32 columns) into `a`.
struct QuantizeActivationsCall {
  const float* x = nullptr;
  int64_t ldx = 0;
  int64_t tokens = 0;  // real tokens; rows at or past it are padding (zeros)
  QuantActivations a;
};

// One quantized matmul over a quantized pack.
struct QuantMatmulCall {
  const uint8_t* panels = nullptr;
  WeightType weight_type = WeightType::kQ8_0;
  int64_t rows = 0;    // N, valid output rows
  int64_t blocks = 0;  // K / 32 of this (possibly sharded) matrix
  int64_t panel_bytes = 0;
  // num_segments + 1 increasing local block offsets (segment s is blocks
  // [segment_bounds[s], segment_bounds[s+1])); num_segments a power of two.
  const int64_t* segment_bounds = nullptr;
  int num_segments = 0;
  QuantActivations x;
  int64_t tokens = 0;  // real tokens (the last token block may be partial)
  // Blocks are walked in chunks [chunk_bounds[c], chunk_bounds[c+1]) of
  // 2^chunk_levels whole segments (canonical order), so that every token
  // block of a panel group finds the chunk's weights in cache. Chunk c ends
  // with segment chunk_segments[c+1] - 1 (segments can be empty, so the block
  // bounds alone do not say where a chunk's segments end).
  const int64_t* chunk_bounds = nullptr;
  const int* chunk_segments = nullptr;
  int num_chunks = 0;
  int chunk_levels = 0;
  // With one chunk: how many blocks ahead the weights are prefetched (0: none).
  int64_t prefetch_blocks = 0;
  float* y = nullptr;  // [tokens][ldy]
  int64_t ldy = 0;
};

// One query of Attention (see attention.h).
struct AttentionCall {
  int num_kv_heads = 0;
  int head_dim = 0;
  int num_heads = 0;
  float scale = 0.0f;
  const float* q = nullptr;  // [num_heads][head_dim]
  float* out = nullptr;      // [num_heads][head_dim]
  int32_t position = 0;
  int32_t window_start = 0;  // first key position attended to (<= position)
  const float* const* k_pages = nullptr;
  const float* const* v_pages = nullptr;
};

struct KernelTable {
  // Register blocking used by `matmul` (panels x tokens per block); the
  // public Matmul cuts its parallel work along these.
  int matmul_block_panels;
  int matmul_block_tokens;
  int matmul_decode_panels;
  int matmul_chunk_columns;  // preferred chunk length for prefill
  // The few-token path serves 2..matmul_small_max_tokens tokens, in token
  // blocks of at most matmul_small_block_tokens; a block of T tokens covers
  // matmul_small_panels(T) panels.
  int matmul_small_max_tokens;
  int matmul_small_block_tokens;
  int (*matmul_small_panels)(int block_tokens);

  // Computes y for panels [panel_begin, panel_end) and tokens
  // [token_begin, token_end).
  void (*matmul)(const MatmulCall& call, int64_t panel_begin, int64_t panel_end,
                 int64_t token_begin, int64_t token_end);
  void (*convert_to_f32)(WeightType type, const void* src, int64_t count, float* dst);

  // Quantized matmul (quant_matmul.cc). Panels side by side for one token;
  // token blocks of at most quant_block_tokens, a block of T tokens covering
  // quant_panels(T) panels; blocks per chunk when there are several token
  // blocks.
  int quant_decode_panels;
  int quant_block_tokens;
  int (*quant_panels)(int block_tokens);
  int quant_chunk_blocks;
  // y for panels [panel_begin, panel_end) and token blocks [tblock_begin,
  // tblock_end).
  void (*quant_matmul)(const QuantMatmulCall& call, int64_t panel_begin, int64_t panel_end,
                       int64_t tblock_begin, int64_t tblock_end);
  void (*quantize_activations)(const QuantizeActivationsCall& call, int64_t token_begin,
                               int64_t token_end);

  void (*swiglu)(const float* gate, const float* up, int64_t n, float* out);
  void (*add)(float* y, const float* x, int64_t n);
  void (*softmax)(float* x, int64_t n);
  // One row of RMSNorm: x, y [dim] (may alias), weight [dim].
  void (*rms_norm_row)(const float* x, int64_t dim, const float* weight, float eps, float* y);
  // One token of RoPE: x [num_heads][head_dim] in place; cos/sin [head_dim/2].
  void (*rope_row)(const float* cos, const float* sin, int head_dim, int num_heads, float* x);
  // All query heads that read KV head `kv_head`, for the queries
  // calls[0, num_calls) (same num_heads, num_kv_heads, head_dim and scale).
  void (*attention)(const AttentionCall* calls, int num_calls, int kv_head);

  // Probes (probe.cc): a read-only pass returning a sum so it cannot be
  // elided, a STREAM triad a = b + s*c, and `iterations` steps of
  // independent FMA chains returning a value that depends on all of them.
  float (*read_sum)(const float* a, int64_t n);
  void (*triad)(float* a, const float* b, const float* c, float s, int64_t n);
  float (*fma_chains)(int64_t iterations, float seed);
  int64_t fma_flops_per_iteration;
};

const KernelTable& ScalarKernelTable();
const KernelTable& Avx2KernelTable();
const KernelTable& Avx512KernelTable();

// The quantized matmul of the VNNI builds (kernels_avx512_vnni.cc,
// kernels_avx2_vnni.cc): the AVX-512 / AVX2 tables use them in place of their
// own when the CPU has AVX512-VNNI / AVX-VNNI and LOCKSTEP_VNNI is not 0.
// Same integers, so the same bits; only faster.
struct QuantKernels {
  int decode_panels;
  int block_tokens;
  int (*panels)(int block_tokens);
  int chunk_blocks;
  void (*matmul)(const QuantMatmulCall& call, int64_t panel_begin, int64_t panel_end,
                 int64_t tblock_begin, int64_t tblock_end);
};
const QuantKernels& Avx512VnniQuantKernels();
const QuantKernels& Avx2VnniQuantKernels();

// The matmul of a bf16-compute pack (WeightType::kBF16Pair) built with the
// AVX512_BF16 dot product (kernels_avx512_bf16.cc), for CPUs that have it;
// the same blocking as Avx512KernelTable().matmul and the same bits.
using MatmulRangeFn = void (*)(const MatmulCall& call, int64_t panel_begin, int64_t panel_end,
                               int64_t token_begin, int64_t token_end);
MatmulRangeFn Avx512Bf16DotMatmul();
// The same with the step as two FMAs under the MXCSR flush-to-zero bit
// (kernels_avx512_ftz.cc), for every CPU with AVX-512, and its AVX2 build
// (kernels_avx2_ftz.cc, the blocking of Avx2KernelTable().matmul).
MatmulRangeFn Avx512Bf16FtzMatmul();
MatmulRangeFn Avx2Bf16FtzMatmul();
// The throughput loop of a dot-product peak probe: independent chains of
// one instruction, `flops_per_iteration` (2 per multiply-add) per round.
struct DotPeakKernel {
  float (*chains)(int64_t iterations, float seed);
  int64_t flops_per_iteration;
};
// MeasureBf16DotPeak: vdpbf16ps chains.
DotPeakKernel Avx512Bf16DotPeak();
// MeasureInt8DotPeak: vpdpbusd chains, zmm (AVX512-VNNI) and ymm (AVX-VNNI).
DotPeakKernel Avx512VnniInt8DotPeak();
DotPeakKernel Avx2VnniInt8DotPeak();

// The project's exp on one value (the scalar build of the vector algorithm).
float ScalarExp(float x);

}  // namespace lockstep::kernels::internal
