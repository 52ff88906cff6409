// The quantized matmul block kernels and the activation quantizer, written
// once over the 16-lane VecF / VecI / VecB of the including build (see
// simd_scalar.h). Included only by kernels_<isa>.cc (and the VNNI builds),
// after segment_chain_impl.h.
//
// The arithmetic (quant_matmul.h is the contract):
//   - activations: per token and block of 32, amax = max |x| (as an integer
//     max of the bits), scale = amax / 127, q = round-to-nearest-even(x *
//     (127 / amax)) in -127..127;
//   - per output (row n, token m) and block b, the integer dot product
//     S = sum_j w[j] * q[j] exactly in int32: weights are stored as unsigned
//     bytes u = w + offset, so S = bias + sum_j u[j] * q[j] with bias =
//     -offset * sum_j q[j] (computed with the activations), and the unsigned x
//     signed products are what VNNI's vpdpbusd sums (4 per 32-bit lane);
//   - acc = fma(float(S), d_w * scale, acc), a chain over the blocks of each
//     canonical segment (segments are runs of blocks), and the balanced tree
//     over the segments (the same binary-counter stack as matmul_impl.h).
// One lane of an accumulator is one row of a 16-row panel; the integers are
// exact in any order and the float operations run in the order above in every
// build, blocking and thread split.

namespace lockstep::kernels::LOCKSTEP_SIMD_NS {

inline constexpr float kQuantRoundMagic = 12582912.0f;  // 1.5 * 2^23

// Quantizes tokens [token_begin, token_end) (those at or past c.tokens are
// padding: zeros) into the interleaved layout of kernel_table.h.
inline void QuantizeActivationsRange(const internal::QuantizeActivationsCall& c,
                                     int64_t token_begin, int64_t token_end) {
  const internal::QuantActivations& a = c.a;
  const int64_t T = a.block_tokens;
  const VecI abs_mask = VecI::Set1(0x7fffffff);
  const VecF magic = VecF::Set1(kQuantRoundMagic);
  for (int64_t m = token_begin; m < token_end; ++m) {
    const int64_t tb = m / T, t = m % T;
    const float* x = c.x + m * c.ldx;
    for (int64_t b = 0; b < a.blocks; ++b) {
      alignas(16) int8_t q[32];
      float scale = 0.0f;
      int32_t sum = 0;
      int32_t amax_bits = 0;
      VecF x0 = VecF::Zero(), x1 = VecF::Zero();
      if (m < c.tokens) {
        x0 = VecF::Load(x + b * 32);
        x1 = VecF::Load(x + b * 32 + 16);
        amax_bits = VecI::Max(x0.Bits() & abs_mask, x1.Bits() & abs_mask).ReduceMax();
      }
      if (amax_bits == 0 || amax_bits >= 0x7f800000) {
        // All zero (or padding): q = 0, scale 0. An Inf or NaN in the block:
        // q = 0 and a NaN scale, so the outputs that read it are NaN.
        std::memset(q, 0, sizeof(q));
        if (amax_bits != 0) scale = std::numeric_limits<float>::quiet_NaN();
      } else {
        float amax;
        std::memcpy(&amax, &amax_bits, 4);
        scale = amax / 127.0f;
        const VecF s = VecF::Set1(127.0f / amax);
        // (v + 1.5*2^23) - 1.5*2^23 rounds v to the nearest integer, ties to
        // even, exactly (|v| <= 127.00002 here), whatever the rounding of
        // the conversion instructions.
        const VecI q0 = (((x0 * s) + magic) - magic).ToIntTrunc();
        const VecI q1 = (((x1 * s) + magic) - magic).ToIntTrunc();
        q0.StoreInt8(q);
        q1.StoreInt8(q + 16);
        sum = (q0 + q1).ReduceAdd();
      }
      const int64_t index = (tb * a.blocks + b) * T + t;
      int8_t* dst = a.q + ((tb * a.blocks + b) * 8 * T + t) * 4;
      for (int g = 0; g < 8; ++g) std::memcpy(dst + g * T * 4, q + 4 * g, 4);
      a.scale[index] = scale;
      a.bias[index] = -a.offset * sum;
    }
  }
}

template <internal::WeightType kType>
struct QuantFormat {
  static constexpr int64_t kQuantBytes = internal::QuantBlockQuantBytes(kType);
  static constexpr int64_t kPairBytes = internal::QuantPairBytes(kType);
};

// Advances a P-panel x T-token block over blocks [b0, b1) (it must have
// consumed exactly the blocks before b0). w[p]: panel p's records; xq, xs,
// xbias: this token block's activations (kernel_table.h, QuantActivations).
// The walk stops after segment seg_limit - 1 (the chunk's last: a run of
// empty segments at b1 belongs to the next chunk). A segment cut by b1 keeps
// its accumulators in `state`. With prefetch > 0
// the pair `prefetch` pairs ahead is prefetched into L2 at each even block.
template <internal::WeightType kType, int P, int T>
void QuantRunBlocks(const internal::QuantMatmulCall& c, const uint8_t* const* w, const int8_t* xq,
                    const float* xs, const int32_t* xbias, int64_t b0, int64_t b1,
                    int seg_limit, BlockState& state, int64_t prefetch) {
  using F = QuantFormat<kType>;
  VecF acc[P][T];
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) {
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) acc[p][t] = state.acc_live ? state.acc[p * T + t] : VecF::Zero();
  }
  state.acc_live = false;
  int64_t b = b0;
  while (state.segment < seg_limit) {
    const int s = state.segment;
    const int64_t seg_end = c.segment_bounds[s + 1];
    const int64_t stop = seg_end < b1 ? seg_end : b1;
    for (; b < stop; ++b) {
      const int64_t pair_offset = (b >> 1) * F::kPairBytes;
      const int64_t half = b & 1;
      if (prefetch > 0 && half == 0) {
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p) {
          const uint8_t* ahead = w[p] + pair_offset + prefetch * F::kPairBytes;
          for (int64_t line = 0; line < F::kPairBytes; line += 64) PrefetchL2(ahead + line);
        }
      }
      const uint8_t* quants[P];
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) {
        quants[p] = w[p] + pair_offset + internal::kQuantPairScaleBytes + half * F::kQuantBytes;
      }
      const int8_t* xb = xq + b * 8 * T * 4;
      VecI ia[P][T];
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        const VecI bias = VecI::Set1(xbias[b * T + t]);
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p) ia[p][t] = bias;
      }
      if constexpr (kType == internal::WeightType::kQ8_0) {
#pragma GCC unroll 8
        for (int g = 0; g < 8; ++g) {
          VecB wv[P];
#pragma GCC unroll 16
          for (int p = 0; p < P; ++p) wv[p] = VecB::Load(quants[p] + g * 64);
#pragma GCC unroll 16
          for (int t = 0; t < T; ++t) {
            const VecB xv = VecB::Broadcast4(xb + (g * T + t) * 4);
#pragma GCC unroll 16
            for (int p = 0; p < P; ++p) ia[p][t] = DotU8S8(ia[p][t], wv[p], xv);
          }
        }
      } else {
#pragma GCC unroll 4
        for (int h = 0; h < 4; ++h) {
          VecB raw[P];
#pragma GCC unroll 16
          for (int p = 0; p < P; ++p) raw[p] = VecB::Load(quants[p] + h * 64);
          VecB wv[P];
#pragma GCC unroll 16
          for (int p = 0; p < P; ++p) wv[p] = raw[p].LowNibbles();
#pragma GCC unroll 16
          for (int t = 0; t < T; ++t) {
            const VecB xv = VecB::Broadcast4(xb + (h * T + t) * 4);
#pragma GCC unroll 16
            for (int p = 0; p < P; ++p) ia[p][t] = DotU4S8(ia[p][t], wv[p], xv);
          }
#pragma GCC unroll 16
          for (int p = 0; p < P; ++p) wv[p] = raw[p].HighNibbles();
#pragma GCC unroll 16
          for (int t = 0; t < T; ++t) {
            const VecB xv = VecB::Broadcast4(xb + ((h + 4) * T + t) * 4);
#pragma GCC unroll 16
            for (int p = 0; p < P; ++p) ia[p][t] = DotU4S8(ia[p][t], wv[p], xv);
          }
        }
      }
      // The block's term: fma(float(S), d_w * scale, acc).
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) {
        const VecF dw = VecF::LoadF16(
            reinterpret_cast<const uint16_t*>(w[p] + pair_offset + half * 32));
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) {
          acc[p][t] = VecF::Fma(ia[p][t].ToFloat(), dw * VecF::Set1(xs[b * T + t]), acc[p][t]);
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
    // Segment s is complete: the binary counter of matmul_impl.h.
    int level = 0;
    for (unsigned bits = static_cast<unsigned>(s); (bits & 1u) != 0; bits >>= 1, ++level) {
      const VecF* left = (level < state.local_levels ? state.local : state.stack) + level * P * T;
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) {
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) acc[p][t] = left[p * T + t] + acc[p][t];
      }
    }
    VecF* slot = (level < state.local_levels ? state.local : state.stack) + level * P * T;
    asm("" : "+r"(slot));  // see RunColumns
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

// P panels against token blocks [tb_begin, tb_end) (at most
// kMaxPrefillBlocks). The blocks of K are walked in the call's chunks; for
// each chunk every token block advances over it, so the chunk's weights come
// from memory once (the first token block prefetches the next chunk) and
// from cache for the others. With a single chunk, each token block is one
// pass over the weights.
template <internal::WeightType kType, int P, int T>
void QuantPanels(const internal::QuantMatmulCall& c, int64_t panel0, int64_t tb_begin,
                 int64_t tb_end, VecF* states) {
  using F = QuantFormat<kType>;
  const int64_t num_blocks = tb_end - tb_begin;
  const uint8_t* w[P];
  for (int p = 0; p < P; ++p) w[p] = c.panels + (panel0 + p) * c.panel_bytes;
  TokenBlockChains<P, T> chains(c, states, num_blocks);
  const int64_t act_q = c.x.blocks * 8 * T * 4;
  const int64_t act_s = c.x.blocks * T;
  for (int ci = 0; ci < c.num_chunks; ++ci) {
    const int64_t k0 = c.chunk_bounds[ci], k1 = c.chunk_bounds[ci + 1];
    for (int64_t i = 0; i < num_blocks; ++i) {
      const int64_t tb = tb_begin + i;
      BlockState state = chains.Resume(i);
      // The first token block of a chunk prefetches: in a single pass, a
      // fixed distance ahead; otherwise the next chunk's pairs (its distance
      // in pairs, rounded up).
      int64_t prefetch = 0;
      if (i == 0) {
        prefetch = c.num_chunks == 1 ? c.prefetch_blocks / 2 : ((k1 - k0) + 1) / 2;
      }
      QuantRunBlocks<kType, P, T>(c, w, c.x.q + tb * act_q, c.x.scale + tb * act_s,
                                  c.x.bias + tb * act_s, k0, k1, c.chunk_segments[ci + 1], state,
                                  prefetch);
      chains.Park(i, state);
      if (ci + 1 == c.num_chunks) {
        const int64_t token0 = tb * T;
        const int rest = static_cast<int>(c.tokens - token0 < T ? c.tokens - token0 : T);
        StoreBlock<P, T>(c, panel0, token0, states + i * kStateVecs<P, T> + P * T, rest);
      }
    }
  }
  (void)sizeof(F);
}

// Panels per token block of T tokens: as many as kQuantRegisters allows
// (P * T integer and P * T float accumulators plus P weight vectors).
constexpr int QuantBlockPanels(int t) {
  const int p = kQuantRegisters / (2 * t + 1);
  return p < 1 ? 1 : (p > kQuantMaxPanels ? kQuantMaxPanels : p);
}
inline int QuantPanelsFor(int block_tokens) {
  return block_tokens == 1 ? kQuantDecodePanels : QuantBlockPanels(block_tokens);
}

template <internal::WeightType kType, int T, int P>
void QuantRangeFixed(const internal::QuantMatmulCall& c, int64_t panel_begin, int64_t panel_end,
                     int64_t tb_begin, int64_t tb_end) {
  const int64_t round = tb_end - tb_begin < kMaxPrefillBlocks ? tb_end - tb_begin
                                                              : kMaxPrefillBlocks;
  ScratchArray<VecF> states(round * kStateVecs<P, T>);
  for (int64_t t0 = tb_begin; t0 < tb_end; t0 += kMaxPrefillBlocks) {
    const int64_t t1 = t0 + kMaxPrefillBlocks < tb_end ? t0 + kMaxPrefillBlocks : tb_end;
    int64_t p = panel_begin;
    for (; p + P <= panel_end; p += P) QuantPanels<kType, P, T>(c, p, t0, t1, states.data);
    if constexpr (P > 1) {
      for (; p < panel_end; ++p) QuantPanels<kType, 1, T>(c, p, t0, t1, states.data);
    }
  }
}

template <internal::WeightType kType, int T = 1>
void QuantRangeTokens(const internal::QuantMatmulCall& c, int64_t panel_begin, int64_t panel_end,
                      int64_t tb_begin, int64_t tb_end) {
  if constexpr (T <= kQuantBlockTokens) {
    if (c.x.block_tokens != T) {
      return QuantRangeTokens<kType, T + 1>(c, panel_begin, panel_end, tb_begin, tb_end);
    }
    constexpr int P = T == 1 ? kQuantDecodePanels : QuantBlockPanels(T);
    QuantRangeFixed<kType, T, P>(c, panel_begin, panel_end, tb_begin, tb_end);
  }
}

inline void QuantMatmulRange(const internal::QuantMatmulCall& c, int64_t panel_begin,
                             int64_t panel_end, int64_t tb_begin, int64_t tb_end) {
  if (c.weight_type == internal::WeightType::kQ8_0) {
    QuantRangeTokens<internal::WeightType::kQ8_0>(c, panel_begin, panel_end, tb_begin, tb_end);
  } else {
    QuantRangeTokens<internal::WeightType::kQ4_0>(c, panel_begin, panel_end, tb_begin, tb_end);
  }
}

// The throughput loop of MeasureInt8DotPeak (probe.h): `iterations` rounds of
// kChains independent DotU8S8 chains (64 multiply-adds of u8 x s8 into s32
// each: one zmm vpdpbusd, or two ymm ones). kChains: enough chains to hide
// the instruction's latency, few enough to stay in registers.
template <int kChains>
float Int8DotChains(int64_t iterations, float seed) {
  VecI acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = VecI::Set1(static_cast<int32_t>(seed) + i);
  const int8_t ones[4] = {1, 1, 1, 1};
  const VecB a = VecB::Broadcast4(ones);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kChains; ++i) acc[i] = DotU8S8(acc[i], a, a);
  }
  int64_t sum = 0;
  for (int i = 0; i < kChains; ++i) sum += acc[i].ReduceAdd();
  return static_cast<float>(sum);
}
template <int kChains>
inline constexpr int64_t kInt8DotFlopsPerIteration = int64_t{2} * 64 * kChains;

}  // namespace lockstep::kernels::LOCKSTEP_SIMD_NS
