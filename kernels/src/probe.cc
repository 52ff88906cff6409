// Machine probes (probe.h). The inner loops are the per-ISA probe kernels
// (probe_impl.h); this file sizes the buffers, runs one part per thread in a
// task_arena of the requested size and keeps the best repetition.
#include "lockstep/kernels/probe.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "kernel_table_dispatch.h"
#include "lockstep/base/check.h"
#include "lockstep/base/quant_block.h"
#include "lockstep/kernels/attention.h"
#include "lockstep/kernels/bf16_matmul.h"
#include "lockstep/kernels/matmul.h"
#include "lockstep/kernels/quant_matmul.h"

namespace lockstep::kernels {
namespace {

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float, FreeDeleter>;

// `floats` floats, 64-byte aligned, length rounded up to a multiple of 128.
Buffer Allocate(int64_t floats) {
  const size_t bytes = static_cast<size_t>((floats + 127) / 128 * 128) * sizeof(float);
  float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  LOCKSTEP_CHECK(p != nullptr, "probe: cannot allocate {} bytes", bytes);
  return Buffer(p);
}

// Runs body(part) for part in [0, parts), one part per thread, concurrently.
template <typename Body>
void ForEachPart(int parts, const Body& body) {
  tbb::parallel_for(
      tbb::blocked_range<int>(0, parts, 1),
      [&](const tbb::blocked_range<int>& r) {
        for (int i = r.begin(); i < r.end(); ++i) body(i);
      },
      tbb::static_partitioner());
}

// Times `run` (which must do the same work each call) `repetitions` times
// after one warm-up call, and returns the shortest time in seconds on `clock`.
template <typename Run>
double BestTime(int repetitions, ProbeClock clock, int threads, const Run& run) {
  run();
  double best = 1e30;
  for (int i = 0; i < repetitions; ++i) {
    const double start = ProbeNow(clock, threads);
    run();
    best = std::min(best, ProbeNow(clock, threads) - start);
  }
  return best;
}

}  // namespace

double ProbeNow(ProbeClock clock, int threads) {
  if (clock == ProbeClock::kWall) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  timespec ts;
  LOCKSTEP_CHECK(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0, "clock_gettime failed");
  return (static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec)) /
         static_cast<double>(threads);
}

MemoryBandwidth MeasureReadBandwidth(int threads, size_t bytes, int repetitions, ProbeClock clock) {
  LOCKSTEP_CHECK(threads >= 1 && repetitions >= 1 && bytes >= (size_t{1} << 20),
                 "MeasureReadBandwidth: threads {}, bytes {}, repetitions {}", threads, bytes,
                 repetitions);
  const internal::KernelTable& table = internal::KernelsFor(BestIsa());
  MemoryBandwidth result;
  tbb::task_arena arena(threads);
  arena.execute([&] {
    // Parts are multiples of 128 floats (the read kernel's step).
    const int64_t part = static_cast<int64_t>(bytes / sizeof(float)) / threads / 128 * 128;
    const int64_t n = part * threads;
    {
      Buffer a = Allocate(n);
      // First touch by the thread that will read the part.
      ForEachPart(threads, [&](int i) {
        float* p = a.get() + i * part;
        for (int64_t j = 0; j < part; ++j) p[j] = static_cast<float>(j & 1023);
      });
      std::atomic<float> sink{0.0f};
      const double t = BestTime(repetitions, clock, threads, [&] {
        ForEachPart(threads, [&](int i) {
          const float s = table.read_sum(a.get() + i * part, part);
          sink.store(s, std::memory_order_relaxed);
        });
      });
      result.read_bytes_per_second = static_cast<double>(n) * sizeof(float) / t;
    }
    {
      const int64_t tpart = part / 3 / 128 * 128;
      const int64_t tn = tpart * threads;
      Buffer a = Allocate(tn), b = Allocate(tn), c = Allocate(tn);
      ForEachPart(threads, [&](int i) {
        for (int64_t j = i * tpart; j < (i + 1) * tpart; ++j) {
          a.get()[j] = 0.0f;
          b.get()[j] = 1.0f;
          c.get()[j] = 2.0f;
        }
      });
      const double t = BestTime(repetitions, clock, threads, [&] {
        ForEachPart(threads, [&](int i) {
          const int64_t o = i * tpart;
          table.triad(a.get() + o, b.get() + o, c.get() + o, 3.0f, tpart);
        });
      });
      result.triad_bytes_per_second = 3.0 * static_cast<double>(tn) * sizeof(float) / t;
    }
  });
  return result;
}

namespace {

// FLOP/s of `threads` threads each running `chains(iterations, seed)`, a
// kernel of independent multiply-add chains doing `flops_per_iteration`
// per iteration: the best of 3 after a warm-up.
template <typename Chains>
double ChainsPeak(int threads, ProbeClock clock, int64_t iterations, double flops_per_iteration,
                  const Chains& chains) {
  double best = 0.0;
  tbb::task_arena arena(threads);
  arena.execute([&] {
    std::atomic<float> sink{0.0f};
    const double t = BestTime(3, clock, threads, [&] {
      ForEachPart(threads, [&](int i) {
        sink.store(chains(iterations, 1.0f + static_cast<float>(i)), std::memory_order_relaxed);
      });
    });
    best = static_cast<double>(threads) * static_cast<double>(iterations) * flops_per_iteration / t;
  });
  return best;
}

}  // namespace

double MeasureFmaPeak(Isa isa, int threads, ProbeClock clock) {
  LOCKSTEP_CHECK(threads >= 1, "MeasureFmaPeak: threads {}", threads);
  const internal::KernelTable& table = internal::KernelsFor(isa);
  // About 10^8 FMA instructions per thread for the vector builds; the scalar
  // build does a vector's work one lane at a time, so it runs fewer.
  const int64_t iterations = isa == Isa::kScalar ? 200000 : 8000000;
  return ChainsPeak(threads, clock, iterations, table.fma_flops_per_iteration, table.fma_chains);
}

double MeasureBf16DotPeak(int threads, ProbeClock clock) {
  LOCKSTEP_CHECK(threads >= 1, "MeasureBf16DotPeak: threads {}", threads);
  if (!Bf16DotAvailable(Isa::kAvx512)) return 0.0;
  const internal::DotPeakKernel kernel = internal::Avx512Bf16DotPeak();
  return ChainsPeak(threads, clock, 4000000, kernel.flops_per_iteration, kernel.chains);
}

namespace {

// The probe's weight matrix in its dtype: normal(0, 0.02) values, as f32
// in `f32`, and for the other dtypes their encoding (f16 / bf16 values,
// q8_0 / q4_0 blocks of each row) in `encoded`; returns a pointer to the
// matrix Pack reads.
const void* ProbeWeights(const MatmulProbe& probe, std::vector<float>* f32,
                         std::vector<uint8_t>* encoded) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  const size_t elements = static_cast<size_t>(probe.rows * probe.cols);
  f32->resize(elements);
  for (float& v : *f32) v = normal(rng);
  if (probe.dtype == DType::kF32) return f32->data();
  encoded->resize(static_cast<size_t>(DTypeBytes(probe.dtype, probe.rows * probe.cols)));
  if (DTypeIsQuantized(probe.dtype)) {
    QuantizeRow(probe.dtype, f32->data(), probe.rows * probe.cols, encoded->data());
    return encoded->data();
  }
  uint16_t* half = reinterpret_cast<uint16_t*>(encoded->data());
  for (size_t i = 0; i < elements; ++i) {
    half[i] = probe.dtype == DType::kF16 ? F32ToF16((*f32)[i]) : F32ToBf16((*f32)[i]);
  }
  return half;
}

// Packed copies of one matrix, cycled so that every call reads its weights
// from memory, and the activations for up to `most` tokens. Packed by the
// calling thread (first touch where they will be read).
class ProbeCopies {
 public:
  ProbeCopies(const MatmulProbe& probe, const void* data, size_t footprint, int64_t most)
      : x_(static_cast<size_t>(most * probe.cols), 0.5f),
        y_(static_cast<size_t>(most * probe.rows)) {
    auto pack = [&] {
      return PackedMatrix::Pack(probe.dtype, data, probe.rows, probe.cols,
                                ReductionSlice::Full(probe.cols), probe.compute);
    };
    copies_.push_back(pack());
    const size_t count =
        std::max<size_t>(2, (footprint + copies_[0].bytes() - 1) / copies_[0].bytes());
    while (copies_.size() < count) copies_.push_back(pack());
  }
  size_t size() const { return copies_.size(); }
  void Call(Isa isa, int64_t tokens) {
    Matmul(isa, copies_[next_], x_.data(), tokens, y_.data());
    next_ = (next_ + 1) % copies_.size();
  }

 private:
  std::vector<PackedMatrix> copies_;
  std::vector<float> x_, y_;
  size_t next_ = 0;
};

// The typical call (seconds on `clock`) of each token count of `tokens`:
// the median call of a pass, in the quieter of kPasses interleaved passes
// over the token counts (a burst of other work on a shared machine then
// spoils one pass of a count, not both), each running a count's calls for
// min_time_s / kPasses (at least 3 calls). The median, not the fastest call:
// a forward pass is a sum of many calls, and the fastest of hundreds is a
// rate the kernels do not sustain. One warm-up pass over every copy first (each copy is then
// in memory and the clock up), and one unmeasured call per count and pass.
// `sync`, if given, is arrived at before each measurement so that concurrent
// callers measure the same count at the same time.
constexpr int kPasses = 2;
std::vector<double> TypicalCalls(Isa isa, ProbeCopies& copies, const std::vector<int64_t>& tokens,
                                 double min_time_s, ProbeClock clock, int threads,
                                 std::barrier<>* sync = nullptr) {
  for (size_t i = 0; i < copies.size(); ++i) copies.Call(isa, tokens.empty() ? 1 : tokens[0]);
  std::vector<double> best(tokens.size(), 1e30);
  std::vector<double> times;
  for (int pass = 0; pass < kPasses; ++pass) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (sync != nullptr) sync->arrive_and_wait();
      copies.Call(isa, tokens[i]);
      times.clear();
      const double start = ProbeNow(clock, threads);
      while (times.size() < 3 || ProbeNow(clock, threads) - start < min_time_s / kPasses) {
        const double t0 = ProbeNow(clock, threads);
        copies.Call(isa, tokens[i]);
        times.push_back(ProbeNow(clock, threads) - t0);
      }
      std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
      best[i] = std::min(best[i], times[times.size() / 2]);
    }
  }
  return best;
}

}  // namespace

double MeasureInt8DotPeak(Isa isa, int threads, ProbeClock clock) {
  LOCKSTEP_CHECK(threads >= 1, "MeasureInt8DotPeak: threads {}", threads);
  if (!UsingVnni(isa)) return 0.0;
  const internal::DotPeakKernel kernel =
      isa == Isa::kAvx512 ? internal::Avx512VnniInt8DotPeak() : internal::Avx2VnniInt8DotPeak();
  return ChainsPeak(threads, clock, 4000000, kernel.flops_per_iteration, kernel.chains);
}

std::vector<double> MeasureMatmulFlops(Isa isa, int threads, const MatmulProbe& probe,
                                       const std::vector<int64_t>& tokens, ProbeClock clock) {
  LOCKSTEP_CHECK(threads >= 1 && probe.rows >= 1 && probe.cols >= 1, "MeasureMatmulFlops");
  std::vector<float> f32;
  std::vector<uint8_t> encoded;
  const void* data = ProbeWeights(probe, &f32, &encoded);
  int64_t most = 1;
  for (int64_t t : tokens) most = std::max(most, t);
  std::vector<double> rates;
  tbb::task_arena arena(threads);
  arena.execute([&] {
    ProbeCopies copies(probe, data, probe.footprint, most);
    const std::vector<double> best =
        TypicalCalls(isa, copies, tokens, probe.min_time_s, clock, threads);
    for (size_t i = 0; i < tokens.size(); ++i) {
      rates.push_back(2.0 * static_cast<double>(tokens[i]) * static_cast<double>(probe.rows) *
                      static_cast<double>(probe.cols) / best[i]);
    }
  });
  return rates;
}

std::vector<double> MeasureConcurrentMatmulFlops(Isa isa, int threads, const MatmulProbe& probe,
                                                 const std::vector<int64_t>& tokens) {
  LOCKSTEP_CHECK(threads >= 1 && probe.rows >= 1 && probe.cols >= 1,
                 "MeasureConcurrentMatmulFlops");
  std::vector<float> f32;
  std::vector<uint8_t> encoded;
  const void* data = ProbeWeights(probe, &f32, &encoded);
  int64_t most = 1;
  for (int64_t t : tokens) most = std::max(most, t);
  std::vector<std::vector<double>> best(static_cast<size_t>(threads),
                                        std::vector<double>(tokens.size()));
  std::barrier<> sync(threads);
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      // One thread each: Matmul's parallel_for stays on the calling thread.
      tbb::task_arena arena(1);
      arena.execute([&] {
        ProbeCopies copies(probe, data, probe.footprint / static_cast<size_t>(threads), most);
        best[static_cast<size_t>(w)] =
            TypicalCalls(isa, copies, tokens, probe.min_time_s, ProbeClock::kWall, 1, &sync);
      });
    });
  }
  for (std::thread& t : workers) t.join();
  std::vector<double> rates;
  for (size_t i = 0; i < tokens.size(); ++i) {
    double sum = 0;
    for (int w = 0; w < threads; ++w) {
      sum += 2.0 * static_cast<double>(tokens[i]) * static_cast<double>(probe.rows) *
             static_cast<double>(probe.cols) / best[static_cast<size_t>(w)][i];
    }
    rates.push_back(sum / threads);
  }
  return rates;
}

double MeasureAttentionSeconds(Isa isa, int threads, int queries, int num_heads, int num_kv_heads,
                               int head_dim, int repetitions, ProbeClock clock) {
  LOCKSTEP_CHECK(threads >= 1 && queries >= 1 && num_heads >= num_kv_heads && num_kv_heads >= 1 &&
                     num_heads % num_kv_heads == 0 && head_dim >= 1,
                 "MeasureAttentionSeconds");
  const KvPageShape shape{num_kv_heads, head_dim};
  const int pages = (queries + kKvPageSize - 1) / kKvPageSize;
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> k(static_cast<size_t>(pages) * shape.floats_per_page());
  std::vector<float> v(k.size());
  for (float& e : k) e = normal(rng);
  for (float& e : v) e = normal(rng);
  std::vector<const float*> k_pages, v_pages;
  for (int p = 0; p < pages; ++p) {
    k_pages.push_back(k.data() + p * shape.floats_per_page());
    v_pages.push_back(v.data() + p * shape.floats_per_page());
  }
  const size_t row = static_cast<size_t>(num_heads) * head_dim;
  std::vector<float> q(static_cast<size_t>(queries) * row);
  for (float& e : q) e = normal(rng);
  std::vector<float> out(q.size());
  std::vector<AttentionQuery> batch(static_cast<size_t>(queries));
  for (int i = 0; i < queries; ++i) {
    AttentionQuery& a = batch[static_cast<size_t>(i)];
    a.q = q.data() + static_cast<size_t>(i) * row;
    a.out = out.data() + static_cast<size_t>(i) * row;
    a.position = i;
    a.k_pages = k_pages.data();
    a.v_pages = v_pages.data();
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  double best = 0;
  tbb::task_arena arena(threads);
  arena.execute([&] {
    best = BestTime(repetitions, clock, threads,
                    [&] { Attention(isa, shape, num_heads, scale, batch.data(), queries); });
  });
  return best;
}

double MeasureDecodeAttentionSeconds(Isa isa, int threads, int sequences, int context,
                                     int num_heads, int num_kv_heads, int head_dim,
                                     size_t footprint, double min_time_s, ProbeClock clock) {
  LOCKSTEP_CHECK(threads >= 1 && sequences >= 1 && context >= 1 && num_heads >= num_kv_heads &&
                     num_kv_heads >= 1 && num_heads % num_kv_heads == 0 && head_dim >= 1,
                 "MeasureDecodeAttentionSeconds");
  const KvPageShape shape{num_kv_heads, head_dim};
  const int pages = (context + kKvPageSize - 1) / kKvPageSize;
  const size_t batch_floats = static_cast<size_t>(sequences) * pages * shape.floats_per_page();
  const size_t copies = std::max<size_t>(
      2, (footprint / sizeof(float) / 2 + batch_floats - 1) / batch_floats);  // K and V
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // One batch's keys and values drawn, then repeated in every copy (the
  // copies exist for their addresses; drawing 512 MiB would take longer
  // than the measurement).
  std::vector<float> k(copies * batch_floats), v(k.size());
  for (size_t i = 0; i < batch_floats; ++i) {
    k[i] = normal(rng);
    v[i] = normal(rng);
  }
  for (size_t c = 1; c < copies; ++c) {
    std::copy_n(k.begin(), batch_floats, k.begin() + c * batch_floats);
    std::copy_n(v.begin(), batch_floats, v.begin() + c * batch_floats);
  }
  // Page tables: copy c, sequence s, page p.
  std::vector<const float*> k_pages(copies * sequences * pages), v_pages(k_pages.size());
  for (size_t i = 0; i < k_pages.size(); ++i) {
    k_pages[i] = k.data() + i * shape.floats_per_page();
    v_pages[i] = v.data() + i * shape.floats_per_page();
  }
  const size_t row = static_cast<size_t>(num_heads) * head_dim;
  std::vector<float> q(static_cast<size_t>(sequences) * row);
  for (float& e : q) e = normal(rng);
  std::vector<float> out(q.size());
  std::vector<std::vector<AttentionQuery>> batches(copies);
  for (size_t c = 0; c < copies; ++c) {
    for (int s = 0; s < sequences; ++s) {
      AttentionQuery a;
      a.q = q.data() + static_cast<size_t>(s) * row;
      a.out = out.data() + static_cast<size_t>(s) * row;
      a.position = context - 1;
      const size_t first = (c * sequences + s) * pages;
      a.k_pages = k_pages.data() + first;
      a.v_pages = v_pages.data() + first;
      batches[c].push_back(a);
    }
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  std::vector<double> times;
  tbb::task_arena arena(threads);
  arena.execute([&] {
    size_t next = 0;
    auto call = [&] {
      Attention(isa, shape, num_heads, scale, batches[next].data(), sequences);
      next = (next + 1) % copies;
    };
    for (size_t c = 0; c < copies; ++c) call();
    const double start = ProbeNow(clock, threads);
    while (times.size() < 5 || ProbeNow(clock, threads) - start < min_time_s) {
      const double t0 = ProbeNow(clock, threads);
      call();
      times.push_back(ProbeNow(clock, threads) - t0);
    }
  });
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

}  // namespace lockstep::kernels
