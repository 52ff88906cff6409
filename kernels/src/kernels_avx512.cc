// The AVX-512 build of every kernel (compiled with LOCKSTEP_AVX512_FLAGS).
// The kernel bodies are the *_impl.h templates shared with the other builds.
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <vector>

#include "kernel_table.h"
#include "simd_avx512.h"

namespace lockstep::kernels::avx512 {
// Register blocking (32 zmm registers): prefill blocks of 4 panels x 6 tokens
// = 24 accumulators + 4 weight vectors; decode runs 8 panels side by side.
inline constexpr int kMatmulBlockPanels = 4;
inline constexpr int kMatmulBlockTokens = 6;
inline constexpr int kMatmulDecodePanels = 8;
inline constexpr int kFmaPeakChains = 12;  // 2 FMA ports x 4 cycles latency, with slack
// Few tokens (2..32, matmul_impl.h DirectPanels): balanced token blocks of at
// most 8, each block as many panels side by side as 28 registers hold with
// their weight vectors, at most 4 (8 tokens: 3 panels = 24 accumulators).
// Measured (matmul_bench, RESULTS.md): blocks of up to 12 tokens ran the same,
// of 6 slower; one block of 16 tokens x 1 panel ran at ~50% of the FMA peak
// from L2 against ~60% for 8 x 3.
inline constexpr int kMatmulSmallMaxTokens = 32;
inline constexpr int kMatmulSmallBlockTokens = 8;
inline constexpr int kMatmulSmallRegisters = 28;
inline constexpr int kMatmulSmallMaxPanels = 4;
// Quantized matmul (quant_matmul_impl.h): decode runs 8 panels side by side
// (8 integer + 8 float accumulators); token blocks of up to 6 tokens with as
// many panels as 26 registers hold (P * T integer and float accumulators + P
// weight vectors: 2 panels at 6 tokens); chunks of 16 blocks (2 panels x 16
// q8_0 blocks = 17 KiB stay in L1).
inline constexpr int kQuantDecodePanels = 8;
inline constexpr int kQuantBlockTokens = 6;
inline constexpr int kQuantRegisters = 26;
inline constexpr int kQuantMaxPanels = 4;
inline constexpr int kQuantChunkBlocks = 16;
// Attention (attention_impl.h), 4 (query, head) pairs at a time: scores in
// one pass of 4 position vectors (16 accumulators + 4 key vectors), o_c in
// passes of 4 dimension vectors (16 accumulators + 4 value vectors).
inline constexpr int kAttnPosVecsPerPass = 4;
inline constexpr int kAttnValueVecs = 4;
}  // namespace lockstep::kernels::avx512

// The kernel bodies. Order matters: elementwise_impl.h defines ExpV, which
// the others use.
// clang-format off
#include "elementwise_impl.h"
#include "attention_impl.h"
#include "segment_chain_impl.h"
#include "matmul_impl.h"
#include "quant_matmul_impl.h"
#include "probe_impl.h"
// clang-format on

namespace lockstep::kernels::internal {

const KernelTable& Avx512KernelTable() {
  namespace k = avx512;
  static const KernelTable table = {
      k::kMatmulBlockPanels,
      k::kMatmulBlockTokens,
      k::kMatmulDecodePanels,
      static_cast<int>(k::kChunkColumns),
      k::kMatmulSmallMaxTokens,
      k::kMatmulSmallBlockTokens,
      k::MatmulSmallPanels,
      k::MatmulRange,
      k::ConvertToF32,
      k::kQuantDecodePanels,
      k::kQuantBlockTokens,
      k::QuantPanelsFor,
      k::kQuantChunkBlocks,
      k::QuantMatmulRange,
      k::QuantizeActivationsRange,
      k::SwiGlu,
      k::Add,
      k::Softmax,
      k::RmsNormRow,
      k::RopeRow,
      k::AttentionQueries,
      k::ReadSum,
      k::Triad,
      k::FmaChains,
      2 * 16 * k::kFmaPeakChains,
  };
  return table;
}

}  // namespace lockstep::kernels::internal
