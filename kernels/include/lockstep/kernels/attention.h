// Grouped-query causal attention over a paged KV cache.
//
// KV cache layout. The cache is made of pages of kKvPageSize positions. One
// page of one layer holds, for the num_kv_heads heads held by this rank:
//   K page: [num_kv_heads][head_dim][kKvPageSize] f32  (positions contiguous,
//           so a vector load reads one dimension of 16 or 8 keys)
//   V page: [num_kv_heads][kKvPageSize][head_dim] f32
// Position p of a sequence lives in page table entry p / kKvPageSize at slot
// p % kKvPageSize.
//
// Order (docs/determinism.md), per query token and head, over the keys at
// positions [window_start, position] (window_start 0: causal attention over
// everything; > 0: a sliding window):
//   for each chunk c of kKvPageSize key positions -- the KV pages, from the
//   one holding window_start to the one holding position, in order -- over
//   its positions j inside [window_start, position]:
//     s_j = dot(q, k_j) * scale        dot: one FMA chain over d = 0..head_dim-1
//                                      from +0.0f, then one multiply by scale
//     m_c = max_j s_j;  p_j = Exp(s_j - m_c)
//     l_c = sum_j p_j                  (in increasing j, plain adds from +0.0f)
//     o_c[d] = sum_j p_j * v_j[d]      (FMA chain in increasing j from +0.0f)
//     running state (m, l, o), for the first chunk simply (m_c, l_c, o_c):
//       m' = max(m, m_c); a = Exp(m - m'); b = Exp(m_c - m')
//       l  = l * a + l_c * b           (two multiplies then an add, no FMA)
//       o[d] = o[d] * a + o_c[d] * b   (same)
//   out[d] = o[d] / l
// The computation of one query depends only on its q, its position, its
// window start and the cache contents: prefill and decode, batch 1 and batch
// 32 give the same bits. A window that starts inside a page starts that
// page's chains at its first position; pages wholly before it are not read
// (so the cache need not keep them).
#pragma once

#include <cstddef>
#include <cstdint>

#include "lockstep/kernels/isa.h"

namespace lockstep::kernels {

inline constexpr int kKvPageSize = 64;

struct KvPageShape {
  int num_kv_heads = 0;  // held by this rank
  int head_dim = 0;
  size_t floats_per_page() const {
    return static_cast<size_t>(num_kv_heads) * head_dim * kKvPageSize;
  }
};

// Stores one token's k and v ([num_kv_heads][head_dim] each) into slot
// `slot` (< kKvPageSize) of a K page and a V page.
void KvStore(const KvPageShape& shape, float* k_page, float* v_page, int slot, const float* k,
             const float* v);

struct AttentionQuery {
  const float* q = nullptr;  // [num_heads][head_dim]
  float* out = nullptr;      // [num_heads][head_dim]
  int32_t position = 0;      // attends to keys at positions window_start..position
  // Page table, ceil((position+1)/64) entries; the entries before
  // window_start / 64 are not read.
  const float* const* k_pages = nullptr;
  const float* const* v_pages = nullptr;
  int32_t window_start = 0;  // 0 <= window_start <= position
};

// Query head h (of num_heads held by this rank) reads KV head
// h / (num_heads / shape.num_kv_heads). Parallel (oneTBB, the calling
// arena) over KV heads x blocks of consecutive queries; within a block each
// KV page is read once for all the queries and heads that attend to it
// (docs/kernels.md). The queries may belong to different sequences (page
// tables) and have different positions and windows; every query's bits are
// those of AttentionReference, whatever the batch, block or thread count.
void Attention(Isa isa, const KvPageShape& shape, int num_heads, float scale,
               const AttentionQuery* queries, int64_t num_queries);

void AttentionReference(const KvPageShape& shape, int num_heads, float scale,
                        const AttentionQuery* queries, int64_t num_queries);

}  // namespace lockstep::kernels
