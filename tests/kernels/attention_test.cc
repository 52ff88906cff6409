// Attention over the paged KV cache: every Isa bit-exact against the
// reference for positions around page boundaries and GQA groupings; prefill
// (all positions in one call) equals decode (one call per position); thread
// count; the reference against double-precision softmax attention; sliding
// windows (window starts inside and at page boundaries, keys outside the
// window never read).
#include "lockstep/kernels/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
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
