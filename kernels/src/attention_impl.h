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

namespace lockstep::kernels::LOCKSTEP_SIMD_NS {

inline void AttentionHead(const internal::AttentionCall& c, int head, int kv_head) {
  constexpr int kPage = 64;  // kKvPageSize (attention.h)
  const int hd = c.head_dim;
  const int num_dim_vecs = (hd + 15) / 16;
  const int last_dim_lanes = hd - 16 * (num_dim_vecs - 1);
  const float* q = c.q + static_cast<int64_t>(head) * hd;
  const int64_t page_offset = static_cast<int64_t>(kv_head) * hd * kPage;

  VecF o[internal::kMaxHeadDim / 16];
  VecF oc[internal::kMaxHeadDim / 16];
  float m = 0.0f, l = 0.0f;
  alignas(64) float p[kPage];
  const int num_chunks = c.position / kPage + 1;
  const VecF neg_inf = VecF::Set1(-__builtin_inff());

  for (int chunk = 0; chunk < num_chunks; ++chunk) {
    const int valid =
        c.position + 1 - chunk * kPage < kPage ? c.position + 1 - chunk * kPage : kPage;
    const float* kp = c.k_pages[chunk] + page_offset;  // [hd][64]
    const float* vp = c.v_pages[chunk] + page_offset;  // [64][hd]
    const int num_pos_vecs = (valid + 15) / 16;

    // s_j = dot(q, k_j) * scale, 16 positions per vector.
    VecF s[4] = {VecF::Zero(), VecF::Zero(), VecF::Zero(), VecF::Zero()};
    for (int d = 0; d < hd; ++d) {
      const VecF qd = VecF::Set1(q[d]);
      const float* row = kp + static_cast<int64_t>(d) * kPage;
      for (int i = 0; i < num_pos_vecs; ++i) s[i] = VecF::Fma(qd, VecF::Load(row + 16 * i), s[i]);
    }
    // m_c over the valid positions (max is exact: order does not matter).
    VecF mv = neg_inf;
    for (int i = 0; i < num_pos_vecs; ++i) {
      s[i] = s[i] * VecF::Set1(c.scale);
      const int lanes = valid - 16 * i;
      mv = VecF::Max(lanes >= 16 ? s[i] : VecF::Select(Mask::FirstN(lanes), s[i], neg_inf), mv);
    }
    alignas(64) float tmp[16];
    mv.Store(tmp);
    float mc = tmp[0];
    for (int i = 1; i < 16; ++i) mc = tmp[i] > mc ? tmp[i] : mc;

    // p_j = Exp(s_j - m_c); l_c = p_0 + p_1 + ... in order.
    const VecF mcv = VecF::Set1(mc);
    for (int i = 0; i < num_pos_vecs; ++i) ExpV(s[i] - mcv).Store(p + 16 * i);
    float lc = 0.0f;
    for (int j = 0; j < valid; ++j) lc = lc + p[j];

    // o_c[d] = sum_j p_j * v_j[d], one FMA chain per d in increasing j.
    for (int b = 0; b < num_dim_vecs; ++b) oc[b] = VecF::Zero();
    for (int j = 0; j < valid; ++j) {
      const VecF pj = VecF::Set1(p[j]);
      const float* row = vp + static_cast<int64_t>(j) * hd;
      for (int b = 0; b + 1 < num_dim_vecs; ++b)
        oc[b] = VecF::Fma(pj, VecF::Load(row + 16 * b), oc[b]);
      const int b = num_dim_vecs - 1;
      oc[b] = VecF::Fma(pj, VecF::LoadN(row + 16 * b, last_dim_lanes), oc[b]);
    }

    // Online-softmax combination in chunk order.
    if (chunk == 0) {
      m = mc;
      l = lc;
      for (int b = 0; b < num_dim_vecs; ++b) o[b] = oc[b];
    } else {
      const float m_new = mc > m ? mc : m;
      const float a = ExpScalar(m - m_new);
      const float bc = ExpScalar(mc - m_new);
      m = m_new;
      l = l * a + lc * bc;
      const VecF av = VecF::Set1(a), bv = VecF::Set1(bc);
      for (int b = 0; b < num_dim_vecs; ++b) o[b] = o[b] * av + oc[b] * bv;
    }
  }

  float* out = c.out + static_cast<int64_t>(head) * hd;
  const VecF lv = VecF::Set1(l);
  for (int b = 0; b + 1 < num_dim_vecs; ++b) (o[b] / lv).Store(out + 16 * b);
  const int b = num_dim_vecs - 1;
  (o[b] / lv).StoreN(out + 16 * b, last_dim_lanes);
}

inline void AttentionKvHead(const internal::AttentionCall& c, int kv_head) {
  const int group = c.num_heads / c.num_kv_heads;
  for (int h = kv_head * group; h < (kv_head + 1) * group; ++h) AttentionHead(c, h, kv_head);
}

}  // namespace lockstep::kernels::LOCKSTEP_SIMD_NS
