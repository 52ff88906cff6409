// Machine probes: memory read bandwidth and FMA peak, measured the way the
// kernels run (same vector code, same thread pool). `lockstep calibrate` and
// the benchmarks use them as the anchors that kernel speeds are compared to.
//
// Each probe creates its own tbb::task_arena of `threads` threads, so the
// figure is for exactly that many threads whatever arena the caller is in.
// They take from tens of milliseconds (FMA) to a few seconds (bandwidth of a
// large array); they allocate and free their own buffers. The machine may be
// shared: every figure is the best of several repetitions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lockstep/base/dtype.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/kernels/matmul.h"

namespace lockstep::kernels {

// How a probe times its passes.
//   kWall  elapsed time: what a user of this machine gets right now.
//   kCpu   the CPU time of the whole process divided by the thread count:
//          the time the threads actually ran. On a machine shared with other
//          jobs (which take turns on the cores) this gives the hardware's
//          figure, not this process's share of it. Compare a kernel with an
//          anchor only when both were timed with the same clock (ProbeNow).
enum class ProbeClock { kWall, kCpu };

// Seconds on `clock`: steady-clock time, or process CPU time / `threads`.
// Only differences of two readings with the same arguments mean anything.
double ProbeNow(ProbeClock clock, int threads);

struct MemoryBandwidth {
  // Sum of one array of `bytes` bytes (read only): bytes read per second.
  double read_bytes_per_second = 0.0;
  // STREAM triad a[i] = b[i] + s * c[i] over three arrays of bytes/3 bytes
  // each, counted as STREAM does (2 reads + 1 write per element; the
  // write-allocate read is not counted): bytes per second.
  double triad_bytes_per_second = 0.0;
};

// `threads` >= 1; `bytes` should be well above the last-level cache (the
// default, 1 GiB, is). Each thread streams its own contiguous part.
MemoryBandwidth MeasureReadBandwidth(int threads, size_t bytes = size_t{1} << 30,
                                     int repetitions = 5, ProbeClock clock = ProbeClock::kWall);

// Peak single-precision FLOP/s (2 per fused multiply-add per lane) of
// `threads` threads running independent FMA chains with `isa` (which must be
// supported).
double MeasureFmaPeak(Isa isa, int threads, ProbeClock clock = ProbeClock::kWall);

// Peak FLOP/s (2 per multiply-add) of `threads` threads running independent
// chains of the AVX512_BF16 dot product vdpbf16ps (32 multiply-adds per
// instruction): the anchor of the bf16 compute (bf16_matmul.h). 0 where the
// CPU does not have the instruction.
double MeasureBf16DotPeak(int threads, ProbeClock clock = ProbeClock::kWall);

// Peak rate (2 per multiply-add, to compare with the quantized matmuls'
// FLOP/s) of `threads` threads running independent chains of the VNNI
// integer dot product vpdpbusd (u8 x s8 -> s32, 4 multiply-adds per 32-bit
// lane): zmm for Isa::kAvx512 (64 per instruction), ymm AVX-VNNI for
// kAvx2 (32): the anchor of the q8_0 / q4_0 prefill (quant_matmul.h). 0
// where the quantized kernels of `isa` do not use the instruction
// (UsingVnni).
double MeasureInt8DotPeak(Isa isa, int threads, ProbeClock clock = ProbeClock::kWall);

// What the kernels themselves reach, for the cost model (`lockstep
// calibrate`, docs/partitioner.md "Calibration"): the FMA peak is what no
// matmul of a few tokens comes near, and the weight stream and the FMAs of a
// small-token matmul overlap only in part.
struct MatmulProbe {
  DType dtype = DType::kBF16;  // of the weights (q8_0 / q4_0: int8 dot products)
  Compute compute = Compute::kFloat;  // kBf16 with bf16 weights: the bf16 compute
  int64_t rows = 2048;         // N (outputs)
  int64_t cols = 2048;         // K (the reduction)
  // Packed copies of the matrix are cycled so that every call reads its
  // weights from memory, as a forward pass does (each weight once per pass).
  size_t footprint = size_t{1} << 30;
  double min_time_s = 0.25;  // per token count, after a warm-up pass
};

// FLOP/s (2 per multiply-add; for q8_0 / q4_0 weights 2 per weight and
// token, as the cost model counts them) of Matmul (canonical order) for each token
// count of `tokens`, with `threads` threads and weights streamed from memory:
// the median call of those run in min_time_s, split over two passes over
// the token counts, in the quieter pass (a burst of other work on a shared
// machine spoils one pass of a count, not both). The median rather than the
// fastest call: the rate a forward pass of many calls sustains.
std::vector<double> MeasureMatmulFlops(Isa isa, int threads, const MatmulProbe& probe,
                                       const std::vector<int64_t>& tokens,
                                       ProbeClock clock = ProbeClock::kWall);

// FLOP/s of one thread's Matmul calls while `threads` threads each run their
// own one-thread calls at the same time on their own packed copies (chips
// that share a node: memory bus, last-level cache, clock), for each token
// count of `tokens`: per thread the typical call, timed as
// MeasureMatmulFlops does, all threads starting each token count (of each
// pass) together; the mean over the threads. Wall clock. The
// footprint is split among the threads. threads = 1 measures one alone.
std::vector<double> MeasureConcurrentMatmulFlops(Isa isa, int threads, const MatmulProbe& probe,
                                                 const std::vector<int64_t>& tokens);

// Seconds of one causal prefill through Attention (attention.h): `queries`
// tokens at positions 0..queries-1 of one sequence, `num_heads` query heads
// over `num_kv_heads` KV heads of `head_dim`, with `threads` threads. Best of
// `repetitions` after a warm-up.
double MeasureAttentionSeconds(Isa isa, int threads, int queries, int num_heads, int num_kv_heads,
                               int head_dim, int repetitions = 5,
                               ProbeClock clock = ProbeClock::kWall);

// Seconds of one decode step of attention as a batch runs it: `sequences`
// queries, each the newest token (position context - 1) of a sequence of
// its own with its own KV pages, `num_heads` query heads over `num_kv_heads`
// KV heads of `head_dim`, with `threads` threads. Copies of the batch's KV
// are cycled through `footprint` bytes so that every call reads its keys and
// values from memory, as each layer of a forward pass reads its own cache.
// The median call of those run in min_time_s, after one call per copy.
double MeasureDecodeAttentionSeconds(Isa isa, int threads, int sequences, int context,
                                     int num_heads, int num_kv_heads, int head_dim,
                                     size_t footprint, double min_time_s,
                                     ProbeClock clock = ProbeClock::kWall);

}  // namespace lockstep::kernels
