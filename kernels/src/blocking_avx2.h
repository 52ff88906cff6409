// The register blocking and loop sizes of the AVX2 builds, shared by every
// translation unit that compiles kernel bodies for them (kernels_avx2.cc and its
// variants with other instructions), inside the including build's namespace.
// Included after simd_avx2.h.
#pragma once

namespace lockstep::kernels::LOCKSTEP_SIMD_NS {
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
}  // namespace lockstep::kernels::LOCKSTEP_SIMD_NS
