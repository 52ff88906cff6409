// The register blocking and loop sizes of the AVX-512 builds, shared by every
// translation unit that compiles kernel bodies for them (kernels_avx512.cc and its
// variants with other instructions), inside the including build's namespace.
// Included after simd_avx512.h.
#pragma once

namespace lockstep::kernels::LOCKSTEP_SIMD_NS {
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
}  // namespace lockstep::kernels::LOCKSTEP_SIMD_NS
