// The AVX2 + FMA + F16C build of every kernel (compiled with LOCKSTEP_AVX2_FLAGS).
// The kernel bodies are the *_impl.h templates shared with the other builds.
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <vector>

#include "kernel_table.h"
#include "simd_avx2.h"

namespace lockstep::kernels::avx2 {
// Register blocking (16 ymm registers, a VecF takes two): prefill blocks of
// 1 panel x 6 tokens = 12 accumulator registers + 2 for the weights; decode
// runs 4 panels side by side.
inline constexpr int kMatmulBlockPanels = 1;
inline constexpr int kMatmulBlockTokens = 6;
inline constexpr int kMatmulDecodePanels = 4;
inline constexpr int kFmaPeakChains = 6;  // 12 ymm chains: 2 FMA ports x 4 cycles, with slack
// Few tokens (2..32): blocks of up to 6 tokens (as prefill), one panel
// (2 with 2 tokens) within a 7-VecF register budget.
inline constexpr int kMatmulSmallMaxTokens = 32;
inline constexpr int kMatmulSmallBlockTokens = 6;
inline constexpr int kMatmulSmallRegisters = 7;
inline constexpr int kMatmulSmallMaxPanels = 2;
// Quantized matmul: 2 panels side by side for decode, token blocks of up to
// 3 tokens x 1 panel (16 ymm registers, a Vec takes two), chunks of 16 blocks.
inline constexpr int kQuantDecodePanels = 2;
inline constexpr int kQuantBlockTokens = 3;
inline constexpr int kQuantRegisters = 7;
inline constexpr int kQuantMaxPanels = 2;
inline constexpr int kQuantChunkBlocks = 16;
// Attention (attention_impl.h), 4 (query, head) pairs at a time, one VecF
// (two ymm) per pair: 8 accumulators, enough chains for 2 FMA ports, and no
// spills out of the 16 ymm registers.
inline constexpr int kAttnPosVecsPerPass = 1;
inline constexpr int kAttnValueVecs = 1;
}  // namespace lockstep::kernels::avx2

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

const KernelTable& Avx2KernelTable() {
  namespace k = avx2;
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
