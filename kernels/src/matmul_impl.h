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
// None of this depends on P, T, the lane count or which thread runs the
// block, so every blocking and every build gives the same bits.

namespace lockstep::kernels::LOCKSTEP_SIMD_NS {

template <internal::WeightType kType>
struct PackedWeights;

template <>
struct PackedWeights<internal::WeightType::kF32> {
  using Elem = float;
  static VecF Load(const float* p) { return VecF::Load(p); }
};
template <>
struct PackedWeights<internal::WeightType::kF16> {
  using Elem = uint16_t;
  static VecF Load(const uint16_t* p) { return VecF::LoadF16(p); }
};
template <>
struct PackedWeights<internal::WeightType::kBF16> {
  using Elem = uint16_t;
  static VecF Load(const uint16_t* p) { return VecF::LoadBF16(p); }
};

// P panels starting at panel0 times T tokens starting at token0.
template <internal::WeightType kType, int P, int T>
void MatmulBlock(const internal::MatmulCall& c, int64_t panel0, int64_t token0) {
  using W = PackedWeights<kType>;
  using Elem = typename W::Elem;
  const int64_t panel_elems = c.cols * 16;
  const Elem* w[P];
  for (int p = 0; p < P; ++p) {
    w[p] = static_cast<const Elem*>(c.panels) + (panel0 + p) * panel_elems;
  }
  const float* x[T];
  for (int t = 0; t < T; ++t) x[t] = c.x + (token0 + t) * c.ldx;

  // stack[level]: the sum of the last complete subtree of 2^level segments.
  VecF stack[internal::kSegmentStackDepth][P][T];
  for (int s = 0; s < c.num_segments; ++s) {
    VecF acc[P][T];
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) {
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) acc[p][t] = VecF::Zero();
    }
    const int64_t k_end = c.segment_bounds[s + 1];
    for (int64_t k = c.segment_bounds[s]; k < k_end; ++k) {
      VecF wv[P];
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) wv[p] = W::Load(w[p] + k * 16);
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        const VecF xb = VecF::Set1(x[t][k]);
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p) acc[p][t] = VecF::Fma(wv[p], xb, acc[p][t]);
      }
    }
    // Binary counter: segment s completes one subtree per trailing one bit
    // of s; each completed left subtree is added to the right one.
    int level = 0;
    for (unsigned bits = static_cast<unsigned>(s); (bits & 1u) != 0; bits >>= 1, ++level) {
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) {
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) acc[p][t] = stack[level][p][t] + acc[p][t];
      }
    }
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) {
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) stack[level][p][t] = acc[p][t];
    }
  }
  int top = 0;
  while ((1 << top) < c.num_segments) ++top;

  for (int p = 0; p < P; ++p) {
    const int64_t row0 = (panel0 + p) * 16;
    const int64_t valid = c.rows - row0 < 16 ? c.rows - row0 : 16;
    for (int t = 0; t < T; ++t) {
      float* y = c.y + (token0 + t) * c.ldy + row0;
      if (valid == 16) {
        stack[top][p][t].Store(y);
      } else {
        stack[top][p][t].StoreN(y, static_cast<int>(valid));
      }
    }
  }
}

// Calls MatmulBlock<kType, P, R> for the runtime token count r (1..kMaxT).
template <internal::WeightType kType, int P, int kMaxT, int R = 1>
void MatmulBlockTokens(int r, const internal::MatmulCall& c, int64_t panel0, int64_t token0) {
  if constexpr (R <= kMaxT) {
    if (r == R) return MatmulBlock<kType, P, R>(c, panel0, token0);
    MatmulBlockTokens<kType, P, kMaxT, R + 1>(r, c, panel0, token0);
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
  // Many tokens (prefill): P panels stay in L1/L2 while all token blocks of
  // the range pass over them.
  auto panels = [&](auto panel_count, int64_t p) {
    constexpr int kP = decltype(panel_count)::value;
    int64_t t = token_begin;
    for (; t + T <= token_end; t += T) MatmulBlock<kType, kP, T>(c, p, t);
    if (t < token_end) MatmulBlockTokens<kType, kP, T>(static_cast<int>(token_end - t), c, p, t);
  };
  int64_t p = panel_begin;
  for (; p + P <= panel_end; p += P) panels(std::integral_constant<int, P>{}, p);
  for (; p < panel_end; ++p) panels(std::integral_constant<int, 1>{}, p);
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
  }
}

}  // namespace lockstep::kernels::LOCKSTEP_SIMD_NS
