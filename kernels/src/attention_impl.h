// Attention over the paged KV cache, written once over the 16-lane VecF of
// the including build (see simd_scalar.h and the order in attention.h).
// Included only by kernels_<isa>.cc.
//
// Per query and head, for each chunk (= one KV page of 64 positions):
//   scores: lanes are key positions (the K page is [head_dim][64], so one
//           load reads dimension d of 16 keys); per position one FMA chain
//           over d from +0, then one multiply by scale
//   o_c:    lanes are head dimensions (the V page is [64][head_dim]); per
//           dimension one FMA chain over the chunk's positions from +0
//   l_c:    sequential scalar adds over the chunk's positions
// Vectorising across positions or dimensions never splits a chain, so every
// build gives the same bits.
//
// Speed: each of those chains is one FMA per step, so a single head is
// latency-bound. The H query heads that share a KV head (grouped-query
// attention) are processed together: they read the same K and V rows, and
// their H independent chains (times 1..4 dimension vectors for o_c) keep the
// FMA units busy. Grouping heads changes no chain.

namespace lockstep::kernels::LOCKSTEP_SIMD_NS {

inline constexpr int kAttnPage = 64;  // kKvPageSize (attention.h)

// o_c for H heads and dimension vectors [b0, b0 + B):
//   oc[h][b] = sum_j p[h][j] * v_j[16b .. 16b+15] over j in [first, valid), one
//   FMA chain per lane in increasing j from +0. `lanes[b]` is the number of
//   valid lanes of vector b.
template <int H, int B>
void AccumulateValues(const float* vp, int hd, int first, int valid, const float (*p)[kAttnPage],
                      int b0, const int* lanes, VecF (*oc)[internal::kMaxHeadDim / 16]) {
  VecF acc[H][B];
  for (int h = 0; h < H; ++h) {
    for (int b = 0; b < B; ++b) acc[h][b] = VecF::Zero();
  }
  for (int j = first; j < valid; ++j) {
    const float* row = vp + static_cast<int64_t>(j) * hd + 16 * b0;
    VecF v[B];
    for (int b = 0; b < B; ++b) {
      v[b] =
          lanes[b0 + b] == 16 ? VecF::Load(row + 16 * b) : VecF::LoadN(row + 16 * b, lanes[b0 + b]);
    }
    for (int h = 0; h < H; ++h) {
      const VecF ph = VecF::Set1(p[h][j]);
      for (int b = 0; b < B; ++b) acc[h][b] = VecF::Fma(ph, v[b], acc[h][b]);
    }
  }
  for (int h = 0; h < H; ++h) {
    for (int b = 0; b < B; ++b) oc[h][b0 + b] = acc[h][b];
  }
}

// H query heads [head0, head0 + H) that all read KV head `kv_head`.
template <int H>
void AttentionHeads(const internal::AttentionCall& c, int head0, int kv_head) {
  const int hd = c.head_dim;
  const int num_dim_vecs = (hd + 15) / 16;
  int lanes[internal::kMaxHeadDim / 16];
  for (int b = 0; b < num_dim_vecs; ++b) lanes[b] = hd - 16 * b < 16 ? hd - 16 * b : 16;
  const float* q[H];
  for (int h = 0; h < H; ++h) q[h] = c.q + static_cast<int64_t>(head0 + h) * hd;
  const int64_t page_offset = static_cast<int64_t>(kv_head) * hd * kAttnPage;

  VecF o[H][internal::kMaxHeadDim / 16];
  VecF oc[H][internal::kMaxHeadDim / 16];
  float m[H] = {}, l[H] = {};
  alignas(64) float p[H][kAttnPage];
  // Keys [window_start, position]: chunks from the one holding window_start,
  // whose positions before it are skipped (attention.h).
  const int first_chunk = c.window_start / kAttnPage;
  const int num_chunks = c.position / kAttnPage + 1;
  const VecF neg_inf = VecF::Set1(-__builtin_inff());

  for (int chunk = first_chunk; chunk < num_chunks; ++chunk) {
    const int valid = c.position + 1 - chunk * kAttnPage < kAttnPage
                          ? c.position + 1 - chunk * kAttnPage
                          : kAttnPage;
    const int first = chunk == first_chunk ? c.window_start - chunk * kAttnPage : 0;
    const float* kp = c.k_pages[chunk] + page_offset;  // [hd][64]
    const float* vp = c.v_pages[chunk] + page_offset;  // [64][hd]
    const int num_pos_vecs = (valid + 15) / 16;

    // s_j = dot(q, k_j) * scale, 16 positions per vector.
    VecF s[H][4];
    for (int h = 0; h < H; ++h) {
      for (int i = 0; i < 4; ++i) s[h][i] = VecF::Zero();
    }
    for (int d = 0; d < hd; ++d) {
      const float* row = kp + static_cast<int64_t>(d) * kAttnPage;
      VecF kd[4];
      for (int i = 0; i < num_pos_vecs; ++i) kd[i] = VecF::Load(row + 16 * i);
      for (int h = 0; h < H; ++h) {
        const VecF qd = VecF::Set1(q[h][d]);
        for (int i = 0; i < num_pos_vecs; ++i) s[h][i] = VecF::Fma(qd, kd[i], s[h][i]);
      }
    }
    float mc[H];
    for (int h = 0; h < H; ++h) {
      // m_c over the positions [first, valid) (max is exact: order does not
      // matter).
      VecF mv = neg_inf;
      for (int i = 0; i < num_pos_vecs; ++i) {
        s[h][i] = s[h][i] * VecF::Set1(c.scale);
        const int hi = valid - 16 * i;  // lanes [lo, hi) are keys
        const int lo = first - 16 * i;
        if (lo <= 0 && hi >= 16) {
          mv = VecF::Max(s[h][i], mv);
        } else if (lo < 16 && hi > lo) {
          const uint32_t below_hi = hi >= 16 ? 0xffffu : (1u << hi) - 1u;
          const uint32_t below_lo = lo <= 0 ? 0u : (1u << lo) - 1u;
          mv = VecF::Max(VecF::Select(Mask::FromBits(below_hi & ~below_lo), s[h][i], neg_inf), mv);
        }
      }
      alignas(64) float tmp[16];
      mv.Store(tmp);
      mc[h] = tmp[0];
      for (int i = 1; i < 16; ++i) mc[h] = tmp[i] > mc[h] ? tmp[i] : mc[h];
      // p_j = Exp(s_j - m_c).
      const VecF mcv = VecF::Set1(mc[h]);
      for (int i = 0; i < num_pos_vecs; ++i) ExpV(s[h][i] - mcv).Store(p[h] + 16 * i);
    }
    // l_c = p_first + p_first+1 + ... in order (H independent chains).
    float lc[H];
    for (int h = 0; h < H; ++h) lc[h] = 0.0f;
    for (int j = first; j < valid; ++j) {
      for (int h = 0; h < H; ++h) lc[h] = lc[h] + p[h][j];
    }
    // o_c, several dimension vectors per pass so that H * B chains run side
    // by side.
    constexpr int kB = H >= 4 ? 2 : 4;
    int b = 0;
    for (; b + kB <= num_dim_vecs; b += kB) {
      AccumulateValues<H, kB>(vp, hd, first, valid, p, b, lanes, oc);
    }
    for (; b < num_dim_vecs; ++b) AccumulateValues<H, 1>(vp, hd, first, valid, p, b, lanes, oc);

    // Online-softmax combination in chunk order.
    for (int h = 0; h < H; ++h) {
      if (chunk == first_chunk) {
        m[h] = mc[h];
        l[h] = lc[h];
        for (int i = 0; i < num_dim_vecs; ++i) o[h][i] = oc[h][i];
      } else {
        const float m_new = mc[h] > m[h] ? mc[h] : m[h];
        const float a = ExpScalar(m[h] - m_new);
        const float bc = ExpScalar(mc[h] - m_new);
        m[h] = m_new;
        l[h] = l[h] * a + lc[h] * bc;
        const VecF av = VecF::Set1(a), bv = VecF::Set1(bc);
        for (int i = 0; i < num_dim_vecs; ++i) o[h][i] = o[h][i] * av + oc[h][i] * bv;
      }
    }
  }

  for (int h = 0; h < H; ++h) {
    float* out = c.out + static_cast<int64_t>(head0 + h) * hd;
    const VecF lv = VecF::Set1(l[h]);
    for (int i = 0; i < num_dim_vecs; ++i) (o[h][i] / lv).StoreN(out + 16 * i, lanes[i]);
  }
}

// All query heads that read KV head `kv_head`, four (then two, then one) at
// a time.
inline void AttentionKvHead(const internal::AttentionCall& c, int kv_head) {
  const int group = c.num_heads / c.num_kv_heads;
  int h = kv_head * group;
  const int end = h + group;
  for (; h + 4 <= end; h += 4) AttentionHeads<4>(c, h, kv_head);
  for (; h + 2 <= end; h += 2) AttentionHeads<2>(c, h, kv_head);
  for (; h < end; ++h) AttentionHeads<1>(c, h, kv_head);
}

}  // namespace lockstep::kernels::LOCKSTEP_SIMD_NS
