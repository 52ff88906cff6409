// Helpers shared by the kernel tests: deterministic random data, the list of
// instruction sets this CPU runs, bit-exact comparison and fixed thread counts.
#pragma once

#include <gtest/gtest.h>
#include <tbb/task_arena.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "lockstep/kernels/isa.h"

namespace lockstep::kernels::testing {

// Every Isa this machine supports (scalar always; AVX2 and AVX-512 when
// present). Tests compare each of them with the reference.
inline std::vector<Isa> SupportedIsas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (IsaSupported(isa)) isas.push_back(isa);
  }
  return isas;
}

// Normal(0, scale) values from a fixed seed.
inline std::vector<float> RandomVector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Bit-exact comparison; on mismatch reports the first differing index.
inline ::testing::AssertionResult SameBits(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i])) {
      return ::testing::AssertionFailure()
             << "first difference at index " << i << " of " << n << ": " << a[i] << " (0x"
             << std::hex << std::bit_cast<uint32_t>(a[i]) << ") vs " << std::dec << b[i] << " (0x"
             << std::hex << std::bit_cast<uint32_t>(b[i]) << ")";
    }
  }
  return ::testing::AssertionSuccess();
}
inline ::testing::AssertionResult SameBits(const std::vector<float>& a,
                                           const std::vector<float>& b) {
  if (a.size() != b.size()) {
    return ::testing::AssertionFailure() << "sizes differ: " << a.size() << " vs " << b.size();
  }
  return SameBits(a.data(), b.data(), a.size());
}

// Runs fn inside a task_arena of exactly `threads` threads.
template <typename Fn>
void WithThreads(int threads, const Fn& fn) {
  tbb::task_arena arena(threads);
  arena.execute(fn);
}

inline std::string IsaLabel(Isa isa) {
  return std::string(IsaName(isa));
}

}  // namespace lockstep::kernels::testing
