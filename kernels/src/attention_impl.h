// Attention over the paged KV cache, written once over the 16-lane VecF of
// the including build (see simd_scalar.h and the order in attention.h).
// Included only by kernels_<isa>.cc, which define kAttnPosVecsPerPass and
// kAttnValueVecs (register blocking) before including it.
//
// Per (query, head) pair and chunk (= one KV page of 64 positions):
//   scores: lanes are key positions (the K page is [head_dim][64], so one
//           load reads dimension d of 16 keys); per position one FMA chain
//           over d from +0, then one multiply by scale
//   o_c:    lanes are head dimensions (the V page is [64][head_dim]); per
//           dimension one FMA chain over the chunk's positions from +0
//   l_c:    sequential scalar adds over the chunk's positions
// Vectorising across positions or dimensions never splits a chain, so every
// build gives the same bits.
//
// Speed. Each of those chains is one FMA per step, so one pair alone is
// latency-bound; and a pair reads a whole KV page (32 KiB at head_dim 64)
// for 16 K multiply-adds, so one query alone is bound by the cache it
// streams. Both are answered by grouping pairs, which changes no chain:
// - AttentionQueries takes a block of queries for one KV head and walks the
//   chunks in the outer loop: each page, loaded once, serves every (query,
//   head) pair of the block that reads it (all query heads of the KV head
//   -- grouped-query attention -- and all queries of the block), while it
//   stays in L1. The running state (m, l, o) of every pair lives in memory
//   between chunks (a store and a load change no bits).
// - The pairs that read the same page over the same positions (all of them
//   for a full page; for the diagonal page, the heads of one query) run 4 at
//   a time (ChunkPairs<4>): 4 x kAttnPosVecsPerPass score chains and
//   4 x kAttnValueVecs o_c chains side by side keep the FMA units busy; the
//   l_c chain runs inside the o_c loop.
// Which pairs run together, in which group and on which thread changes no
// operation of any pair.

namespace lockstep::kernels::LOCKSTEP_SIMD_NS {

inline constexpr int kAttnPage = 64;  // kKvPageSize (attention.h)
inline constexpr int kAttnMaxDimVecs = internal::kMaxHeadDim / 16;

// The running state (m, l, o) of one (query, head) pair across chunks.
struct AttnPair {
  const float* q = nullptr;  // [head_dim]
  float* o = nullptr;        // [num_dim_vecs * 16]: o, padded to whole vectors
  float m = 0.0f;
  float l = 0.0f;
  bool started = false;  // a chunk has been combined in
};

// One chunk as the pairs of a group see it.
struct AttnChunk {
  const float* kp = nullptr;  // [head_dim][64] of the KV head
  const float* vp = nullptr;  // [64][head_dim]
  int hd = 0;
  int num_dim_vecs = 0;
  int tail_lanes = 16;  // lanes of the last dimension vector
  int first = 0;        // positions [first, valid) of the page are keys
  int valid = 0;
  float scale = 0.0f;
};

// s[h][i] = dot(q_h, k_j) over d = 0..hd-1 from +0 (one FMA chain per lane),
// for the NP position vectors of the page, in passes of kAttnPosVecsPerPass
// vectors (a pass runs its H x P chains side by side; each chain is whole).
template <int H, int NP>
inline void Scores(const AttnChunk& c, const float* const* q, VecF (*s)[4]) {
  constexpr int P = NP < kAttnPosVecsPerPass ? NP : kAttnPosVecsPerPass;
  static_assert(NP % P == 0, "passes of whole position vectors");
#pragma GCC unroll 4
  for (int i0 = 0; i0 < NP; i0 += P) {
    VecF acc[H][P];
#pragma GCC unroll 16
    for (int h = 0; h < H; ++h) {
#pragma GCC unroll 16
      for (int i = 0; i < P; ++i) acc[h][i] = VecF::Zero();
    }
    const float* row = c.kp + 16 * i0;
    for (int d = 0; d < c.hd; ++d, row += kAttnPage) {
      VecF k[P];
#pragma GCC unroll 16
      for (int i = 0; i < P; ++i) k[i] = VecF::Load(row + 16 * i);
#pragma GCC unroll 16
      for (int h = 0; h < H; ++h) {
        const VecF qd = VecF::Set1(q[h][d]);
#pragma GCC unroll 16
        for (int i = 0; i < P; ++i) acc[h][i] = VecF::Fma(qd, k[i], acc[h][i]);
      }
    }
#pragma GCC unroll 16
    for (int h = 0; h < H; ++h) {
#pragma GCC unroll 16
      for (int i = 0; i < P; ++i) s[h][i0 + i] = acc[h][i];
    }
  }
}

// o_c of H pairs for the dimension vectors [b0, b0 + B), combined into the
// pairs' running o:
//   oc[b] = sum_j p[h][j] * v_j[16(b0+b) ..] over j in [first, valid), one
//           FMA chain per lane in increasing j from +0;
//   o = started ? o * a + oc * bc : oc     (two multiplies then an add).
// kSumL: also l_c[h] = p[h][first] + p[h][first+1] + ... in increasing j
// from +0 (the chain runs inside this loop; its adds are the same).
// kTail: the last of the B vectors has c.tail_lanes lanes.
template <int H, int B, bool kSumL, bool kTail>
inline void Values(const AttnChunk& c, const float (*p)[kAttnPage], int b0, AttnPair* const* pr,
                   const float* a, const float* bc, float* lc) {
  VecF acc[H][B];
#pragma GCC unroll 16
  for (int h = 0; h < H; ++h) {
#pragma GCC unroll 16
    for (int b = 0; b < B; ++b) acc[h][b] = VecF::Zero();
  }
  float lsum[H];
#pragma GCC unroll 16
  for (int h = 0; h < H; ++h) lsum[h] = 0.0f;
  const float* row = c.vp + static_cast<int64_t>(c.first) * c.hd + 16 * b0;
  for (int j = c.first; j < c.valid; ++j, row += c.hd) {
    VecF v[B];
#pragma GCC unroll 16
    for (int b = 0; b < B; ++b) {
      v[b] =
          kTail && b == B - 1 ? VecF::LoadN(row + 16 * b, c.tail_lanes) : VecF::Load(row + 16 * b);
    }
#pragma GCC unroll 16
    for (int h = 0; h < H; ++h) {
      const VecF ph = VecF::Set1(p[h][j]);
#pragma GCC unroll 16
      for (int b = 0; b < B; ++b) acc[h][b] = VecF::Fma(ph, v[b], acc[h][b]);
      if constexpr (kSumL) lsum[h] = lsum[h] + p[h][j];
    }
  }
#pragma GCC unroll 16
  for (int h = 0; h < H; ++h) {
    if constexpr (kSumL) lc[h] = lsum[h];
    float* o = pr[h]->o + 16 * b0;
    if (pr[h]->started) {
      const VecF av = VecF::Set1(a[h]), bv = VecF::Set1(bc[h]);
#pragma GCC unroll 16
      for (int b = 0; b < B; ++b) (VecF::Load(o + 16 * b) * av + acc[h][b] * bv).Store(o + 16 * b);
    } else {
#pragma GCC unroll 16
      for (int b = 0; b < B; ++b) acc[h][b].Store(o + 16 * b);
    }
  }
}

// One chunk for H pairs that read the same page over the same positions:
// scores, m_c, p, then l_c and o_c combined into the running state.
// NP = ceil(c.valid / 16) position vectors; kMasked: not a whole page (some
// lanes of the NP vectors are not keys).
template <int H, int NP, bool kMasked>
inline void ChunkPairs(const AttnChunk& c, AttnPair* const* pr) {
  const float* q[H];
#pragma GCC unroll 16
  for (int h = 0; h < H; ++h) q[h] = pr[h]->q;
  VecF s[H][4];
  Scores<H, NP>(c, q, s);

  const VecF neg_inf = VecF::Set1(-__builtin_inff());
  const VecF scale = VecF::Set1(c.scale);
  alignas(64) float p[H][kAttnPage];
  float a[H], bc[H], mcs[H];
  alignas(64) float lanes[H][16];
  static_assert(2 * H <= 16, "a and b of every pair in one vector");
#pragma GCC unroll 16
  for (int h = 0; h < H; ++h) {
    // m_c over the positions [first, valid) (max is exact: order does not
    // matter).
    VecF mv = neg_inf;
#pragma GCC unroll 16
    for (int i = 0; i < NP; ++i) {
      s[h][i] = s[h][i] * scale;
      if constexpr (!kMasked) {
        mv = VecF::Max(s[h][i], mv);
      } else {
        const int hi = c.valid - 16 * i;  // lanes [lo, hi) are keys
        const int lo = c.first - 16 * i;
        if (lo <= 0 && hi >= 16) {
          mv = VecF::Max(s[h][i], mv);
        } else if (lo < 16 && hi > lo) {
          const uint32_t below_hi = hi >= 16 ? 0xffffu : (1u << hi) - 1u;
          const uint32_t below_lo = lo <= 0 ? 0u : (1u << lo) - 1u;
          mv = VecF::Max(VecF::Select(Mask::FromBits(below_hi & ~below_lo), s[h][i], neg_inf), mv);
        }
      }
    }
    mv.Store(lanes[h]);
  }
  // m_c = the lanes' maximum, lane 0 to 15 (the H chains side by side).
#pragma GCC unroll 16
  for (int h = 0; h < H; ++h) mcs[h] = lanes[h][0];
  for (int i = 1; i < 16; ++i) {
#pragma GCC unroll 16
    for (int h = 0; h < H; ++h) mcs[h] = lanes[h][i] > mcs[h] ? lanes[h][i] : mcs[h];
  }
  // p_j = Exp(s_j - m_c).
#pragma GCC unroll 16
  for (int h = 0; h < H; ++h) {
    const VecF mcv = VecF::Set1(mcs[h]);
#pragma GCC unroll 16
    for (int i = 0; i < NP; ++i) ExpV(s[h][i] - mcv).Store(p[h] + 16 * i);
  }
  // Online-softmax factors (attention.h): m' = max(m, m_c), a = Exp(m - m'),
  // b = Exp(m_c - m'); the first chunk of a pair takes (m_c, l_c, o_c) as
  // they are. The 2H exponentials are the lanes of one ExpV (lane by lane
  // the same operations as ExpScalar, one call each).
  alignas(64) float args[16] = {};
#pragma GCC unroll 16
  for (int h = 0; h < H; ++h) {
    AttnPair& st = *pr[h];
    if (st.started) {
      const float m_new = mcs[h] > st.m ? mcs[h] : st.m;
      args[2 * h] = st.m - m_new;
      args[2 * h + 1] = mcs[h] - m_new;
      st.m = m_new;
    } else {
      st.m = mcs[h];
    }
  }
  alignas(64) float exps[16];
  ExpV(VecF::Load(args)).Store(exps);
#pragma GCC unroll 16
  for (int h = 0; h < H; ++h) {
    a[h] = exps[2 * h];
    bc[h] = exps[2 * h + 1];
  }

  // o_c (and l_c in the first pass) in passes of kAttnValueVecs dimension
  // vectors, then the tail vector.
  float lc[H] = {};  // set by the first pass
  constexpr int B = kAttnValueVecs;
  const int whole = c.tail_lanes == 16 ? c.num_dim_vecs : c.num_dim_vecs - 1;
  int b = 0;
  bool summed = false;
  for (; b + B <= whole; b += B) {
    if (!summed) {
      Values<H, B, true, false>(c, p, b, pr, a, bc, lc);
      summed = true;
    } else {
      Values<H, B, false, false>(c, p, b, pr, a, bc, lc);
    }
  }
  for (; b < c.num_dim_vecs; ++b) {
    const bool tail = b == c.num_dim_vecs - 1 && c.tail_lanes < 16;
    if (!summed) {
      if (tail) {
        Values<H, 1, true, true>(c, p, b, pr, a, bc, lc);
      } else {
        Values<H, 1, true, false>(c, p, b, pr, a, bc, lc);
      }
      summed = true;
    } else if (tail) {
      Values<H, 1, false, true>(c, p, b, pr, a, bc, lc);
    } else {
      Values<H, 1, false, false>(c, p, b, pr, a, bc, lc);
    }
  }
#pragma GCC unroll 16
  for (int h = 0; h < H; ++h) {
    AttnPair& st = *pr[h];
    st.l = st.started ? st.l * a[h] + lc[h] * bc[h] : lc[h];
    st.started = true;
  }
}

template <int H>
inline void ChunkPairsAnyShape(const AttnChunk& c, AttnPair* const* pr) {
  if (c.first == 0 && c.valid == kAttnPage) {
    ChunkPairs<H, 4, false>(c, pr);
    return;
  }
  switch ((c.valid + 15) / 16) {
    case 1:
      ChunkPairs<H, 1, true>(c, pr);
      break;
    case 2:
      ChunkPairs<H, 2, true>(c, pr);
      break;
    case 3:
      ChunkPairs<H, 3, true>(c, pr);
      break;
    default:
      ChunkPairs<H, 4, true>(c, pr);
      break;
  }
}

// Scratch of one thread for AttentionQueries (grown, never shrunk).
struct AttnScratch {
  std::vector<float> o;
  std::vector<AttnPair> pairs;
  std::vector<AttnPair*> members;
  std::vector<int> group_of, group_fill, group_begin;
  std::vector<AttnChunk> groups;
};

// Every query head that reads KV head `kv_head`, for the queries
// calls[0, num_calls) (which share num_heads, num_kv_heads, head_dim and
// scale; their positions, windows and page tables are their own).
inline void AttentionQueries(const internal::AttentionCall* calls, int num_calls, int kv_head) {
  const internal::AttentionCall& c0 = calls[0];
  const int hd = c0.head_dim;
  const int group = c0.num_heads / c0.num_kv_heads;
  const int num_dim_vecs = (hd + 15) / 16;
  const int stride = 16 * num_dim_vecs;
  const int num_pairs = num_calls * group;
  const int64_t page_offset = static_cast<int64_t>(kv_head) * hd * kAttnPage;

  thread_local AttnScratch scratch;
  AttnScratch& w = scratch;
  if (w.o.size() < static_cast<size_t>(num_pairs) * stride) {
    w.o.resize(static_cast<size_t>(num_pairs) * stride);
  }
  w.pairs.assign(static_cast<size_t>(num_pairs), AttnPair{});
  w.members.resize(static_cast<size_t>(num_pairs));
  w.group_of.resize(static_cast<size_t>(num_calls));
  int lo = c0.window_start / kAttnPage, hi = c0.position / kAttnPage;
  for (int i = 0; i < num_calls; ++i) {
    lo = calls[i].window_start / kAttnPage < lo ? calls[i].window_start / kAttnPage : lo;
    hi = calls[i].position / kAttnPage > hi ? calls[i].position / kAttnPage : hi;
    for (int h = 0; h < group; ++h) {
      AttnPair& pair = w.pairs[static_cast<size_t>(i * group + h)];
      pair.q = calls[i].q + static_cast<int64_t>(kv_head * group + h) * hd;
      pair.o = w.o.data() + static_cast<size_t>(i * group + h) * stride;
    }
  }

  for (int chunk = lo; chunk <= hi; ++chunk) {
    // The pairs that read this chunk, grouped by (page, first, valid): a
    // group's pairs read the same keys and values; its members are listed
    // query by query, head by head.
    w.groups.clear();
    for (int i = 0; i < num_calls; ++i) {
      const internal::AttentionCall& c = calls[i];
      w.group_of[static_cast<size_t>(i)] = -1;
      const int first_chunk = c.window_start / kAttnPage;
      if (chunk < first_chunk || chunk > c.position / kAttnPage) continue;
      AttnChunk key;
      key.kp = c.k_pages[chunk] + page_offset;
      key.vp = c.v_pages[chunk] + page_offset;
      key.first = chunk == first_chunk ? c.window_start - chunk * kAttnPage : 0;
      key.valid = c.position + 1 - chunk * kAttnPage < kAttnPage
                      ? c.position + 1 - chunk * kAttnPage
                      : kAttnPage;
      int g = 0;
      const int num_groups = static_cast<int>(w.groups.size());
      while (g < num_groups && !(w.groups[static_cast<size_t>(g)].kp == key.kp &&
                                 w.groups[static_cast<size_t>(g)].vp == key.vp &&
                                 w.groups[static_cast<size_t>(g)].first == key.first &&
                                 w.groups[static_cast<size_t>(g)].valid == key.valid)) {
        ++g;
      }
      if (g == num_groups) {
        key.hd = hd;
        key.num_dim_vecs = num_dim_vecs;
        key.tail_lanes = hd - 16 * (num_dim_vecs - 1);
        key.scale = c0.scale;
        w.groups.push_back(key);
      }
      w.group_of[static_cast<size_t>(i)] = g;
    }
    const int num_groups = static_cast<int>(w.groups.size());
    w.group_fill.assign(static_cast<size_t>(num_groups) + 1, 0);
    for (int i = 0; i < num_calls; ++i) {
      const int g = w.group_of[static_cast<size_t>(i)];
      if (g >= 0) w.group_fill[static_cast<size_t>(g) + 1] += group;
    }
    for (int g = 0; g < num_groups; ++g) {
      w.group_fill[static_cast<size_t>(g) + 1] += w.group_fill[static_cast<size_t>(g)];
    }
    w.group_begin = w.group_fill;  // group g: members [begin[g], begin[g+1])
    const std::vector<int>& begin = w.group_begin;
    for (int i = 0; i < num_calls; ++i) {
      const int g = w.group_of[static_cast<size_t>(i)];
      if (g < 0) continue;
      for (int h = 0; h < group; ++h) {
        w.members[static_cast<size_t>(w.group_fill[static_cast<size_t>(g)]++)] =
            &w.pairs[static_cast<size_t>(i * group + h)];
      }
    }
    // While this chunk's groups run, the next chunk's K and V (of the first
    // query that reads one) are prefetched into L2 a slice per group call:
    // a block's walk then finds each page in L2 however long the prompt.
    const char* next_k = nullptr;
    const char* next_v = nullptr;
    for (int i = 0; i < num_calls && next_k == nullptr; ++i) {
      if (chunk + 1 <= calls[i].position / kAttnPage &&
          chunk + 1 >= calls[i].window_start / kAttnPage) {
        next_k = reinterpret_cast<const char*>(calls[i].k_pages[chunk + 1] + page_offset);
        next_v = reinterpret_cast<const char*>(calls[i].v_pages[chunk + 1] + page_offset);
      }
    }
    int group_calls = 0;
    for (int g = 0; g < num_groups; ++g) {
      const int n = begin[static_cast<size_t>(g) + 1] - begin[static_cast<size_t>(g)];
      group_calls += n / 4 + (n % 4) / 2 + n % 2;
    }
    const int64_t tile_lines = static_cast<int64_t>(hd) * kAttnPage * 4 / 64;  // of K, as of V
    const int64_t step = group_calls > 0 ? (2 * tile_lines + group_calls - 1) / group_calls : 0;
    int64_t line = 0;
    auto prefetch_slice = [&] {
      if (next_k == nullptr) return;
      for (int64_t e = line + step < 2 * tile_lines ? line + step : 2 * tile_lines; line < e;
           ++line) {
        const char* at = line < tile_lines ? next_k + 64 * line : next_v + 64 * (line - tile_lines);
        __builtin_prefetch(at, 0, 2);
      }
    };
    for (int g = 0; g < num_groups; ++g) {
      const AttnChunk& c = w.groups[static_cast<size_t>(g)];
      AttnPair* const* m = w.members.data() + begin[static_cast<size_t>(g)];
      const int n = begin[static_cast<size_t>(g) + 1] - begin[static_cast<size_t>(g)];
      int k = 0;
      for (; k + 4 <= n; k += 4) {
        prefetch_slice();
        ChunkPairsAnyShape<4>(c, m + k);
      }
      for (; k + 2 <= n; k += 2) {
        prefetch_slice();
        ChunkPairsAnyShape<2>(c, m + k);
      }
      for (; k < n; ++k) {
        prefetch_slice();
        ChunkPairsAnyShape<1>(c, m + k);
      }
    }
  }

  // out = o / l.
  for (int i = 0; i < num_calls; ++i) {
    for (int h = 0; h < group; ++h) {
      const AttnPair& pair = w.pairs[static_cast<size_t>(i * group + h)];
      float* out = calls[i].out + static_cast<int64_t>(kv_head * group + h) * hd;
      const VecF lv = VecF::Set1(pair.l);
      for (int b = 0; b < num_dim_vecs; ++b) {
        (VecF::Load(pair.o + 16 * b) / lv)
            .StoreN(out + 16 * b, b + 1 < num_dim_vecs ? 16 : hd - 16 * b);
      }
    }
  }
}

}  // namespace lockstep::kernels::LOCKSTEP_SIMD_NS
