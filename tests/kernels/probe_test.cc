// Probes: plausible figures (positive, finite, below physical limits) from a
// small, fast configuration. The real measurements are in benchmarks/.
#include "lockstep/kernels/probe.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "kernel_test_util.h"
#include "lockstep/kernels/bf16_matmul.h"
#include "lockstep/kernels/quant_matmul.h"

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
    // Plausible, not fast: the scalar probe under ASan + UBSan (the asan
    // preset) runs ~3e7 FLOP/s; a unit slip (GFLOP for FLOP) is 1e9 off.
    EXPECT_GT(peak, 1e6) << IsaName(isa);
    EXPECT_LT(peak, 1e13) << IsaName(isa);  // 64 FLOP/cycle at 10 GHz is 6.4e11
  }
}

// The vdpbf16ps peak: plausible where the CPU has AVX512_BF16, 0 elsewhere.
TEST(ProbeTest, Bf16DotPeakIsPlausibleOrZero) {
  const double peak = MeasureBf16DotPeak(1);
  if (!Bf16DotAvailable(Isa::kAvx512)) {
    EXPECT_EQ(peak, 0.0);
    return;
  }
  EXPECT_GT(peak, 1e6);
  EXPECT_LT(peak, 1e13);
}

// A matrix and footprint small enough for a test: figures plausible, not precise.
MatmulProbe SmallProbe() {
  MatmulProbe probe;
  probe.rows = 256;
  probe.cols = 512;
  probe.footprint = size_t{4} << 20;
  probe.min_time_s = 0.01;
  return probe;
}

TEST(ProbeTest, KernelRatesArePlausible) {
  MatmulProbe probe = SmallProbe();
  // CPU time on both sides: on a shared machine the wall clock of either
  // probe may include time the process did not run.
  const double peak = MeasureFmaPeak(BestIsa(), 1, ProbeClock::kCpu);
  // The quantized types multiply int8 (vpdpbusd where the ISA has VNNI):
  // bounded by that peak, not the FMA one.
  const double int8_peak = MeasureInt8DotPeak(BestIsa(), 1, ProbeClock::kCpu);
  for (DType dtype : {DType::kBF16, DType::kF32, DType::kQ8_0, DType::kQ4_0}) {
    probe.dtype = dtype;
    const std::vector<double> rates =
        MeasureMatmulFlops(BestIsa(), 1, probe, {1, 8}, ProbeClock::kCpu);
    ASSERT_EQ(rates.size(), 2u);
    const double bound = DTypeIsQuantized(dtype) ? std::max(peak, int8_peak) : peak;
    for (double r : rates) {
      EXPECT_GT(r, 1e7) << DTypeName(dtype);
      EXPECT_LT(r, 1.5 * bound) << DTypeName(dtype);  // no matmul beats its peak
    }
  }
  const double seconds = MeasureAttentionSeconds(BestIsa(), 1, 64, 8, 2, 16, 2, ProbeClock::kCpu);
  EXPECT_GT(seconds, 0.0);
  EXPECT_LT(seconds, 10.0);
  // A decode step of 4 sequences at 100 keys (two pages each, the second
  // partial), KV cycled through 4 MiB: under a second, and no faster than
  // the FMA peak allows for its flops (one multiply-add per key and head
  // dimension for q.k, one for p.v).
  const double decode =
      MeasureDecodeAttentionSeconds(BestIsa(), 1, 4, 100, 8, 2, 16, size_t{4} << 20, 0.01,
                                    ProbeClock::kCpu);
  EXPECT_GT(decode, 4.0 * 8 * 100 * 4 * 16 / (1.5 * peak));
  EXPECT_LT(decode, 1.0);
}

// The vpdpbusd peak (the quantized prefill's anchor): plausible where the
// quantized kernels of the ISA use the instruction, 0 elsewhere.
TEST(ProbeTest, Int8DotPeakIsPlausibleOrZero) {
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kScalar}) {
    if (!IsaSupported(isa)) continue;
    const double peak = MeasureInt8DotPeak(isa, 1, ProbeClock::kCpu);
    if (!UsingVnni(isa)) {
      EXPECT_EQ(peak, 0.0) << IsaName(isa);
      continue;
    }
    EXPECT_GT(peak, 1e6) << IsaName(isa);
    EXPECT_LT(peak, 1e14) << IsaName(isa);
  }
}

// Threads that each run their own one-thread matmuls at once (calibrate's
// concurrency factor): one rate per token count, each of one thread.
TEST(ProbeTest, ConcurrentMatmulRatesArePlausible) {
  const MatmulProbe probe = SmallProbe();
  const double peak = MeasureFmaPeak(BestIsa(), 1, ProbeClock::kCpu);
  for (int threads : {1, 3}) {
    const std::vector<double> rates = MeasureConcurrentMatmulFlops(BestIsa(), threads, probe, {1, 8});
    ASSERT_EQ(rates.size(), 2u);
    for (double r : rates) {
      EXPECT_GT(r, 1e6) << threads;
      // Wall clock, one thread's figure: no more than one core's peak.
      EXPECT_LT(r, 1.5 * peak) << threads;
    }
  }
}

TEST(ProbeTest, CpuClockFiguresArePlausible) {
  // CPU time / threads never runs faster than the wall clock, so the CPU-clock
  // figure is at least the wall-clock one up to timing noise; both plausible.
  const MemoryBandwidth bw = MeasureReadBandwidth(1, size_t{16} << 20, 2, ProbeClock::kCpu);
  EXPECT_GT(bw.read_bytes_per_second, 1e8);
  EXPECT_LT(bw.read_bytes_per_second, 1e13);
  const double peak = MeasureFmaPeak(BestIsa(), 1, ProbeClock::kCpu);
  EXPECT_GT(peak, 1e8);
  EXPECT_LT(peak, 1e13);
}

TEST(ProbeTest, CpuClockCountsOnlyCpuTime) {
  // Sleeping takes wall time but (almost) no CPU time.
  const double wall0 = ProbeNow(ProbeClock::kWall, 1), cpu0 = ProbeNow(ProbeClock::kCpu, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const double wall = ProbeNow(ProbeClock::kWall, 1) - wall0;
  const double cpu = ProbeNow(ProbeClock::kCpu, 1) - cpu0;
  EXPECT_GE(wall, 0.049);
  EXPECT_LT(cpu, 0.025);
  // CPU time is divided by the thread count.
  const double a = ProbeNow(ProbeClock::kCpu, 1), b = ProbeNow(ProbeClock::kCpu, 4);
  EXPECT_NEAR(b, a / 4, a * 0.01);
}

}  // namespace
}  // namespace lockstep::kernels
