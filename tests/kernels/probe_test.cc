// Probes: plausible figures (positive, finite, below physical limits) from a
// small, fast configuration. The real measurements are in benchmarks/.
#include "lockstep/kernels/probe.h"

#include <gtest/gtest.h>

#include <cmath>

#include "kernel_test_util.h"

namespace lockstep::kernels {
namespace {

TEST(ProbeTest, ReadBandwidthIsPlausible) {
  for (int threads : {1, 2}) {
    const MemoryBandwidth bw = MeasureReadBandwidth(threads, size_t{16} << 20, 2);
    EXPECT_GT(bw.read_bytes_per_second, 1e8) << threads;
    EXPECT_LT(bw.read_bytes_per_second, 1e13) << threads;
    EXPECT_GT(bw.triad_bytes_per_second, 1e8) << threads;
    EXPECT_LT(bw.triad_bytes_per_second, 1e13) << threads;
  }
}

TEST(ProbeTest, FmaPeakIsPlausible) {
  for (Isa isa : testing::SupportedIsas()) {
    const double peak = MeasureFmaPeak(isa, 1);
    EXPECT_GT(peak, 1e8) << IsaName(isa);
    EXPECT_LT(peak, 1e13) << IsaName(isa);  // 64 FLOP/cycle at 10 GHz is 6.4e11
  }
}

}  // namespace
}  // namespace lockstep::kernels
