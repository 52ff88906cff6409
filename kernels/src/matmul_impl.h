// The matmul block kernels, written once over the 16-lane VecF of the
// including build (see simd_scalar.h). Included only by kernels_<isa>.cc.
//
//   y[m][n] = sum_k x[m][k] * W[n][k]    x: [M][K] f32 (row stride ldx)
//                                        W: packed, [N/16 panels][K][16]
//                                        y: [M][N] f32 (row stride ldy)
//
// One VecF holds one panel row: W[16p .. 16p+15][k]. A block computes P
// panels x T tokens with P*T vector accumulators (register blocking), so per
// k it loads P weight vectors and broadcasts T activations. Each lane of an
// accumulator is one output (n, m), and it sees exactly the canonical order:
//   for each segment s (bounds from the caller): acc = +0; for k in s, in
//   increasing order: acc = fma(W[n][k], x[m][k], acc)
//   segment sums combined by a binary-counter stack, which yields the
//   balanced tree in index order ((s0+s1)+(s2+s3))+...
// None of this depends on P, T, the lane count, how the segments are grouped
// into calls, or which thread runs the block, so every blocking and every
// build gives the same bits.

namespace lockstep::kernels::LOCKSTEP_SIMD_NS {

// The bf16 dot product (bf16_matmul.h has the contract and
// docs/determinism.md the measured semantics of vdpbf16ps). One step, per
// lane: r = a*b + c rounded once to f32 (nearest even); a result whose
// magnitude, rounded to 24 bits with an unbounded exponent, is below 2^-126
// becomes a zero of its sign. Operands are never subnormal here (the pack and
// the activation rounding flush them, and every step flushes its result), so
// the instruction's DAZ needs no emulation.
//
// The FMA gives the rounded r. Results with |r| < 2^-126 are flushed. |r| ==
// 2^-126 is ambiguous: the FMA rounds below 2^-126 on the subnormal grid
// (2^-149), the instruction on the 24-bit grid (2^-150), so an exact sum in
// [2^-126 - 2^-150, 2^-126 - 2^-151) gives 2^-126 from the FMA and 0 from
// the instruction. Both cases are rare; they go through this scalar lane
// loop, which decides from the exact sum (two-sum in double: a*b is exact in
// double for bf16 a and b).
[[gnu::noinline]] inline VecF Bf16StepTiny(VecF r, VecF a, VecF b, VecF c) {
  float rv[16], av[16], bv[16], cv[16];
  r.Store(rv);
  a.Store(av);
  b.Store(bv);
  c.Store(cv);
  for (int i = 0; i < 16; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &rv[i], 4);
    const uint32_t mag = bits & 0x7fffffffu;
    if (mag == 0 || mag > 0x00800000u) continue;
    bool flush = mag < 0x00800000u;
    if (!flush) {
      const double p = static_cast<double>(av[i]) * static_cast<double>(bv[i]);
      const double cc = cv[i];
      double s = cc + p;
      const double bb = s - cc;
      double e = (cc - (s - bb)) + (p - bb);
      if (s < 0) {
        s = -s;
        e = -e;
      }
      constexpr double kTiny = 0x1p-126 - 0x1p-151;
      flush = s < kTiny || (s == kTiny && e < 0);
    }
    if (flush) {
      bits &= 0x80000000u;
      std::memcpy(&rv[i], &bits, 4);
    }
  }
  return VecF::Load(rv);
}
inline VecF Bf16Step(VecF a, VecF b, VecF c) {
  VecF r = VecF::Fma(a, b, c);
  if (AnyTinyNonzero(r)) [[unlikely]] r = Bf16StepTiny(r, a, b, c);
  return r;
}
// acc plus the lane's pair of products, first (bits 31..16) then second, as
// vdpbf16ps(acc, w, x) computes it.
inline VecF DotBf16(VecF acc, VecF w, VecF x) {
#if defined(LOCKSTEP_SIMD_BF16) && LOCKSTEP_SIMD_BF16
  return DotBf16Native(acc, w, x);
#elif defined(LOCKSTEP_SIMD_FTZ) && LOCKSTEP_SIMD_FTZ
  // The FTZ build runs with the MXCSR flush-to-zero bit set (and DAZ clear,
  // rounding to nearest even): x86 detects tininess after rounding with an
  // unbounded exponent and then returns a zero of the result's sign, which
  // is the step's flush exactly (docs/determinism.md, "bf16 compute";
  // Bf16MatmulTest.DotStepUnderFlushToZeroMatchesTheDefinition).
  return VecF::Fma(Bf16Lo(w), Bf16Lo(x), VecF::Fma(Bf16Hi(w), Bf16Hi(x), acc));
#else
  return Bf16Step(Bf16Lo(w), Bf16Lo(x), Bf16Step(Bf16Hi(w), Bf16Hi(x), acc));
#endif
}

#if defined(LOCKSTEP_SIMD_FTZ) && LOCKSTEP_SIMD_FTZ
// The lanes of r = a + b that the flush-to-zero bit made zeros although
// a != -b, given their exact value: a subnormal sum of two floats is exact
// (a multiple of 2^-149 below 2^-126), so it is exact in double too, and
// its bits are its sign and its multiple of 2^-149.
[[gnu::noinline]] inline VecF ExactSubnormalSums(VecF r, VecF a, VecF b) {
  float rv[16], av[16], bv[16];
  r.Store(rv);
  a.Store(av);
  b.Store(bv);
  for (int i = 0; i < 16; ++i) {
    if (rv[i] != 0.0f || av[i] == -bv[i]) continue;
    const double s = static_cast<double>(av[i]) + static_cast<double>(bv[i]);
    uint32_t bits = static_cast<uint32_t>((s < 0 ? -s : s) * 0x1p149);
    if (s < 0) bits |= 0x80000000u;
    std::memcpy(&rv[i], &bits, 4);
  }
  return VecF::Load(rv);
}
#endif
// The add of the segment tree (two partial sums; a plain f32 add in every
// build: under the FTZ build's flush-to-zero bit, a sum the bit flushed is
// put back).
inline VecF SegmentSum(VecF a, VecF b) {
  VecF r = a + b;
#if defined(LOCKSTEP_SIMD_FTZ) && LOCKSTEP_SIMD_FTZ
  if (AnyFlushedSum(r, a, b)) [[unlikely]] r = ExactSubnormalSums(r, a, b);
#endif
  return r;
}

template <internal::WeightType kType>
struct PackedWeights;

// Load: one panel row (16 lanes); MulAdd: one step of the lanes' chains.
template <>
struct PackedWeights<internal::WeightType::kF32> {
  using Elem = float;
  static VecF Load(const float* p) { return VecF::Load(p); }
  static VecF MulAdd(VecF w, VecF x, VecF acc) { return VecF::Fma(w, x, acc); }
};
template <>
struct PackedWeights<internal::WeightType::kF16> {
  using Elem = uint16_t;
  static VecF Load(const uint16_t* p) { return VecF::LoadF16(p); }
  static VecF MulAdd(VecF w, VecF x, VecF acc) { return VecF::Fma(w, x, acc); }
};
template <>
struct PackedWeights<internal::WeightType::kBF16> {
  using Elem = uint16_t;
  static VecF Load(const uint16_t* p) { return VecF::LoadBF16(p); }
  static VecF MulAdd(VecF w, VecF x, VecF acc) { return VecF::Fma(w, x, acc); }
};
// The bf16 compute: a "column" is a pair of columns, weights and activations
// are bf16 pairs held in f32 slots (moved as bits, never computed on).
template <>
struct PackedWeights<internal::WeightType::kBF16Pair> {
  using Elem = float;
  static VecF Load(const float* p) { return VecF::Load(p); }
  static VecF MulAdd(VecF w, VecF x, VecF acc) { return DotBf16(acc, w, x); }
};
// The type of the prefill scratch a pack of kType is copied into: f32
// (widened), or the pairs themselves.
template <internal::WeightType kType>
inline constexpr internal::WeightType kScratchType =
    kType == internal::WeightType::kBF16Pair ? internal::WeightType::kBF16Pair
                                             : internal::WeightType::kF32;
// Whether a bf16-compute pack's operands reach the FMAs widened: the FTZ
// build's step is two bare FMAs, so (1) per column k the prefill scratch
// holds the P panels' first halves, then their second halves, as f32 (2 * P
// vectors), and (2) the caller's chunk-major activations (MatmulCall::xp)
// hold two f32 per token and column, the first halves of a token block's
// columns kk at [2 kk][t], the second at [2 kk + 1][t] (matmul.cc builds them
// so for Bf16Step::kFlushToZero), so the token blocks need no widening.
template <internal::WeightType kType>
inline constexpr bool kWidePairScratch =
#if defined(LOCKSTEP_SIMD_FTZ) && LOCKSTEP_SIMD_FTZ
    kType == internal::WeightType::kBF16Pair;
#else
    false;
#endif

// Where a block finds its operands:
//   kPack (decode): weight vector p of column k at w[p] + k * 16, activation
//     t at x[t][k].
//   kInterleaved (prefill scratch): weight vector p at
//     w[0] + (k - origin) * P * 16 + p * 16 and activation t at
//     x[0][(k - origin) * kXStride + t] -- compile-time offsets from two
//     pointers, which keeps the general-purpose registers free.
//   kDirect (few tokens): weights as in kPack, straight from the packed
//     matrix, activations as in kInterleaved.
enum class OperandForm { kPack, kInterleaved, kDirect };

template <typename Elem, int P, int T>
struct Operands {
  const Elem* const* w;
  const float* const* x;
  int64_t origin;
  // kDirect and kPack: if > 0, each column k (kPack: each column that starts
  // a cache line) also prefetches into L2 the weights of column k + prefetch
  // of every panel (prefetches never fault, so it may run past the pack's
  // end).
  int64_t prefetch = 0;
};

// Advances a P-panel x T-token block over columns [k0, k1) (the block must
// have consumed exactly the columns before k0), with operands in kForm.
// Segment boundaries may fall anywhere in [k0, k1]; a segment cut by k1 keeps
// its accumulators in `state` and resumes in the next call, which continues
// the same FMA chain (storing an f32 is exact).
template <internal::WeightType kType, int P, int T, OperandForm kForm, int kXStride = T>
void RunColumns(const internal::MatmulCall& c,
                const Operands<typename PackedWeights<kType>::Elem, P, T>& ops, int64_t k0,
                int64_t k1, BlockState& state) {
  using W = PackedWeights<kType>;
  VecF acc[P][T];
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) {
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) acc[p][t] = state.acc_live ? state.acc[p * T + t] : VecF::Zero();
  }
  state.acc_live = false;
  int64_t k = k0;
  while (state.segment < c.num_segments) {
    const int s = state.segment;
    const int64_t seg_end = c.segment_bounds[s + 1];
    const int64_t stop = seg_end < k1 ? seg_end : k1;
    if constexpr (kForm == OperandForm::kInterleaved && kWidePairScratch<kType>) {
      // Widened pairs (PrefillPanels): the first halves' FMAs, then the
      // second halves', so each lane still adds its pair's first product
      // before its second.
      const float* w = ops.w[0] + (k - ops.origin) * 2 * P * 16;
      const float* x = ops.x[0] + (k - ops.origin) * 2 * kXStride;
      for (; k < stop; ++k, w += 2 * P * 16, x += 2 * kXStride) {
#pragma GCC unroll 2
        for (int half = 0; half < 2; ++half) {
          VecF wv[P];
#pragma GCC unroll 16
          for (int p = 0; p < P; ++p) wv[p] = VecF::Load(w + (half * P + p) * 16);
#pragma GCC unroll 16
          for (int t = 0; t < T; ++t) {
            const VecF xb = VecF::Set1(x[half * kXStride + t]);
#pragma GCC unroll 16
            for (int p = 0; p < P; ++p) acc[p][t] = VecF::Fma(wv[p], xb, acc[p][t]);
          }
        }
      }
    } else if constexpr (kForm == OperandForm::kDirect && kWidePairScratch<kType>) {
      // Pairs from the pack, widened here (loaded once per half: the second
      // load hits L1); activations widened by the caller, as above.
      const float* x = ops.x[0] + (k - ops.origin) * 2 * kXStride;
      for (; k < stop; ++k, x += 2 * kXStride) {
        if (ops.prefetch > 0) {
#pragma GCC unroll 16
          for (int p = 0; p < P; ++p) PrefetchL2(ops.w[p] + (k + ops.prefetch) * 16);
        }
#pragma GCC unroll 2
        for (int half = 0; half < 2; ++half) {
          VecF wv[P];
#pragma GCC unroll 16
          for (int p = 0; p < P; ++p) {
            const VecF pair = W::Load(ops.w[p] + k * 16);
            wv[p] = half == 0 ? Bf16Hi(pair) : Bf16Lo(pair);
          }
#pragma GCC unroll 16
          for (int t = 0; t < T; ++t) {
            const VecF xb = VecF::Set1(x[half * kXStride + t]);
#pragma GCC unroll 16
            for (int p = 0; p < P; ++p) acc[p][t] = VecF::Fma(wv[p], xb, acc[p][t]);
          }
        }
      }
    } else if constexpr (kForm == OperandForm::kInterleaved) {
      const typename PackedWeights<kType>::Elem* w = ops.w[0] + (k - ops.origin) * P * 16;
      const float* x = ops.x[0] + (k - ops.origin) * kXStride;
      for (; k < stop; ++k, w += P * 16, x += kXStride) {
        VecF wv[P];
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p) wv[p] = W::Load(w + p * 16);
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) {
          const VecF xb = VecF::Set1(x[t]);
#pragma GCC unroll 16
          for (int p = 0; p < P; ++p) acc[p][t] = W::MulAdd(wv[p], xb, acc[p][t]);
        }
      }
    } else if constexpr (kForm == OperandForm::kDirect) {
      const float* x = ops.x[0] + (k - ops.origin) * kXStride;
      for (; k < stop; ++k, x += kXStride) {
        if (ops.prefetch > 0) {
#pragma GCC unroll 16
          for (int p = 0; p < P; ++p) PrefetchL2(ops.w[p] + (k + ops.prefetch) * 16);
        }
        VecF wv[P];
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p) wv[p] = W::Load(ops.w[p] + k * 16);
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) {
          const VecF xb = VecF::Set1(x[t]);
#pragma GCC unroll 16
          for (int p = 0; p < P; ++p) acc[p][t] = W::MulAdd(wv[p], xb, acc[p][t]);
        }
      }
    } else {
      // Decode: each panel is its own stream; with prefetch > 0 each k that
      // starts a cache line of a panel also asks for the line `prefetch`
      // columns ahead of it.
      constexpr int64_t kLineColumns =
          64 / (16 * static_cast<int64_t>(sizeof(typename PackedWeights<kType>::Elem)));
      for (; k < stop; ++k) {
        if (ops.prefetch > 0 && k % kLineColumns == 0) {
#pragma GCC unroll 16
          for (int p = 0; p < P; ++p) PrefetchL2(ops.w[p] + (k + ops.prefetch) * 16);
        }
        VecF wv[P];
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p) wv[p] = W::Load(ops.w[p] + k * 16);
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) {
          const VecF xb = VecF::Set1(ops.x[t][k]);
#pragma GCC unroll 16
          for (int p = 0; p < P; ++p) acc[p][t] = W::MulAdd(wv[p], xb, acc[p][t]);
        }
      }
    }
    if (stop < seg_end) {
      // The segment continues in the next chunk: keep its accumulators.
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) {
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) state.acc[p * T + t] = acc[p][t];
      }
      state.acc_live = true;
      return;
    }
    // Segment s is complete. Binary counter: it completes one subtree per
    // trailing one bit of s; each completed left subtree is added to the
    // right one.
    int level = 0;
    for (unsigned bits = static_cast<unsigned>(s); (bits & 1u) != 0; bits >>= 1, ++level) {
      const VecF* left = (level < state.local_levels ? state.local : state.stack) + level * P * T;
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) {
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) acc[p][t] = SegmentSum(left[p * T + t], acc[p][t]);
      }
    }
    VecF* slot = (level < state.local_levels ? state.local : state.stack) + level * P * T;
    // Hide the slot's provenance from the optimiser: otherwise GCC gives each
    // of the P * T stores its own precomputed address, more than there are
    // registers, and this once-per-segment step grows to ~130 instructions.
    asm("" : "+r"(slot));
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) {
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        slot[p * T + t] = acc[p][t];
        acc[p][t] = VecF::Zero();
      }
    }
    ++state.segment;
  }
}

template <internal::WeightType kType, int P>
void PanelPointers(const internal::MatmulCall& c, int64_t panel0,
                   const typename PackedWeights<kType>::Elem** w) {
  using Elem = typename PackedWeights<kType>::Elem;
  for (int p = 0; p < P; ++p) {
    w[p] = static_cast<const Elem*>(c.panels) + (panel0 + p) * c.cols * 16;
  }
}

// How far ahead (bytes of each panel's stream) a decode block prefetches its
// weights into L2. The P panels of a block are P separate streams; with 2-byte
// weights each advances only half a cache line per column, and the hardware
// prefetchers alone kept f16/bf16 decode at ~0.80 of the read-bandwidth probe
// (f32: ~1.0). Measured (matmul_bench --mode decode, RESULTS.md "Issue 17
// items 3-4"): 256 to 1024 bytes all bring bf16 to ~0.95; 512 was the best.
inline constexpr int64_t kDecodePrefetchBytes = 512;

// A whole P x T block in one pass over K, straight from the pack (decode).
template <internal::WeightType kType, int P, int T>
void MatmulBlock(const internal::MatmulCall& c, int64_t panel0, int64_t token0) {
  const typename PackedWeights<kType>::Elem* w[P];
  PanelPointers<kType, P>(c, panel0, w);
  const float* x[T];
  for (int t = 0; t < T; ++t) x[t] = c.x + (token0 + t) * c.ldx;
  VecF parked[P * T];  // unused: one pass over all of K never parks a segment
  VecF stack[internal::kSegmentStackDepth * P * T];
  BlockState state{parked, stack, 0, false};
  constexpr int64_t kColumnBytes =
      16 * static_cast<int64_t>(sizeof(typename PackedWeights<kType>::Elem));
  RunColumns<kType, P, T, OperandForm::kPack>(c, {w, x, 0, kDecodePrefetchBytes / kColumnBytes},
                                              0, c.cols, state);
  StoreBlock<P, T>(c, panel0, token0, stack);
}

// Preferred chunk length (columns) of the prefill walk (matmul.cc makes
// chunks of whole segments, between half this and this long): 4 panels x 128
// columns of f32 weights is 32 KiB, which stays in a 48 KiB L1 next to a
// token block's activations. Measured against 64 (matmul_bench --cpu-time,
// RESULTS.md): fewer chunk switches per token block, 10-25% faster prefill;
// 256 (64 KiB, beyond L1) was no faster.
inline constexpr int64_t kChunkColumns = 128;
// Runs the interleaved RunColumns<kF32, P, R> for the runtime token count r
// (1..kMaxT).
template <internal::WeightType kScratch, int P, int kMaxT, int R = 1>
void RunColumnsTokens(int r, const internal::MatmulCall& c, const float* w, const float* x,
                      int64_t origin, int64_t k0, int64_t k1, BlockState& state) {
  if constexpr (R <= kMaxT) {
    if (r == R) {
      return RunColumns<kScratch, P, R, OperandForm::kInterleaved, kMaxT>(c, {&w, &x, origin}, k0,
                                                                          k1, state);
    }
    RunColumnsTokens<kScratch, P, kMaxT, R + 1>(r, c, w, x, origin, k0, k1, state);
  }
}
template <int P, int kMaxT, int R = 1>
void StoreBlockTokens(int r, const internal::MatmulCall& c, int64_t panel0, int64_t token0,
                      const VecF* stack) {
  if constexpr (R <= kMaxT) {
    if (r == R) return StoreBlock<P, R>(c, panel0, token0, stack);
    StoreBlockTokens<P, kMaxT, R + 1>(r, c, panel0, token0, stack);
  }
}

// The L2 prefetch of the weights a panel walk reads after chunk `ci` of
// panels [panel0, panel0 + P): the next chunk of the same panels, or the first
// chunk of the next panel group. Cut into `num_slices` slices of whole cache
// lines, one issued before each token block, so memory streams under the
// blocks' FMAs instead of in a burst.
template <typename Elem, int P>
struct NextChunkPrefetch {
  const char* base;
  int64_t panel_bytes, lines_per_panel, lines, num_slices;

  NextChunkPrefetch(const internal::MatmulCall& c, int64_t panel0, int ci, int64_t slices)
      : num_slices(slices) {
    const bool last = ci + 1 == c.num_chunks;
    const int64_t nk0 = last ? 0 : c.chunk_bounds[ci + 1];
    const int64_t nk1 = last ? c.chunk_bounds[1] : c.chunk_bounds[ci + 2];
    const int64_t num_panels = (c.rows + 15) / 16;
    const int64_t next_panel0 = last ? panel0 + P : panel0;
    const int64_t next_count = num_panels - next_panel0 < P ? num_panels - next_panel0 : P;
    lines_per_panel = ((nk1 - nk0) * 16 * static_cast<int64_t>(sizeof(Elem)) + 63) / 64;
    lines = next_count > 0 ? lines_per_panel * next_count : 0;
    base = reinterpret_cast<const char*>(static_cast<const Elem*>(c.panels) +
                                         (next_panel0 * c.cols + nk0) * 16);
    panel_bytes = c.cols * 16 * static_cast<int64_t>(sizeof(Elem));
  }

  void Slice(int64_t b) const {
    const int64_t line_begin = b * lines / num_slices;
    const int64_t line_end = (b + 1) * lines / num_slices;
    if (line_begin >= line_end) return;
    int64_t panel = line_begin / lines_per_panel, line = line_begin % lines_per_panel;
    for (int64_t n = line_begin; n < line_end; ++n) {
      PrefetchL2(base + panel * panel_bytes + line * 64);
      if (++line == lines_per_panel) {
        line = 0;
        ++panel;
      }
    }
  }
};

// Prefill: P panels against all token blocks of [token_begin, token_end).
// K is walked in the caller's chunks (MatmulCall::chunk_bounds): for each
// chunk, the P panels' columns are copied (f16/bf16 widened, exactly) into
// the f32 `scratch`, interleaved as scratch[kk][p][16] so the chunk is one
// run of consecutive cache lines that stays in L1, and every token block
// advances over the chunk against it, reading its activations from the
// caller's chunk-major copy. Each token block keeps its BlockState in
// `states` between chunks; a chunk edge inside a segment (plain order only)
// just parks the accumulators, and the next chunk resumes the same chain.
template <internal::WeightType kType, int P, int T>
void PrefillPanels(const internal::MatmulCall& c, int64_t panel0, int64_t token_begin,
                   int64_t token_end, VecF* states, float* scratch) {
  using Elem = typename PackedWeights<kType>::Elem;
  const int64_t num_blocks = (token_end - token_begin + T - 1) / T;
  const Elem* w[P];
  PanelPointers<kType, P>(c, panel0, w);
  TokenBlockChains<P, T> chains(c, states, num_blocks);

  for (int ci = 0; ci < c.num_chunks; ++ci) {
    const int64_t k0 = c.chunk_bounds[ci], k1 = c.chunk_bounds[ci + 1];
    for (int64_t k = k0; k < k1; ++k) {
      if constexpr (kWidePairScratch<kType>) {
        float* dst = scratch + (k - k0) * 2 * P * 16;
        for (int p = 0; p < P; ++p) {
          const VecF pair = VecF::Load(w[p] + k * 16);
          Bf16Hi(pair).Store(dst + p * 16);
          Bf16Lo(pair).Store(dst + (P + p) * 16);
        }
      } else {
        float* dst = scratch + (k - k0) * P * 16;
        for (int p = 0; p < P; ++p) PackedWeights<kType>::Load(w[p] + k * 16).Store(dst + p * 16);
      }
    }

    // While the token blocks compute on this chunk, prefetch into L2 the
    // weights of the next chunk (or of the next panel group's first chunk),
    // a slice per block, so memory streams under the FMAs.
    const bool last = ci + 1 == c.num_chunks;
    const NextChunkPrefetch<Elem, P> next(c, panel0, ci, num_blocks);
    for (int64_t b = 0; b < num_blocks; ++b) {
      next.Slice(b);
      const int64_t token0 = token_begin + b * T;
      const int rest = static_cast<int>(token_end - token0 < T ? token_end - token0 : T);
      // This block's activations for the chunk, interleaved [kk][t].
      const float* xb =
          c.xp + (ci * c.xp_tokens + token0) * c.chunk_stride * (kWidePairScratch<kType> ? 2 : 1);
      VecF* s = states + b * kStateVecs<P, T>;
      BlockState state = chains.Resume(b);
      if (rest == T) {
        const float* wp = scratch;
        RunColumns<kScratchType<kType>, P, T, OperandForm::kInterleaved>(c, {&wp, &xb, k0}, k0,
                                                                          k1, state);
      } else {
        // The last, partial token block: a narrower register block, using
        // the first part of the same state storage. (Its activations keep
        // the stride T; the padding tokens are never read.)
        state.stack = s + P * rest;
        RunColumnsTokens<kScratchType<kType>, P, T>(rest, c, scratch, xb, k0, k0, k1, state);
      }
      chains.Park(b, state);
      if (last) {
        // Done: store now, so the stores (which miss: y was not touched
        // before) spread out between blocks instead of piling up in the
        // store buffer at the end, and fetch the next block's y lines.
        if (rest == T) {
          StoreBlock<P, T>(c, panel0, token0, s + P * T);
        } else {
          StoreBlockTokens<P, T>(rest, c, panel0, token0, s + P * rest);
        }
        const int64_t next_token0 = token0 + T;
        for (int t = 0; t < T && next_token0 + t < token_end; ++t) {
          const float* y = c.y + (next_token0 + t) * c.ldy + panel0 * 16;
          for (int p = 0; p < P; ++p) Prefetch(y + p * 16);
        }
      }
    }
  }
}

// How far ahead (columns) a single few-token block prefetches its weights
// into L2. Measured against 256 and against leaving it to the hardware
// prefetchers (matmul_bench, 4 tokens): a little faster than either.
inline constexpr int64_t kDirectPrefetchColumns = 64;

// Few tokens (matmul.cc takes this path for 2..kMatmulSmallMaxTokens): too
// little work per weight to hide a widening copy and a prefetch behind, so
// the blocks read the weights straight from the pack (kDirect operands,
// widened in registers as in decode) and every token of a block shares each
// weight load. With one token block (up to kMatmulSmallBlockTokens tokens)
// the caller makes K one chunk, and the walk is a single pass over the
// weights, a sequential stream prefetched a little ahead of the FMAs. With
// more blocks, K is walked in the usual chunks, the first block of a chunk
// brings its weights in and prefetches the next chunk's, column by column
// (spread over its FMAs, not in a burst), and the others find the chunk in
// L1. The activations are the caller's chunk-major copy for token blocks of T
// (MatmulCall::block_tokens); a partial last block computes on its zero
// padding and stores only its real tokens. Same lanes, same chains, same
// tree as every other path.
template <internal::WeightType kType, int P, int T>
void DirectPanels(const internal::MatmulCall& c, int64_t panel0, int64_t token_begin,
                  int64_t token_end, VecF* states) {
  using Elem = typename PackedWeights<kType>::Elem;
  const int64_t num_blocks = (token_end - token_begin + T - 1) / T;
  const Elem* w[P];
  PanelPointers<kType, P>(c, panel0, w);
  TokenBlockChains<P, T> chains(c, states, num_blocks);
  for (int ci = 0; ci < c.num_chunks; ++ci) {
    const int64_t k0 = c.chunk_bounds[ci], k1 = c.chunk_bounds[ci + 1];
    for (int64_t b = 0; b < num_blocks; ++b) {
      const int64_t token0 = token_begin + b * T;
      const int rest = static_cast<int>(token_end - token0 < T ? token_end - token0 : T);
      const float* xb =
          c.xp + (ci * c.xp_tokens + token0) * c.chunk_stride * (kWidePairScratch<kType> ? 2 : 1);
      VecF* s = states + b * kStateVecs<P, T>;
      BlockState state = chains.Resume(b);
      // The first block prefetches, column by column, the weights it will
      // read next: the same columns of the next chunk, or with one block
      // kDirectPrefetchColumns ahead in its single pass.
      const int64_t prefetch =
          b > 0 ? 0 : (num_blocks > 1 ? c.chunk_stride : kDirectPrefetchColumns);
      RunColumns<kType, P, T, OperandForm::kDirect>(c, {w, &xb, k0, prefetch}, k0, k1, state);
      chains.Park(b, state);
      if (ci + 1 == c.num_chunks) StoreBlock<P, T>(c, panel0, token0, s + P * T, rest);
    }
  }
}

// Panels per few-token block of T tokens: as many as the register budget
// (P * T accumulators plus P weight vectors) allows, at most
// kMatmulSmallMaxPanels.
constexpr int SmallBlockPanels(int t) {
  const int p = kMatmulSmallRegisters / (t + 1);
  return p < 1 ? 1 : (p > kMatmulSmallMaxPanels ? kMatmulSmallMaxPanels : p);
}
inline int MatmulSmallPanels(int block_tokens) {
  return SmallBlockPanels(block_tokens);
}

// The few-token path for the runtime block size c.block_tokens (1..
// kMatmulSmallBlockTokens).
template <internal::WeightType kType, int T = 1>
void DirectRange(const internal::MatmulCall& c, int64_t panel_begin, int64_t panel_end,
                 int64_t token_begin, int64_t token_end) {
  if constexpr (T <= kMatmulSmallBlockTokens) {
    if (c.block_tokens != T) {
      return DirectRange<kType, T + 1>(c, panel_begin, panel_end, token_begin, token_end);
    }
    constexpr int P = SmallBlockPanels(T);
    const int64_t num_blocks = (token_end - token_begin + T - 1) / T;
    ScratchArray<VecF> states(num_blocks * kStateVecs<P, T>);
    int64_t p = panel_begin;
    for (; p + P <= panel_end; p += P) {
      DirectPanels<kType, P, T>(c, p, token_begin, token_end, states.data);
    }
    if constexpr (P > 1) {
      for (; p < panel_end; ++p)
        DirectPanels<kType, 1, T>(c, p, token_begin, token_end, states.data);
    }
  }
}

template <internal::WeightType kType>
void MatmulRangeTyped(const internal::MatmulCall& c, int64_t panel_begin, int64_t panel_end,
                      int64_t token_begin, int64_t token_end) {
  constexpr int P = kMatmulBlockPanels, T = kMatmulBlockTokens, PD = kMatmulDecodePanels;
  if (token_end - token_begin == 1) {
    // One token (decode): the weights stream once from memory; PD panels at a
    // time give PD independent FMA chains to hide the FMA latency.
    int64_t p = panel_begin;
    for (; p + PD <= panel_end; p += PD) MatmulBlock<kType, PD, 1>(c, p, token_begin);
    for (; p < panel_end; ++p) MatmulBlock<kType, 1, 1>(c, p, token_begin);
    return;
  }
  if (c.direct) return DirectRange<kType>(c, panel_begin, panel_end, token_begin, token_end);
  // Many tokens: rounds of at most kMaxPrefillBlocks token blocks.
  const int64_t round_tokens = kMaxPrefillBlocks * T;
  const int64_t tokens = token_end - token_begin;
  const int64_t max_blocks = ((tokens < round_tokens ? tokens : round_tokens) + T - 1) / T;
  ScratchArray<VecF> states(max_blocks * kStateVecs<P, T>);
  ScratchArray<float> scratch((kWidePairScratch<kType> ? 2 : 1) * P * c.chunk_stride * 16);
  for (int64_t t0 = token_begin; t0 < token_end; t0 += round_tokens) {
    const int64_t t1 = t0 + round_tokens < token_end ? t0 + round_tokens : token_end;
    int64_t p = panel_begin;
    for (; p + P <= panel_end; p += P) {
      PrefillPanels<kType, P, T>(c, p, t0, t1, states.data, scratch.data);
    }
    for (; p < panel_end; ++p) PrefillPanels<kType, 1, T>(c, p, t0, t1, states.data, scratch.data);
  }
}

inline void MatmulRange(const internal::MatmulCall& c, int64_t panel_begin, int64_t panel_end,
                        int64_t token_begin, int64_t token_end) {
  switch (c.weight_type) {
    case internal::WeightType::kF32:
      return MatmulRangeTyped<internal::WeightType::kF32>(c, panel_begin, panel_end, token_begin,
                                                          token_end);
    case internal::WeightType::kF16:
      return MatmulRangeTyped<internal::WeightType::kF16>(c, panel_begin, panel_end, token_begin,
                                                          token_end);
    case internal::WeightType::kBF16:
      return MatmulRangeTyped<internal::WeightType::kBF16>(c, panel_begin, panel_end, token_begin,
                                                           token_end);
    case internal::WeightType::kBF16Pair:
      return MatmulRangeTyped<internal::WeightType::kBF16Pair>(c, panel_begin, panel_end,
                                                               token_begin, token_end);
    case internal::WeightType::kQ8_0:
    case internal::WeightType::kQ4_0:
      break;  // quantized packs go through QuantMatmulRange (quant_matmul_impl.h)
  }
}

}  // namespace lockstep::kernels::LOCKSTEP_SIMD_NS
