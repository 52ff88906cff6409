// matmul_bench: speed of lockstep::kernels::Matmul against the machine's own
// anchors, measured in the same run.
//
//   decode  (num_tokens = 1): weight bytes streamed per second, divided by the
//           read bandwidth of the membw probe at the same thread count.
//   prefill (num_tokens 64..512): FLOP/s (2*M*N*K per matmul), divided by the
//           FMA peak of the probe at the same thread count and Isa.
//   canonical/plain: time of the canonical order divided by the time of one
//           plain FMA chain over K (what determinism costs).
//
// Weights are packed in as many copies as it takes to exceed --footprint
// (default 1 GiB, like the probe's array) and the timed loop cycles through
// them, so every matmul reads its weights from memory, as in a real forward
// pass, never from the last-level cache.
//
//   matmul_bench [--mode decode|prefill|all] [--threads 1,2]
//                [--dtypes f32,f16,bf16,q8_0,q4_0] [--shapes 2048x2048,...]
//                [--tokens 64,128,512] [--isa auto] [--footprint BYTES]
//                [--min-time SECONDS] [--cpu-time] [--no-plain] [--no-vnni]
//
// Quantized dtypes (q8_0, q4_0) count the bytes of their blocks; their
// "GFLOP/s" are 2 operations per weight and token as for the float types
// (integer multiply-adds); --no-vnni runs their emulated dot product.
// --compute bf16: bf16 packs in the bf16 compute (kernels/bf16_matmul.h; the
// dtype column says "bf16c"); --bf16-step instruction|ftz|checked picks how
// its dot-product step is computed (default: auto, the faster of the first
// two; --no-bf16-dot is --bf16-step checked).
#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/base/dtype.h"
#include "lockstep/base/quant_block.h"
#include "lockstep/kernels/bf16_matmul.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/kernels/matmul.h"
#include "lockstep/kernels/probe.h"
#include "lockstep/kernels/quant_matmul.h"

namespace lk = lockstep::kernels;

namespace {

struct Options {
  std::string mode = "all";
  std::vector<int> threads = {1, 2};
  std::vector<lockstep::DType> dtypes = {lockstep::DType::kF32, lockstep::DType::kF16,
                                         lockstep::DType::kBF16};
  std::vector<std::pair<int64_t, int64_t>> decode_shapes = {
      {2048, 2048}, {5632, 2048}, {2048, 5632}, {32000, 2048}};
  std::vector<std::pair<int64_t, int64_t>> prefill_shapes = {
      {2048, 2048}, {5632, 2048}, {2048, 5632}};
  std::vector<int64_t> tokens = {64, 128, 512};
  lk::Isa isa = lk::BestIsa();
  size_t footprint = size_t{1} << 30;
  double min_time = 1.0;
  bool plain = true;
  // --cpu-time: time kernels and anchors alike by process CPU time / threads
  // (probe.h), which on a shared machine gives the hardware's figure rather
  // than this process's share of it.
  lk::ProbeClock clock = lk::ProbeClock::kWall;
  lk::Compute compute = lk::Compute::kFloat;  // --compute: for bf16 packs
};

lk::Compute g_compute = lk::Compute::kFloat;
lk::Compute ComputeFor(lockstep::DType dtype) {
  return dtype == lockstep::DType::kBF16 ? g_compute : lk::Compute::kFloat;
}
std::string DTypeLabel(lockstep::DType dtype) {
  return ComputeFor(dtype) == lk::Compute::kBf16 ? "bf16c" : std::string(lockstep::DTypeName(dtype));
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

// The pack copies of one (shape, dtype).
struct Matrices {
  std::vector<lk::PackedMatrix> copies;
  size_t bytes = 0;  // of one copy
};

Matrices MakeMatrices(lockstep::DType dtype, int64_t rows, int64_t cols, size_t footprint) {
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> f32(static_cast<size_t>(rows * cols));
  for (float& v : f32) v = dist(rng);
  std::vector<uint16_t> half;
  std::vector<uint8_t> blocks;
  const void* data = f32.data();
  if (lockstep::DTypeIsQuantized(dtype)) {
    blocks.resize(static_cast<size_t>(lockstep::DTypeBytes(dtype, rows * cols)));
    lockstep::QuantizeRow(dtype, f32.data(), rows * cols, blocks.data());
    data = blocks.data();
  } else if (dtype != lockstep::DType::kF32) {
    half.resize(f32.size());
    for (size_t i = 0; i < f32.size(); ++i) {
      half[i] =
          dtype == lockstep::DType::kF16 ? lockstep::F32ToF16(f32[i]) : lockstep::F32ToBf16(f32[i]);
    }
    data = half.data();
  }
  Matrices m;
  m.copies.push_back(lk::PackedMatrix::Pack(dtype, data, rows, cols,
                                                  lk::ReductionSlice::Full(cols), ComputeFor(dtype)));
  m.bytes = m.copies[0].bytes();
  const size_t count = std::max<size_t>(1, (footprint + m.bytes - 1) / m.bytes);
  for (size_t i = 1; i < count; ++i)
    m.copies.push_back(lk::PackedMatrix::Pack(dtype, data, rows, cols,
                                                  lk::ReductionSlice::Full(cols), ComputeFor(dtype)));
  return m;
}

// Seconds per matmul: the best single call of those run within min_time (at
// least 3 passes over all copies), after one warm-up pass. Single calls, not
// whole passes: on a shared machine a short call more often runs without
// another job taking the core (and its caches) in the middle.
double TimeMatmul(const Options& o, int threads, const Matrices& m, const std::vector<float>& x,
                  int64_t tokens, std::vector<float>& y, lk::ReductionOrder order) {
  auto Now = [&] { return lk::ProbeNow(o.clock, threads); };
  auto call = [&](const lk::PackedMatrix& w) {
    lk::Matmul(o.isa, w, x.data(), tokens, w.cols(), y.data(), w.rows(), order);
  };
  for (const lk::PackedMatrix& w : m.copies) call(w);
  double best = 1e30;
  const double start = Now();
  for (int passes = 0; passes < 3 || Now() - start < o.min_time; ++passes) {
    for (const lk::PackedMatrix& w : m.copies) {
      const double t0 = Now();
      call(w);
      best = std::min(best, Now() - t0);
    }
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--mode" && has_value) {
      o.mode = argv[++i];
    } else if (arg == "--threads" && has_value) {
      o.threads.clear();
      for (const std::string& t : Split(argv[++i])) o.threads.push_back(std::stoi(t));
    } else if (arg == "--dtypes" && has_value) {
      o.dtypes.clear();
      for (const std::string& d : Split(argv[++i])) o.dtypes.push_back(*lockstep::ParseDType(d));
    } else if (arg == "--shapes" && has_value) {
      o.decode_shapes.clear();
      for (const std::string& s : Split(argv[++i])) {
        const size_t x = s.find('x');
        o.decode_shapes.push_back({std::stoll(s.substr(0, x)), std::stoll(s.substr(x + 1))});
      }
      o.prefill_shapes = o.decode_shapes;
    } else if (arg == "--tokens" && has_value) {
      o.tokens.clear();
      for (const std::string& t : Split(argv[++i])) o.tokens.push_back(std::stoll(t));
    } else if (arg == "--isa" && has_value) {
      const auto isa = lk::ParseIsa(argv[++i]);
      if (!isa.ok()) {
        std::fprintf(stderr, "matmul_bench: %s\n", isa.status().message().c_str());
        return 2;
      }
      o.isa = *isa;
    } else if (arg == "--footprint" && has_value) {
      o.footprint = std::stoull(argv[++i]);
    } else if (arg == "--min-time" && has_value) {
      o.min_time = std::stod(argv[++i]);
    } else if (arg == "--cpu-time") {
      o.clock = lk::ProbeClock::kCpu;
    } else if (arg == "--no-plain") {
      o.plain = false;
    } else if (arg == "--no-vnni") {
      lk::UseVnni(false);
    } else if (arg == "--compute" && has_value) {
      const auto compute = lk::ParseCompute(argv[++i]);
      if (!compute.ok()) {
        std::fprintf(stderr, "matmul_bench: %s\n", compute.status().message().c_str());
        return 2;
      }
      g_compute = *compute;
    } else if (arg == "--no-bf16-dot") {
      lk::UseBf16Step(lk::Bf16Step::kChecked);
    } else if (arg == "--bf16-step" && has_value) {
      const std::string_view name = argv[++i];
      bool known = false;
      for (lk::Bf16Step step : {lk::Bf16Step::kAuto, lk::Bf16Step::kInstruction,
                                lk::Bf16Step::kFlushToZero, lk::Bf16Step::kChecked}) {
        if (name == lk::Bf16StepName(step)) {
          lk::UseBf16Step(step);
          known = true;
        }
      }
      if (!known) {
        std::fprintf(stderr, "matmul_bench: --bf16-step: unknown step '%s'\n", argv[i]);
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "usage: matmul_bench [--mode decode|prefill|all] [--threads 1,2] "
                   "[--dtypes f32,f16,bf16,q8_0,q4_0] [--shapes NxK,...] [--tokens 64,...] "
                   "[--isa NAME] [--footprint BYTES] [--min-time S] [--cpu-time] [--no-plain] "
                   "[--no-vnni] [--compute float|bf16] [--bf16-step auto|instruction|ftz|checked]\n");
      return 2;
    }
  }
  const bool decode = o.mode == "decode" || o.mode == "all";
  const bool prefill = o.mode == "prefill" || o.mode == "all";

  std::printf("# isa %s%s; %s; anchors measured in this run (best of 5)\n",
              std::string(lk::IsaName(o.isa)).c_str(), lk::UsingVnni(o.isa) ? " (VNNI)" : "",
              o.clock == lk::ProbeClock::kCpu ? "CPU time / threads" : "wall clock");
  if (g_compute == lk::Compute::kBf16) {
    std::printf("# bf16 compute: dot-product step '%s'\n",
                std::string(lk::Bf16StepName(lk::Bf16StepFor(o.isa))).c_str());
  }
  std::vector<double> bandwidth, peak;
  for (int t : o.threads) {
    bandwidth.push_back(lk::MeasureReadBandwidth(t, o.footprint, 5, o.clock).read_bytes_per_second);
    peak.push_back(lk::MeasureFmaPeak(o.isa, t, o.clock));
    std::printf("# threads %d: read bandwidth %.2f GB/s, FMA peak %.1f GFLOP/s\n", t,
                bandwidth.back() / 1e9, peak.back() / 1e9);
  }
  std::fflush(stdout);

  if (decode) {
    std::printf("\n%-12s %-5s %7s %10s %9s %8s %15s\n", "decode NxK", "dtype", "threads",
                "us/matmul", "GB/s", "vs read", "canonical/plain");
    for (const auto& [rows, cols] : o.decode_shapes) {
      for (lockstep::DType dtype : o.dtypes) {
        const Matrices m = MakeMatrices(dtype, rows, cols, o.footprint);
        std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));
        for (size_t ti = 0; ti < o.threads.size(); ++ti) {
          tbb::task_arena arena(o.threads[ti]);
          double t = 0.0, t_plain = 0.0;
          arena.execute([&] {
            t = TimeMatmul(o, o.threads[ti], m, x, 1, y, lk::ReductionOrder::kCanonical);
            if (o.plain)
              t_plain = TimeMatmul(o, o.threads[ti], m, x, 1, y, lk::ReductionOrder::kPlain);
          });
          const double gbs = static_cast<double>(m.bytes) / t;
          std::printf("%-12s %-5s %7d %10.1f %9.2f %7.1f%% %15.3f\n",
                      (std::to_string(rows) + "x" + std::to_string(cols)).c_str(),
                      DTypeLabel(dtype).c_str(), o.threads[ti], t * 1e6,
                      gbs / 1e9, 100.0 * gbs / bandwidth[ti], o.plain ? t / t_plain : 0.0);
          std::fflush(stdout);
        }
      }
    }
  }

  if (prefill) {
    std::printf("\n%-12s %-5s %6s %7s %10s %9s %8s %15s\n", "prefill NxK", "dtype", "tokens",
                "threads", "ms/matmul", "GFLOP/s", "vs peak", "canonical/plain");
    for (const auto& [rows, cols] : o.prefill_shapes) {
      for (lockstep::DType dtype : o.dtypes) {
        const Matrices m = MakeMatrices(dtype, rows, cols, o.footprint);
        for (int64_t tokens : o.tokens) {
          std::vector<float> x(static_cast<size_t>(tokens * cols), 0.5f);
          std::vector<float> y(static_cast<size_t>(tokens * rows));
          for (size_t ti = 0; ti < o.threads.size(); ++ti) {
            tbb::task_arena arena(o.threads[ti]);
            double t = 0.0, t_plain = 0.0;
            arena.execute([&] {
              t = TimeMatmul(o, o.threads[ti], m, x, tokens, y, lk::ReductionOrder::kCanonical);
              if (o.plain)
                t_plain = TimeMatmul(o, o.threads[ti], m, x, tokens, y, lk::ReductionOrder::kPlain);
            });
            const double flops = 2.0 * tokens * rows * cols / t;
            std::printf("%-12s %-5s %6lld %7d %10.3f %9.1f %7.1f%% %15.3f\n",
                        (std::to_string(rows) + "x" + std::to_string(cols)).c_str(),
                        DTypeLabel(dtype).c_str(),
                        static_cast<long long>(tokens), o.threads[ti], t * 1e3, flops / 1e9,
                        100.0 * flops / peak[ti], o.plain ? t / t_plain : 0.0);
            std::fflush(stdout);
          }
        }
      }
    }
  }
  return 0;
}
