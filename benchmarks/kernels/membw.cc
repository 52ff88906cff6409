// membw: the memory-bandwidth probe of lockstep::kernels (probe.h) as a
// program. STREAM-like read (sum of one array) and triad (a = b + s*c), for 1
// and 2 threads, over array sizes from cache-resident to well beyond the
// last-level cache, so the plateau that decode kernels are compared with is
// visible.
//
//   membw [--bytes N] [--threads T] [--repetitions R]
//     --bytes N        only this size (bytes; suffixes K, M, G); default: a sweep
//     --threads T      only this thread count; default: 1 and 2
//     --repetitions R  best of R timed passes (default 5)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "lockstep/kernels/probe.h"

namespace {

size_t ParseBytes(const char* s) {
  char* end = nullptr;
  double v = std::strtod(s, &end);
  switch (*end) {
    case 'K': case 'k': v *= 1024; break;
    case 'M': case 'm': v *= 1024 * 1024; break;
    case 'G': case 'g': v *= 1024.0 * 1024 * 1024; break;
    default: break;
  }
  return static_cast<size_t>(v);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<size_t> sizes = {size_t{16} << 20, size_t{64} << 20, size_t{256} << 20,
                               size_t{1} << 30, size_t{2} << 30};
  std::vector<int> threads = {1, 2};
  int repetitions = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--bytes" && i + 1 < argc) {
      sizes = {ParseBytes(argv[++i])};
    } else if (arg == "--threads" && i + 1 < argc) {
      threads = {std::atoi(argv[++i])};
    } else if (arg == "--repetitions" && i + 1 < argc) {
      repetitions = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: membw [--bytes N[K|M|G]] [--threads T] [--repetitions R]\n");
      return 2;
    }
  }
  std::printf("%-10s %8s %14s %14s\n", "bytes", "threads", "read GB/s", "triad GB/s");
  for (size_t bytes : sizes) {
    for (int t : threads) {
      const lockstep::kernels::MemoryBandwidth bw =
          lockstep::kernels::MeasureReadBandwidth(t, bytes, repetitions);
      std::printf("%-10s %8d %14.2f %14.2f\n",
                  (std::to_string(bytes >> 20) + "M").c_str(), t, bw.read_bytes_per_second / 1e9,
                  bw.triad_bytes_per_second / 1e9);
      std::fflush(stdout);
    }
  }
  return 0;
}
