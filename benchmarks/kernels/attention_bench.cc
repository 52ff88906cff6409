// attention_bench: causal prefill attention (kernels/attention.h) for long
// prompts, as a program (issue 17 item 3). For each prompt length N the N
// queries at positions 0..N-1 of one sequence go through one Attention call
// (MeasureAttentionSeconds, probe.h); printed: seconds, GFLOP/s (2 per
// multiply-add of QK and PV over the causal triangle: 4 * head_dim per
// (query, key, head)) and that over the FMA peak measured right before with
// the same thread count, Isa and clock.
//
//   attention_bench [--positions 2048,4096,8192] [--heads 32] [--kv-heads 8]
//                   [--head-dim 64] [--threads 2] [--isa auto]
//                   [--repetitions 3] [--cpu-time]
// Defaults: llama-3.2-1b's head shape.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "lockstep/kernels/isa.h"
#include "lockstep/kernels/probe.h"

int main(int argc, char** argv) {
  namespace lk = lockstep::kernels;
  CLI::App app{"attention_bench: causal prefill attention against the FMA peak"};
  std::vector<int> positions = {2048, 4096, 8192};
  int heads = 32, kv_heads = 8, head_dim = 64, threads = 2, repetitions = 3;
  std::string isa_name = "auto";
  bool cpu_time = false;
  app.add_option("--positions", positions, "prompt lengths")->delimiter(',');
  app.add_option("--heads", heads, "query heads");
  app.add_option("--kv-heads", kv_heads, "KV heads");
  app.add_option("--head-dim", head_dim, "head dimension");
  app.add_option("--threads", threads, "threads");
  app.add_option("--isa", isa_name, "scalar, avx2, avx512 or auto");
  app.add_option("--repetitions", repetitions, "best of");
  app.add_flag("--cpu-time", cpu_time, "process CPU time / threads instead of wall clock");
  CLI11_PARSE(app, argc, argv);
  const auto isa = lk::ParseIsa(isa_name);
  if (!isa.ok()) {
    fmt::print(stderr, "attention_bench: {}\n", isa.status().message());
    return 2;
  }
  const lk::ProbeClock clock = cpu_time ? lk::ProbeClock::kCpu : lk::ProbeClock::kWall;
  fmt::print(
      "| positions | heads | kv heads | head dim | threads | isa | seconds | GFLOP/s | "
      "FMA peak GFLOP/s | fraction of peak |\n|---|---|---|---|---|---|---|---|---|---|\n");
  for (int n : positions) {
    const double peak = lk::MeasureFmaPeak(*isa, threads, clock);
    const double s = lk::MeasureAttentionSeconds(*isa, threads, n, heads, kv_heads, head_dim,
                                                 repetitions, clock);
    const double flop = 4.0 * head_dim * heads * (static_cast<double>(n) * (n + 1) / 2);
    fmt::print("| {} | {} | {} | {} | {} | {} | {:.4f} | {:.1f} | {:.1f} | {:.3f} |\n", n, heads,
               kv_heads, head_dim, threads, lk::IsaName(*isa), s, flop / s / 1e9, peak / 1e9,
               flop / s / peak);
    std::fflush(stdout);
  }
  return 0;
}
