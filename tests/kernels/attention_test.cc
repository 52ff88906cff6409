// Attention over the paged KV cache: every Isa bit-exact against the
// reference for positions around page boundaries and GQA groupings; prefill
// (all positions in one call) equals decode (one call per position); thread
// count; the reference against double-precision softmax attention.
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

}  // namespace
}  // namespace lockstep::kernels
