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

// The kernel bodies. Order matters: elementwise_impl.h defines ExpV, which
// the others use.
// clang-format off
#include "blocking_avx2.h"
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
