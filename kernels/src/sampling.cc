// Token selection: Philox4x32-10, argmax and temperature / top-k / top-p
// sampling (the order is specified in sampling.h).
#include "lockstep/kernels/sampling.h"

#include <algorithm>
#include <cmath>

#include "lockstep/base/check.h"
#include "lockstep/kernels/activation.h"

namespace lockstep::kernels {
namespace {

// Philox constants (Salmon et al., SC'11): round multipliers and the Weyl
// sequence that bumps the key between rounds.
constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;

// A candidate ordering: higher probability first, ties to the lower id.
struct ByProbability {
  const float* p;
  bool operator()(int32_t a, int32_t b) const { return p[a] > p[b] || (p[a] == p[b] && a < b); }
};

}  // namespace

std::array<uint32_t, 4> Philox4x32(std::array<uint32_t, 4> c, std::array<uint32_t, 2> key) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += kPhiloxW0;
      key[1] += kPhiloxW1;
    }
    const uint64_t p0 = uint64_t{kPhiloxM0} * c[0];
    const uint64_t p1 = uint64_t{kPhiloxM1} * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ key[0], static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ key[1], static_cast<uint32_t>(p0)};
  }
  return c;
}

float UniformAt(uint64_t seed, uint64_t stream, uint64_t position) {
  const std::array<uint32_t, 4> out =
      Philox4x32({static_cast<uint32_t>(position), static_cast<uint32_t>(position >> 32),
                  static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)},
                 {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
  // The top 24 bits, scaled by 2^-24: exactly representable, in [0, 1).
  return static_cast<float>(out[0] >> 8) * 0x1.0p-24f;
}

int32_t Argmax(const float* x, int64_t n) {
  LOCKSTEP_CHECK(n > 0, "Argmax of an empty vector");
  int64_t best = 0;
  while (best < n && std::isnan(x[best])) ++best;
  if (best == n) return 0;  // all NaN
  for (int64_t i = best + 1; i < n; ++i) {
    if (x[i] > x[best]) best = i;  // strict: ties keep the lower index
  }
  return static_cast<int32_t>(best);
}

int32_t Sample(Isa isa, const float* logits, int64_t vocab, const SamplingParams& params,
               uint64_t seed, uint64_t stream, uint64_t position, std::vector<float>* scratch) {
  LOCKSTEP_CHECK(vocab > 0 && vocab < (int64_t{1} << 31), "Sample: vocab {} out of range", vocab);
  if (!(params.temperature > 0.0f)) return Argmax(logits, vocab);

  // p = softmax(logits / temperature).
  std::vector<float>& p = *scratch;
  p.resize(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) p[i] = logits[i] / params.temperature;
  Softmax(isa, p.data(), vocab);
  const float u01 = UniformAt(seed, stream, position);

  const bool cut_k = params.top_k > 0 && params.top_k < vocab;
  const bool cut_p = params.top_p < 1.0f;
  if (!cut_k && !cut_p) {
    // No cut: candidates in increasing id order (no sort needed).
    float total = 0.0f;
    for (int64_t i = 0; i < vocab; ++i) total = total + (std::isnan(p[i]) ? 0.0f : p[i]);
    if (!(total > 0.0f)) return Argmax(logits, vocab);
    const float u = u01 * total;
    float running = 0.0f;
    int64_t last_positive = -1;
    for (int64_t i = 0; i < vocab; ++i) {
      if (!(p[i] > 0.0f)) continue;
      running = running + p[i];
      last_positive = i;
      if (running > u) return static_cast<int32_t>(i);
    }
    return static_cast<int32_t>(last_positive);
  }

  // Sorted candidates. Collecting every id with p >= t and sorting those
  // gives exactly the first entries of the full sorted order (ties are all
  // in or all out), so we only sort as deep as the cuts need: t starts just
  // below the largest probability and drops by 2^8 until the top-k cut and
  // the nucleus both fall inside the collected prefix (t = 0 collects all).
  const int64_t k_limit = cut_k ? params.top_k : vocab;
  float p_max = 0.0f;
  for (int64_t i = 0; i < vocab; ++i) p_max = p[i] > p_max ? p[i] : p_max;
  if (!(p_max > 0.0f)) return Argmax(logits, vocab);
  std::vector<int32_t> order;
  int64_t keep = 0;
  for (float t = p_max * 0x1.0p-8f;; t = t * 0x1.0p-8f) {
    if (t < 0x1.0p-126f) t = 0.0f;
    order.clear();
    for (int64_t i = 0; i < vocab; ++i) {
      if (p[i] >= t) order.push_back(static_cast<int32_t>(i));  // NaN never passes
    }
    std::sort(order.begin(), order.end(), ByProbability{p.data()});
    const bool complete = t == 0.0f;  // every candidate collected
    const int64_t prefix = std::min<int64_t>(k_limit, static_cast<int64_t>(order.size()));
    const bool has_k = complete || static_cast<int64_t>(order.size()) >= k_limit;
    if (cut_p) {
      float cumulative = 0.0f;
      keep = 0;
      for (int64_t i = 0; i < prefix; ++i) {
        cumulative = cumulative + p[order[i]];
        if (cumulative >= params.top_p) {
          keep = i + 1;
          break;
        }
      }
      if (keep > 0) break;  // the nucleus ends inside the sorted prefix
      if (has_k) {
        keep = prefix;  // the top-k cut comes first
        break;
      }
    } else if (has_k) {
      keep = prefix;
      break;
    }
  }
  float total = 0.0f;
  for (int64_t i = 0; i < keep; ++i) total = total + p[order[i]];
  const float u = u01 * total;
  float running = 0.0f;
  int64_t last_positive = 0;
  for (int64_t i = 0; i < keep; ++i) {
    if (!(p[order[i]] > 0.0f)) continue;
    running = running + p[order[i]];
    last_positive = i;
    if (running > u) return order[i];
  }
  return order[last_positive];
}

}  // namespace lockstep::kernels
