// The portable build of every kernel (baseline x86-64 flags, std::fma).
// The kernel bodies are the *_impl.h templates shared with the other builds.
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <vector>

#include "kernel_table.h"
#include "simd_scalar.h"

namespace lockstep::kernels::scalar {
// No registers to block for: one panel x one token at a time.
inline constexpr int kMatmulBlockPanels = 1;
inline constexpr int kMatmulBlockTokens = 1;
inline constexpr int kMatmulDecodePanels = 1;
inline constexpr int kFmaPeakChains = 4;
// Few tokens: the same path as the vector builds (blocks of up to 4 tokens),
// so it is tested against them.
inline constexpr int kMatmulSmallMaxTokens = 32;
inline constexpr int kMatmulSmallBlockTokens = 4;
inline constexpr int kMatmulSmallRegisters = 7;
inline constexpr int kMatmulSmallMaxPanels = 2;
// Quantized matmul: one panel; token blocks of up to 2 tokens, so the
// multi-token path is the one the vector builds run (and tested against them).
inline constexpr int kQuantDecodePanels = 1;
inline constexpr int kQuantBlockTokens = 2;
inline constexpr int kQuantRegisters = 5;
inline constexpr int kQuantMaxPanels = 1;
inline constexpr int kQuantChunkBlocks = 8;
// Attention (attention_impl.h): one vector at a time.
inline constexpr int kAttnPosVecsPerPass = 1;
inline constexpr int kAttnValueVecs = 1;
}  // namespace lockstep::kernels::scalar

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

const KernelTable& ScalarKernelTable() {
  namespace k = scalar;
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

float ScalarExp(float x) {
  return scalar::ExpScalar(x);
}

}  // namespace lockstep::kernels::internal
