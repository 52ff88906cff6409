// Machine probes (probe.h): a streaming read, a STREAM triad and an FMA
// throughput loop, written over the 16-lane VecF of the including build.
// Included only by kernels_<isa>.cc.

namespace lockstep::kernels::LOCKSTEP_SIMD_NS {

// Sum of a[0..n) with 8 independent accumulators (n a multiple of 128): a
// read-only stream the compiler cannot drop.
inline float ReadSum(const float* a, int64_t n) {
  VecF acc[8];
  for (int i = 0; i < 8; ++i) acc[i] = VecF::Zero();
  for (int64_t i = 0; i + 128 <= n; i += 128) {
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) acc[j] = acc[j] + VecF::Load(a + i + 16 * j);
  }
  for (int i = 1; i < 8; ++i) acc[0] = acc[0] + acc[i];
  alignas(64) float lanes[16];
  acc[0].Store(lanes);
  float sum = 0.0f;
  for (int i = 0; i < 16; ++i) sum = sum + lanes[i];
  return sum;
}

// a[i] = b[i] + s * c[i] (n a multiple of 16).
inline void Triad(float* a, const float* b, const float* c, float s, int64_t n) {
  const VecF sv = VecF::Set1(s);
  for (int64_t i = 0; i + 16 <= n; i += 16) {
    (VecF::Load(b + i) + sv * VecF::Load(c + i)).Store(a + i);
  }
}

// `iterations` rounds of kFmaPeakChains independent vector FMA chains.
inline float FmaChains(int64_t iterations, float seed) {
  constexpr int kChains = kFmaPeakChains;
  VecF acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = VecF::Set1(seed + static_cast<float>(i));
  const VecF a = VecF::Set1(0.999999f), b = VecF::Set1(1e-7f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) acc[i] = VecF::Fma(acc[i], a, b);
  }
  for (int i = 1; i < kChains; ++i) acc[0] = acc[0] + acc[i];
  return Lane0(acc[0]);
}

}  // namespace lockstep::kernels::LOCKSTEP_SIMD_NS
