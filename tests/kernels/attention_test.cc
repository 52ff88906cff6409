// Attention over the paged KV cache: every Isa bit-exact against the
// reference for positions around page boundaries and GQA groupings; prefill
// (all positions in one call) equals decode (one call per position); thread
// count; the reference against double-precision softmax attention; sliding
// windows (window starts inside and at page boundaries, keys outside the
// window never read); long prompts (2k positions) and mixed batches, which
// go through the blocked path, against the reference.
#include "lockstep/kernels/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernel_test_util.h"

namespace lockstep::kernels {
namespace {

using testing::RandomVector;
using testing::SameBits;
using testing::SupportedIsas;
using testing::WithThreads;

struct Config {
  int num_heads, num_kv_heads, head_dim;
};

// A sequence of `length` positions in a paged cache. Unused slots hold NaN so
// a kernel that reads past the valid positions poisons its output.
struct Cache {
  KvPageShape shape;
  std::vector<std::vector<float>> k_pages, v_pages;
  std::vector<const float*> k_table, v_table;
  std::vector<float> k_all, v_all;  // [position][kv_head][head_dim]

  Cache(const KvPageShape& s, int length, uint32_t seed) : shape(s) {
    const int num_pages = (length + kKvPageSize - 1) / kKvPageSize;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (int p = 0; p < num_pages; ++p) {
      k_pages.emplace_back(shape.floats_per_page(), nan);
      v_pages.emplace_back(shape.floats_per_page(), nan);
    }
    const size_t per_token = static_cast<size_t>(shape.num_kv_heads) * shape.head_dim;
    k_all = RandomVector(per_token * length, seed);
    v_all = RandomVector(per_token * length, seed + 1);
    for (int pos = 0; pos < length; ++pos) {
      KvStore(shape, k_pages[pos / kKvPageSize].data(), v_pages[pos / kKvPageSize].data(),
              pos % kKvPageSize, k_all.data() + pos * per_token, v_all.data() + pos * per_token);
    }
    for (int p = 0; p < num_pages; ++p) {
      k_table.push_back(k_pages[p].data());
      v_table.push_back(v_pages[p].data());
    }
  }
};

struct Queries {
  std::vector<float> q, out;
  std::vector<AttentionQuery> list;
  Queries(const Cache& cache, int num_heads, const std::vector<int32_t>& positions, uint32_t seed) {
    const size_t per = static_cast<size_t>(num_heads) * cache.shape.head_dim;
    q = RandomVector(per * positions.size(), seed, 0.5f);
    out.assign(per * positions.size(), -7.0f);
    for (size_t i = 0; i < positions.size(); ++i) {
      list.push_back({q.data() + i * per, out.data() + i * per, positions[i], cache.k_table.data(),
                      cache.v_table.data()});
    }
  }
};

const Config kConfigs[] = {{8, 2, 64}, {4, 4, 48}, {6, 1, 80}, {2, 1, 20}, {4, 2, 128}};
const std::vector<int32_t> kPositions = {0, 1, 62, 63, 64, 65, 127, 128, 130, 199};

TEST(AttentionTest, EveryIsaEqualsReference) {
  for (const Config& c : kConfigs) {
    const Cache cache({c.num_kv_heads, c.head_dim}, 200, 1);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    Queries expected(cache, c.num_heads, kPositions, 2);
    AttentionReference(cache.shape, c.num_heads, scale, expected.list.data(),
                       static_cast<int64_t>(expected.list.size()));
    for (Isa isa : SupportedIsas()) {
      Queries got(cache, c.num_heads, kPositions, 2);
      Attention(isa, cache.shape, c.num_heads, scale, got.list.data(),
                static_cast<int64_t>(got.list.size()));
      EXPECT_TRUE(SameBits(got.out, expected.out))
          << IsaName(isa) << " heads " << c.num_heads << "/" << c.num_kv_heads << " head_dim "
          << c.head_dim;
    }
  }
}

TEST(AttentionTest, PrefillEqualsDecodeAndIgnoresNeighbours) {
  const Config c = {8, 2, 64};
  const Cache cache({c.num_kv_heads, c.head_dim}, 150, 3);
  const Cache other({c.num_kv_heads, c.head_dim}, 90, 4);
  std::vector<int32_t> all(150);
  for (int i = 0; i < 150; ++i) all[i] = i;
  for (Isa isa : SupportedIsas()) {
    // Prefill: every position of the prompt in one call.
    Queries prefill(cache, c.num_heads, all, 5);
    Attention(isa, cache.shape, c.num_heads, 0.125f, prefill.list.data(), 150);
    const size_t per = static_cast<size_t>(c.num_heads) * c.head_dim;
    for (int32_t pos : {0, 63, 64, 100, 149}) {
      // Decode: that position alone ...
      Queries decode(cache, c.num_heads, {pos}, 5);
      std::copy(prefill.q.begin() + pos * per, prefill.q.begin() + (pos + 1) * per,
                decode.q.begin());
      Attention(isa, cache.shape, c.num_heads, 0.125f, decode.list.data(), 1);
      EXPECT_TRUE(SameBits(decode.out.data(), prefill.out.data() + pos * per, per))
          << IsaName(isa) << " position " << pos;
      // ... and batched after queries of another sequence.
      Queries mixed(other, c.num_heads, {89, 10, 0}, 6);
      Queries mine(cache, c.num_heads, {pos}, 5);
      std::copy(prefill.q.begin() + pos * per, prefill.q.begin() + (pos + 1) * per, mine.q.begin());
      std::vector<AttentionQuery> batch = mixed.list;
      batch.push_back(mine.list[0]);
      Attention(isa, cache.shape, c.num_heads, 0.125f, batch.data(), 4);
      EXPECT_TRUE(SameBits(mine.out.data(), prefill.out.data() + pos * per, per))
          << IsaName(isa) << " position " << pos << " in a mixed batch";
    }
  }
}

TEST(AttentionTest, ThreadCountDoesNotChangeBits) {
  const Config c = {8, 2, 64};
  const Cache cache({c.num_kv_heads, c.head_dim}, 300, 7);
  std::vector<int32_t> positions;
  for (int i = 0; i < 300; i += 7) positions.push_back(i);
  for (Isa isa : SupportedIsas()) {
    Queries one(cache, c.num_heads, positions, 8), two(cache, c.num_heads, positions, 8);
    const int64_t n = static_cast<int64_t>(positions.size());
    WithThreads(1, [&] { Attention(isa, cache.shape, c.num_heads, 0.1f, one.list.data(), n); });
    WithThreads(2, [&] { Attention(isa, cache.shape, c.num_heads, 0.1f, two.list.data(), n); });
    EXPECT_TRUE(SameBits(one.out, two.out)) << IsaName(isa);
  }
}

TEST(AttentionTest, FirstPositionReturnsFirstValueExactly) {
  // One key: p_0 = Exp(0) = 1, l = 1, so the output is v_0 bit for bit.
  const Config c = {4, 2, 48};
  const Cache cache({c.num_kv_heads, c.head_dim}, 1, 9);
  for (Isa isa : SupportedIsas()) {
    Queries q(cache, c.num_heads, {0}, 10);
    Attention(isa, cache.shape, c.num_heads, 0.3f, q.list.data(), 1);
    for (int h = 0; h < c.num_heads; ++h) {
      const int g = h / (c.num_heads / c.num_kv_heads);
      EXPECT_TRUE(
          SameBits(q.out.data() + h * c.head_dim, cache.v_all.data() + g * c.head_dim, c.head_dim))
          << IsaName(isa) << " head " << h;
    }
  }
}

TEST(AttentionTest, ReferenceMatchesDoublePrecisionAttention) {
  const Config c = {6, 2, 32};
  const Cache cache({c.num_kv_heads, c.head_dim}, 260, 11);
  const std::vector<int32_t> positions = {5, 64, 259};
  Queries q(cache, c.num_heads, positions, 12);
  const float scale = 0.2f;
  AttentionReference(cache.shape, c.num_heads, scale, q.list.data(), 3);
  const int hd = c.head_dim, kv = c.num_kv_heads, group = c.num_heads / kv;
  for (size_t i = 0; i < positions.size(); ++i) {
    for (int h = 0; h < c.num_heads; ++h) {
      const float* qh = q.q.data() + (i * c.num_heads + h) * hd;
      const int g = h / group;
      std::vector<double> s(positions[i] + 1);
      double m = -1e300;
      for (int j = 0; j <= positions[i]; ++j) {
        double dot = 0.0;
        for (int d = 0; d < hd; ++d) dot += double{qh[d]} * cache.k_all[(j * kv + g) * hd + d];
        s[j] = dot * scale;
        m = std::max(m, s[j]);
      }
      double l = 0.0;
      for (double& v : s) l += (v = std::exp(v - m));
      for (int d = 0; d < hd; ++d) {
        double o = 0.0;
        for (int j = 0; j <= positions[i]; ++j) o += s[j] * cache.v_all[(j * kv + g) * hd + d];
        EXPECT_NEAR(q.out[(i * c.num_heads + h) * hd + d], o / l, 1e-5)
            << "query " << i << " head " << h << " dim " << d;
      }
    }
  }
}

// Long prompts: every position of a prompt of 2k+ positions in one call goes
// through blocks of queries that share each KV page (attention_impl.h); the
// bits must be the reference's for every Isa and thread count, and those of
// one query per call. Lengths are no multiple of a page (64) or of a block of
// queries (64 pairs / group heads), and head dims cover whole, several and
// partial 16-lane vectors. (The reference and the scalar build, ~0.4 GFLOP/s,
// take every 4th position -- still one long call, blocks of queries four
// positions apart; the SIMD builds take every position and must also agree
// with each other on all of them.)
TEST(AttentionTest, LongPromptEveryIsaEqualsReference) {
  const struct {
    Config c;
    int length;
  } kLong[] = {{{8, 2, 64}, 2085}, {{4, 4, 48}, 1100}, {{6, 1, 80}, 700}, {{3, 1, 20}, 450}};
  constexpr int kStride = 4;
  for (const auto& entry : kLong) {
    // Named references, not a structured binding: clang before 16 cannot
    // capture a binding in the lambdas below.
    const Config& c = entry.c;
    const int length = entry.length;
    const Cache cache({c.num_kv_heads, c.head_dim}, length, 31);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    std::vector<int32_t> all, some;
    for (int i = 0; i < length; ++i) all.push_back(i);
    for (int i = length - 1; i >= 0; i -= kStride) some.insert(some.begin(), i);
    const auto count = [](const std::vector<int32_t>& v) { return static_cast<int64_t>(v.size()); };
    const size_t per = static_cast<size_t>(c.num_heads) * c.head_dim;
    // q of position p is the same in `all` and `some` (row p of one stream).
    Queries full(cache, c.num_heads, all, 32);
    Queries expected(cache, c.num_heads, some, 32);
    for (size_t i = 0; i < some.size(); ++i) {
      std::copy_n(full.q.begin() + some[i] * per, per, expected.q.begin() + i * per);
    }
    AttentionReference(cache.shape, c.num_heads, scale, expected.list.data(), count(some));
    const std::string label = "heads " + std::to_string(c.num_heads) + "/" +
                              std::to_string(c.num_kv_heads) + " head_dim " +
                              std::to_string(c.head_dim) + " length " + std::to_string(length);
    std::vector<float> simd_out;  // every position, from the first SIMD build
    for (Isa isa : SupportedIsas()) {
      if (isa == Isa::kScalar) {
        Queries got = expected;
        for (size_t i = 0; i < some.size(); ++i) {
          got.list[i].q = got.q.data() + i * per;
          got.list[i].out = got.out.data() + i * per;
        }
        std::fill(got.out.begin(), got.out.end(), -7.0f);
        Attention(isa, cache.shape, c.num_heads, scale, got.list.data(), count(some));
        EXPECT_TRUE(SameBits(got.out, expected.out)) << "scalar " << label;
        continue;
      }
      for (int threads : {1, 2}) {
        Queries got(cache, c.num_heads, all, 32);
        WithThreads(threads, [&] {
          Attention(isa, cache.shape, c.num_heads, scale, got.list.data(), count(all));
        });
        for (size_t i = 0; i < some.size(); ++i) {
          ASSERT_TRUE(SameBits(got.out.data() + some[i] * per, expected.out.data() + i * per, per))
              << IsaName(isa) << " " << threads << " thread(s) position " << some[i] << " "
              << label;
        }
        if (simd_out.empty()) simd_out = got.out;
        EXPECT_TRUE(SameBits(got.out, simd_out)) << IsaName(isa) << " " << threads << " " << label;
      }
      // One query per call (decode): no other query shares its pages.
      Queries one(cache, c.num_heads, all, 32);
      for (int i = 0; i < length; i += 37) {
        Attention(isa, cache.shape, c.num_heads, scale, one.list.data() + i, 1);
        EXPECT_TRUE(SameBits(one.out.data() + i * per, simd_out.data() + i * per, per))
            << IsaName(isa) << " one query at " << i << " " << label;
      }
    }
  }
}

// One call holding queries of two sequences (different page tables), one of
// them with a sliding window, in an interleaved order: blocks end where the
// sequence changes, and hold queries with different window starts and
// diagonal pages; every query's bits are the reference's.
TEST(AttentionTest, MixedLongBatchEveryIsaEqualsReference) {
  const Config c = {8, 2, 64};
  const Cache a_cache({c.num_kv_heads, c.head_dim}, 701, 33);
  const Cache b_cache({c.num_kv_heads, c.head_dim}, 333, 34);
  std::vector<int32_t> a_pos, b_pos;
  for (int i = 0; i < 701; i += 3) a_pos.push_back(i);
  for (int i = 0; i < 333; ++i) b_pos.push_back(i);
  constexpr int32_t kWindow = 100;
  auto make = [&](Queries* a, Queries* b) {
    for (AttentionQuery& q : b->list)
      q.window_start = q.position >= kWindow ? q.position - kWindow + 1 : 0;
    // Interleave: two of b, one of a, ... then the rest.
    std::vector<AttentionQuery> batch;
    size_t ia = 0, ib = 0;
    while (ia < a->list.size() || ib < b->list.size()) {
      for (int k = 0; k < 2 && ib < b->list.size(); ++k) batch.push_back(b->list[ib++]);
      if (ia < a->list.size()) batch.push_back(a->list[ia++]);
    }
    return batch;
  };
  const float scale = 0.125f;
  Queries a_exp(a_cache, c.num_heads, a_pos, 35), b_exp(b_cache, c.num_heads, b_pos, 36);
  std::vector<AttentionQuery> expected = make(&a_exp, &b_exp);
  AttentionReference(a_cache.shape, c.num_heads, scale, expected.data(),
                     static_cast<int64_t>(expected.size()));
  for (Isa isa : SupportedIsas()) {
    for (int threads : {1, 2}) {
      Queries a_got(a_cache, c.num_heads, a_pos, 35), b_got(b_cache, c.num_heads, b_pos, 36);
      std::vector<AttentionQuery> batch = make(&a_got, &b_got);
      WithThreads(threads, [&] {
        Attention(isa, a_cache.shape, c.num_heads, scale, batch.data(),
                  static_cast<int64_t>(batch.size()));
      });
      EXPECT_TRUE(SameBits(a_got.out, a_exp.out))
          << IsaName(isa) << " " << threads << " sequence a";
      EXPECT_TRUE(SameBits(b_got.out, b_exp.out))
          << IsaName(isa) << " " << threads << " sequence b";
    }
  }
}

// Queries (position, window start) around page boundaries: windows that start
// inside a page, at its first slot, at the query itself, and windows whose
// first pages are skipped.
const std::vector<std::pair<int32_t, int32_t>> kWindows = {
    {0, 0},    {5, 1},    {63, 24},  {64, 25},   {64, 64},  {65, 64},  {100, 61},
    {127, 88}, {128, 89}, {130, 91}, {130, 130}, {199, 63}, {199, 64}, {199, 160}};

Queries WindowQueries(const Cache& cache, int num_heads, uint32_t seed) {
  std::vector<int32_t> positions;
  for (auto [p, w] : kWindows) positions.push_back(p);
  Queries q(cache, num_heads, positions, seed);
  for (size_t i = 0; i < kWindows.size(); ++i) q.list[i].window_start = kWindows[i].second;
  return q;
}

TEST(AttentionTest, SlidingWindowEveryIsaEqualsReference) {
  for (const Config& c : kConfigs) {
    const Cache cache({c.num_kv_heads, c.head_dim}, 200, 21);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    Queries expected = WindowQueries(cache, c.num_heads, 22);
    AttentionReference(cache.shape, c.num_heads, scale, expected.list.data(),
                       static_cast<int64_t>(expected.list.size()));
    for (Isa isa : SupportedIsas()) {
      Queries got = WindowQueries(cache, c.num_heads, 22);
      Attention(isa, cache.shape, c.num_heads, scale, got.list.data(),
                static_cast<int64_t>(got.list.size()));
      EXPECT_TRUE(SameBits(got.out, expected.out))
          << IsaName(isa) << " heads " << c.num_heads << "/" << c.num_kv_heads << " head_dim "
          << c.head_dim;
    }
  }
}

// The window's result depends on the keys and values inside it only: with
// every position before the window start poisoned (NaN in its slot, NaN pages
// before the window's first page) the bits are those of the clean cache.
TEST(AttentionTest, SlidingWindowNeverReadsKeysOutsideIt) {
  const Config c = {8, 2, 64};
  const Cache clean({c.num_kv_heads, c.head_dim}, 200, 23);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (Isa isa : SupportedIsas()) {
    Queries expected = WindowQueries(clean, c.num_heads, 24);
    Attention(isa, clean.shape, c.num_heads, 0.125f, expected.list.data(),
              static_cast<int64_t>(expected.list.size()));
    for (size_t i = 0; i < kWindows.size(); ++i) {
      const auto [position, start] = kWindows[i];
      Cache poisoned({c.num_kv_heads, c.head_dim}, 200, 23);
      std::vector<float> nan_k(poisoned.shape.floats_per_page(), nan), nan_v = nan_k;
      std::vector<float> k_nan(static_cast<size_t>(c.num_kv_heads) * c.head_dim, nan);
      for (int32_t j = (start / kKvPageSize) * kKvPageSize; j < start; ++j) {
        KvStore(poisoned.shape, poisoned.k_pages[j / kKvPageSize].data(),
                poisoned.v_pages[j / kKvPageSize].data(), j % kKvPageSize, k_nan.data(),
                k_nan.data());
      }
      for (int page = 0; page < start / kKvPageSize; ++page) {
        poisoned.k_table[page] = nan_k.data();
        poisoned.v_table[page] = nan_v.data();
      }
      Queries got(poisoned, c.num_heads, {position}, 99);
      const size_t per = static_cast<size_t>(c.num_heads) * c.head_dim;
      std::copy(expected.q.begin() + i * per, expected.q.begin() + (i + 1) * per, got.q.begin());
      got.list[0].window_start = start;
      Attention(isa, poisoned.shape, c.num_heads, 0.125f, got.list.data(), 1);
      EXPECT_TRUE(SameBits(got.out.data(), expected.out.data() + i * per, per))
          << IsaName(isa) << " position " << position << " window start " << start;
    }
  }
}

TEST(AttentionTest, SlidingWindowReferenceMatchesDoublePrecision) {
  const Config c = {4, 2, 32};
  const Cache cache({c.num_kv_heads, c.head_dim}, 200, 25);
  Queries q = WindowQueries(cache, c.num_heads, 26);
  const float scale = 0.2f;
  AttentionReference(cache.shape, c.num_heads, scale, q.list.data(),
                     static_cast<int64_t>(q.list.size()));
  const int hd = c.head_dim, kv = c.num_kv_heads, group = c.num_heads / kv;
  for (size_t i = 0; i < kWindows.size(); ++i) {
    const auto [position, start] = kWindows[i];
    for (int h = 0; h < c.num_heads; ++h) {
      const float* qh = q.q.data() + (i * c.num_heads + h) * hd;
      const int g = h / group;
      std::vector<double> s;
      double m = -1e300;
      for (int j = start; j <= position; ++j) {
        double dot = 0.0;
        for (int d = 0; d < hd; ++d) dot += double{qh[d]} * cache.k_all[(j * kv + g) * hd + d];
        s.push_back(dot * scale);
        m = std::max(m, s.back());
      }
      double l = 0.0;
      for (double& v : s) l += (v = std::exp(v - m));
      for (int d = 0; d < hd; ++d) {
        double o = 0.0;
        for (int j = start; j <= position; ++j) {
          o += s[j - start] * cache.v_all[(j * kv + g) * hd + d];
        }
        EXPECT_NEAR(q.out[(i * c.num_heads + h) * hd + d], o / l, 1e-5)
            << "position " << position << " window start " << start << " head " << h;
      }
    }
  }
}

}  // namespace
}  // namespace lockstep::kernels
