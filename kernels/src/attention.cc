// Attention: KV stores, dispatch, threading (KV heads x blocks of queries) and the
// naive reference, which spells out the order of attention.h in plain loops.
#include "lockstep/kernels/attention.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernel_table_dispatch.h"
#include "lockstep/base/check.h"
#include "lockstep/kernels/activation.h"

namespace lockstep::kernels {
namespace {

// At most this many (query, head) pairs of one KV head per kernel call
// (Attention): at head_dim 64 their running state is 64 KiB (in L2), and each
// K and V page (32 KiB) is read from memory once for all of them.
constexpr int kAttentionBlockPairs = 256;
// ... but blocks small enough for this many tasks per thread (the causal
// triangle makes later blocks dearer).
constexpr int64_t kAttentionTasksPerThread = 4;

void CheckShape(const KvPageShape& shape, int num_heads) {
  LOCKSTEP_CHECK(
      shape.num_kv_heads > 0 && shape.head_dim > 0 && shape.head_dim <= internal::kMaxHeadDim,
      "Attention: bad KV shape ({} KV heads, head_dim {}; at most {})", shape.num_kv_heads,
      shape.head_dim, internal::kMaxHeadDim);
  LOCKSTEP_CHECK(num_heads > 0 && num_heads % shape.num_kv_heads == 0,
                 "Attention: {} query heads is not a multiple of {} KV heads", num_heads,
                 shape.num_kv_heads);
}

}  // namespace

void KvStore(const KvPageShape& shape, float* k_page, float* v_page, int slot, const float* k,
             const float* v) {
  LOCKSTEP_CHECK(slot >= 0 && slot < kKvPageSize, "KvStore: slot {} out of [0, {})", slot,
                 kKvPageSize);
  const int hd = shape.head_dim;
  for (int g = 0; g < shape.num_kv_heads; ++g) {
    const size_t head = static_cast<size_t>(g) * hd * kKvPageSize;
    for (int d = 0; d < hd; ++d) {
      k_page[head + static_cast<size_t>(d) * kKvPageSize + slot] = k[g * hd + d];
    }
    std::copy(v + g * hd, v + (g + 1) * hd, v_page + head + static_cast<size_t>(slot) * hd);
  }
}

void Attention(Isa isa, const KvPageShape& shape, int num_heads, float scale,
               const AttentionQuery* queries, int64_t num_queries) {
  CheckShape(shape, num_heads);
  if (num_queries <= 0) return;
  const internal::KernelTable& table = internal::KernelsFor(isa);
  const int kv = shape.num_kv_heads;
  const int group = num_heads / kv;
  // Blocks of consecutive queries of one sequence (the same page tables),
  // up to kAttentionBlockPairs (query, head) pairs per KV head: the kernel
  // loads each KV page once for all of a block's pairs that read it
  // (attention_impl.h). Queries of different sequences share no page, so
  // they go to blocks of their own (a decode batch: one query per block, each
  // walking its own pages as a stream). Tasks are (KV head, block), KV head
  // major, so that a thread's consecutive blocks read the same KV head's
  // pages. No query's result depends on its block or thread.
  const int64_t threads = tbb::this_task_arena::max_concurrency();
  const int64_t block = std::clamp<int64_t>(num_queries * kv / (kAttentionTasksPerThread * threads),
                                            1, std::max(1, kAttentionBlockPairs / group));
  std::vector<int64_t> starts;  // block b: queries [starts[b], starts[b + 1])
  for (int64_t i = 0; i < num_queries; ++i) {
    const AttentionQuery& q = queries[i];
    LOCKSTEP_CHECK(q.position >= 0 && q.window_start >= 0 && q.window_start <= q.position,
                   "Attention: position {} window start {}", q.position, q.window_start);
    if (starts.empty() || i - starts.back() == block ||
        q.k_pages != queries[starts.back()].k_pages ||
        q.v_pages != queries[starts.back()].v_pages) {
      starts.push_back(i);
    }
  }
  const int64_t num_blocks = static_cast<int64_t>(starts.size());
  starts.push_back(num_queries);
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, num_blocks * kv), [&](const tbb::blocked_range<int64_t>& r) {
        internal::AttentionCall calls[kAttentionBlockPairs];
        for (int64_t t = r.begin(); t < r.end(); ++t) {
          const int kv_head = static_cast<int>(t / num_blocks);
          const int64_t q0 = starts[static_cast<size_t>(t % num_blocks)];
          const int n = static_cast<int>(starts[static_cast<size_t>(t % num_blocks) + 1] - q0);
          for (int i = 0; i < n; ++i) {
            const AttentionQuery& q = queries[q0 + i];
            internal::AttentionCall& call = calls[i];
            call.num_kv_heads = kv;
            call.head_dim = shape.head_dim;
            call.num_heads = num_heads;
            call.scale = scale;
            call.q = q.q;
            call.out = q.out;
            call.position = q.position;
            call.window_start = q.window_start;
            call.k_pages = q.k_pages;
            call.v_pages = q.v_pages;
          }
          table.attention(calls, n, kv_head);
        }
      });
}

void AttentionReference(const KvPageShape& shape, int num_heads, float scale,
                        const AttentionQuery* queries, int64_t num_queries) {
  CheckShape(shape, num_heads);
  const int hd = shape.head_dim;
  const int group = num_heads / shape.num_kv_heads;
  std::vector<float> s(kKvPageSize), o(hd), oc(hd);
  for (int64_t qi = 0; qi < num_queries; ++qi) {
    const AttentionQuery& query = queries[qi];
    for (int h = 0; h < num_heads; ++h) {
      const int g = h / group;
      const float* q = query.q + h * hd;
      float m = 0.0f, l = 0.0f;
      const int first_chunk = query.window_start / kKvPageSize;
      const int num_chunks = query.position / kKvPageSize + 1;
      for (int c = first_chunk; c < num_chunks; ++c) {
        const int valid = std::min(kKvPageSize, query.position + 1 - c * kKvPageSize);
        const int first = c == first_chunk ? query.window_start - c * kKvPageSize : 0;
        const float* kp = query.k_pages[c] + static_cast<size_t>(g) * hd * kKvPageSize;
        const float* vp = query.v_pages[c] + static_cast<size_t>(g) * hd * kKvPageSize;
        for (int j = first; j < valid; ++j) {
          float acc = 0.0f;
          for (int d = 0; d < hd; ++d) acc = std::fma(q[d], kp[d * kKvPageSize + j], acc);
          s[j] = acc * scale;
        }
        float mc = s[first];
        for (int j = first + 1; j < valid; ++j) mc = s[j] > mc ? s[j] : mc;
        float lc = 0.0f;
        for (int j = first; j < valid; ++j) {
          s[j] = Exp(s[j] - mc);
          lc = lc + s[j];
        }
        std::fill(oc.begin(), oc.end(), 0.0f);
        for (int j = first; j < valid; ++j) {
          for (int d = 0; d < hd; ++d) oc[d] = std::fma(s[j], vp[j * hd + d], oc[d]);
        }
        if (c == first_chunk) {
          m = mc;
          l = lc;
          o = oc;
        } else {
          const float m_new = mc > m ? mc : m;
          const float a = Exp(m - m_new), b = Exp(mc - m_new);
          m = m_new;
          l = l * a + lc * b;
          for (int d = 0; d < hd; ++d) o[d] = o[d] * a + oc[d] * b;
        }
      }
      for (int d = 0; d < hd; ++d) query.out[h * hd + d] = o[d] / l;
    }
  }
}

}  // namespace lockstep::kernels
