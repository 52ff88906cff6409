// End-to-end benchmark of the one-rank engine (issue 2, item 10).
//
// For each model, dtype and thread count, batch 1:
//   decode   tokens/s of single-token steps after an 8-token prompt, the weight bytes a
//            step streams (every matrix incl. the lm_head, norms, one
//            embedding row) times tokens/s, and that over the read bandwidth
//            measured with the same thread count            (target >= 0.90);
//   decode16 (--decode-batch 16) tokens/s of steps that decode 16 sequences at
//            once (one token each, after 8-token prompts);
//   prefill  tokens/s of one prompt read in one step, its FLOP/s (2 per
//            multiply-add of every matmul and of attention's QK and PV) over
//            the FMA peak with the same thread count      (target >= 0.50);
//            bf16 compute rows over the vdpbf16ps peak where their kernels
//            use the instruction (else FMA), q8_0 and q4_0 rows
//            over the vpdpbusd peak where their kernels use it (probe.h).
// The anchors (kernels/probe.h) are measured again for every row, in each
// repeat right before the engine runs, so a ratio compares figures taken
// seconds apart. Every figure is a best: anchors and prefill the best of
// --repeats, decode the best single step of all repeats.
//
// Two clocks (probe.h, ProbeClock): wall time, and the process's CPU time
// divided by the thread count. On a machine shared with other jobs the
// wall-clock figures show this process's share of the cores; the CPU-time
// ratios (kernel and anchor timed the same way) show how close the kernels
// come to what the hardware does while they run. Both are printed.
// Models are synthesized into a scratch folder on first use (not committed).
//
//   e2e_benchmark [--scratch DIR] [--models llama-110m,tinyllama-1.1b]
//                 [--dtypes f32,f16,bf16] [--threads 1,2] [--isa auto]
//                 [--decode-tokens 32] [--prefill-tokens 256] [--repeats 3]
//                 [--decode-batch 16] [--computes float,bf16] [--attention-share]
//                 [--prefill-chunk N]
//
// --prefill-chunk N: read the prompt in steps of N tokens (what `lockstep
// run --max-step-tokens N` does), timed as a whole; 0 (default): one step.
//
// --attention-share: also time the attention of the prefill alone (the
// causal prompt of --prefill-tokens positions through kernels::Attention, on
// the model's head shape, MeasureAttentionSeconds of probe.h) times the
// number of layers, right after each repeat's prefill, and print its share of
// the prefill (long prompts: issue 17 item 3), and its GFLOP/s (QK and PV
// over the causal triangle) over the FMA peak of the same repeats.
//
// --computes: the matmul arithmetic (kernels/matmul.h, Compute) of each row;
// bf16 compute runs on bf16 models only (rows "bf16+bf16c"), the other
// dtypes are skipped for it. Same weights, same process, side by side.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "lockstep/base/check.h"
#include "lockstep/base/log.h"
#include "lockstep/engine/engine.h"
#include "lockstep/kernels/bf16_matmul.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/kernels/probe.h"
#include "lockstep/kernels/sampling.h"
#include "lockstep/model/model_file.h"
#include "lockstep/model/synth.h"
#include "lockstep/partitioner/element_type.h"

namespace lockstep {
namespace {

constexpr int kDecodePrompt = 8;  // prompt length before the timed decode steps
// Array size of the bandwidth anchor: above the last-level cache.
constexpr size_t kProbeBytes = size_t{1} << 30;

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    if (end > pos) parts.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return parts;
}

// FLOPs of reading a prompt of `tokens` tokens in one step: every layer
// matmul for every token, attention QK and PV over the causal triangle, and
// the lm_head for the last token only (the only logits a prefill needs).
// QK and PV of a causal prompt of `tokens` positions, all layers.
double AttentionFlops(const partitioner::ModelConfig& c, int64_t tokens) {
  const double attention_pairs = double(tokens) * double(tokens + 1) / 2.0;
  return c.num_layers * 2.0 * 2.0 * attention_pairs * double(c.q_dim());
}

double PrefillFlops(const partitioner::ModelConfig& c, int64_t tokens) {
  const double h = double(c.hidden_size);
  const double per_token_matmul =
      2.0 * (h * c.q_dim() * 2 + h * c.kv_dim() * 2 + 3.0 * h * c.intermediate_size);
  const double attention_pairs = double(tokens) * double(tokens + 1) / 2.0;
  const double attention = 2.0 * 2.0 * attention_pairs * double(c.q_dim());
  return c.num_layers * (per_token_matmul * tokens + attention) + 2.0 * h * double(c.vocab_size);
}

// Best (shortest) time of a piece of work on both clocks, and the best
// anchor figures (largest) measured next to it.
struct Best {
  double wall = 1e30, cpu = 1e30;
  void Update(double w, double c) {
    wall = std::min(wall, w);
    cpu = std::min(cpu, c);
  }
};

// Times fn() on both clocks.
template <typename Fn>
std::pair<double, double> TimeBoth(int threads, const Fn& fn) {
  const double w0 = kernels::ProbeNow(kernels::ProbeClock::kWall, threads);
  const double c0 = kernels::ProbeNow(kernels::ProbeClock::kCpu, threads);
  fn();
  return {kernels::ProbeNow(kernels::ProbeClock::kWall, threads) - w0,
          kernels::ProbeNow(kernels::ProbeClock::kCpu, threads) - c0};
}

struct Row {
  std::string model, dtype;
  int threads = 0;
  // Anchors: read bandwidth (bytes/s) and FMA peak (FLOP/s), wall and CPU.
  double bandwidth_wall = 0, bandwidth_cpu = 0, peak_wall = 0, peak_cpu = 0;
  double step_bytes = 0, prefill_flop = 0;
  int prefill_tokens = 0;
  Best decode, prefill;  // seconds per decode step, seconds per prefill
  Best decode_batch;     // seconds per step of the batched decode
  Best attention;        // seconds of the prefill's attention (all layers), if measured
  double attention_flop = 0;              // its QK and PV over the causal triangle
  double fma_peak_wall = 0, fma_peak_cpu = 0;  // FMA peak (attention's anchor), if measured
};

int Main(int argc, char** argv) {
  InitLogging();
  CLI::App app{"lockstep end-to-end benchmark (one rank, batch 1)"};
  std::string scratch = (std::filesystem::temp_directory_path() / "lockstep-e2e").string();
  std::string models = "llama-110m,tinyllama-1.1b";
  std::string dtypes = "f32,f16,bf16";
  std::string thread_list = "1,2";
  std::string isa_name = "auto";
  int decode_tokens = 32;
  int prefill_tokens = 256;
  int repeats = 3;
  int decode_batch = 16;
  std::string computes = "float";
  bool attention_share = false;
  int prefill_chunk = 0;
  app.add_option("--scratch", scratch, "Folder for the synthesized models");
  app.add_option("--decode-batch", decode_batch,
                 "Sequences decoded together in the batched decode (1: skip it)");
  app.add_option("--models", models, "Model presets, comma-separated");
  app.add_option("--dtypes", dtypes, "Weight dtypes, comma-separated");
  app.add_option("--threads", thread_list, "Thread counts, comma-separated");
  app.add_option("--isa", isa_name, "auto, avx512, avx2 or scalar");
  app.add_option("--decode-tokens", decode_tokens, "Decode steps timed per run");
  app.add_option("--prefill-tokens", prefill_tokens, "Prompt length of the prefill");
  app.add_option("--repeats", repeats, "Best of this many runs");
  app.add_option("--computes", computes, "Matmul arithmetic per row: float, bf16 (comma-separated)");
  app.add_flag("--attention-share", attention_share,
               "Also time the prefill's attention alone and print its share");
  app.add_option("--prefill-chunk", prefill_chunk,
                 "Prompt tokens per step of the prefill (0: the whole prompt in one step)");
  CLI11_PARSE(app, argc, argv);

  Result<kernels::Isa> isa = kernels::ParseIsa(isa_name);
  if (!isa.ok()) {
    fmt::print(stderr, "e2e_benchmark: {}\n", isa.status().message());
    return 2;
  }
  std::vector<int> threads;
  for (const std::string& t : Split(thread_list)) threads.push_back(std::stoi(t));
  std::filesystem::create_directories(scratch);

  std::vector<Row> rows;
  for (const std::string& model_name : Split(models)) {
    Result<partitioner::ModelConfig> config = partitioner::ModelPreset(model_name);
    if (!config.ok()) {
      fmt::print(stderr, "e2e_benchmark: {}\n", config.status().message());
      return 2;
    }
    for (const std::string& dtype_name : Split(dtypes)) {
      Result<DType> dtype = ParseDType(dtype_name);
      if (!dtype.ok()) {
        fmt::print(stderr, "e2e_benchmark: {}\n", dtype.status().message());
        return 2;
      }
      const std::string path = fmt::format("{}/{}-{}.h5", scratch, model_name, dtype_name);
      if (!std::filesystem::exists(path)) {
        fmt::print("synthesizing {} ...\n", path);
        std::fflush(stdout);
        Status s = runtime::SynthesizeModel(*config, *dtype, 1, path);
        if (!s.ok()) {
          fmt::print(stderr, "e2e_benchmark: {}\n", s.message());
          return 1;
        }
      }
      Result<runtime::ModelFile> file = runtime::ModelFile::Open(path);
      if (!file.ok()) {
        fmt::print(stderr, "e2e_benchmark: {}\n", file.status().message());
        return 1;
      }
      const runtime::ShardSpec shard = runtime::ShardSpec::SingleRank(*config);
      for (const std::string& compute_name : Split(computes)) {
      Result<kernels::Compute> compute = kernels::ParseCompute(compute_name);
      if (!compute.ok()) {
        fmt::print(stderr, "e2e_benchmark: {}\n", compute.status().message());
        return 2;
      }
      if (*compute == kernels::Compute::kBf16 && *dtype != DType::kBF16) continue;
      for (int t : threads) {
        runtime::LoadOptions load_options;
        load_options.compute = *compute;
        Result<runtime::ModelWeights> weights = runtime::LoadWeights(
            *file, shard, shard.Shards(*config, partitioner::FromDType(*dtype)), load_options);
        if (!weights.ok()) {
          fmt::print(stderr, "e2e_benchmark: {}\n", weights.status().message());
          return 1;
        }
        const double step_bytes = double(weights->decode_bytes_per_token());
        runtime::EngineOptions options;
        options.threads = t;
        options.isa = *isa;
        const int32_t slot_pages =
            runtime::KvPagesFor(std::max(prefill_tokens, kDecodePrompt + decode_tokens));
        options.max_slots = std::max(1, decode_batch);
        options.kv_pages = slot_pages * options.max_slots;
        auto engine = runtime::Engine::Create(std::move(weights).value(), options);
        LOCKSTEP_CHECK(engine.ok(), "{}", engine.status().message());
        runtime::Engine& e = **engine;
        std::vector<runtime::SlotBinding> bindings;
        for (int32_t slot = 0; slot < options.max_slots; ++slot) {
          std::vector<int32_t> pages;
          for (int32_t p = 0; p < slot_pages; ++p) pages.push_back(slot * slot_pages + p);
          bindings.push_back({slot, pages});
        }
        e.ApplyBindings(bindings);

        runtime::TokenBatch prompt;
        for (int i = 0; i < prefill_tokens; ++i) {
          prompt.Add(int32_t((i * 7919 + 1) % config->vocab_size), 0, i, i + 1 == prefill_tokens);
        }
        Row row;
        row.model = model_name;
        row.dtype = *compute == kernels::Compute::kBf16 ? dtype_name + "+bf16c" : dtype_name;
        row.threads = t;
        row.step_bytes = step_bytes;
        row.prefill_tokens = prefill_tokens;
        row.prefill_flop = PrefillFlops(*config, prefill_tokens);
        row.attention_flop = AttentionFlops(*config, prefill_tokens);
        std::vector<float> logits;
        for (int r = 0; r < repeats; ++r) {
          // The anchors, right before this repeat's runs, on both clocks.
          for (kernels::ProbeClock clock :
               {kernels::ProbeClock::kWall, kernels::ProbeClock::kCpu}) {
            const double bw =
                kernels::MeasureReadBandwidth(t, kProbeBytes, 2, clock).read_bytes_per_second;
            // The bf16 compute's anchor is the vdpbf16ps peak where its
            // kernels use the instruction (Bf16StepFor; its other steps are
            // FMAs), the quantized types' the vpdpbusd peak (where their
            // kernels use it), the float compute's the FMA peak.
            double peak = 0;
            if (*compute == kernels::Compute::kBf16 &&
                kernels::Bf16StepFor(*isa) == kernels::Bf16Step::kInstruction) {
              peak = kernels::MeasureBf16DotPeak(t, clock);
            } else if (DTypeIsQuantized(*dtype)) {
              peak = kernels::MeasureInt8DotPeak(*isa, t, clock);
            }
            double fma_peak = 0;
            if (peak == 0) peak = fma_peak = kernels::MeasureFmaPeak(*isa, t, clock);
            if (attention_share && fma_peak == 0) {
              fma_peak = kernels::MeasureFmaPeak(*isa, t, clock);
            }
            double& best_fma =
                clock == kernels::ProbeClock::kWall ? row.fma_peak_wall : row.fma_peak_cpu;
            best_fma = std::max(best_fma, fma_peak);
            double& best_bw =
                clock == kernels::ProbeClock::kWall ? row.bandwidth_wall : row.bandwidth_cpu;
            double& best_peak = clock == kernels::ProbeClock::kWall ? row.peak_wall : row.peak_cpu;
            best_bw = std::max(best_bw, bw);
            best_peak = std::max(best_peak, peak);
          }
          const auto [pw, pc] = TimeBoth(t, [&] {
            if (prefill_chunk <= 0 || prefill_chunk >= prefill_tokens) {
              LOCKSTEP_CHECK(e.Forward(prompt, &logits).ok());
              return;
            }
            runtime::TokenBatch chunk;
            for (int c0 = 0; c0 < prefill_tokens; c0 += prefill_chunk) {
              chunk.Clear();
              const int c1 = std::min(prefill_tokens, c0 + prefill_chunk);
              for (int i = c0; i < c1; ++i) {
                chunk.Add(prompt.tokens[size_t(i)], 0, i, i + 1 == prefill_tokens);
              }
              LOCKSTEP_CHECK(e.Forward(chunk, &logits).ok());
            }
          });
          row.prefill.Update(pw, pc);
          if (attention_share) {
            for (kernels::ProbeClock clock :
                 {kernels::ProbeClock::kWall, kernels::ProbeClock::kCpu}) {
              const double a =
                  config->num_layers * kernels::MeasureAttentionSeconds(
                                           *isa,
                                           t, prefill_tokens, config->num_heads,
                                           config->num_kv_heads, config->head_dim, 2, clock);
              if (clock == kernels::ProbeClock::kWall) {
                row.attention.wall = std::min(row.attention.wall, a);
              } else {
                row.attention.cpu = std::min(row.attention.cpu, a);
              }
            }
          }
          // Decode after a short prompt, so that the steps stream the weights
          // and hardly any KV cache (the figure compared is weight bytes).
          runtime::TokenBatch step;
          for (int i = 0; i < kDecodePrompt; ++i) {
            step.Add(prompt.tokens[size_t(i)], 0, i, i + 1 == kDecodePrompt);
          }
          LOCKSTEP_CHECK(e.Forward(step, &logits).ok());
          int32_t token = kernels::Argmax(logits.data(), config->vocab_size);
          // Each step timed on its own: on a shared machine a step more often
          // runs whole without another job taking a core in the middle.
          for (int i = 0; i < decode_tokens; ++i) {
            step.Clear();
            step.Add(token, 0, kDecodePrompt + i, true);
            const auto [dw, dc] =
                TimeBoth(t, [&] { LOCKSTEP_CHECK(e.Forward(step, &logits).ok()); });
            row.decode.Update(dw, dc);
            token = kernels::Argmax(logits.data(), config->vocab_size);
          }
          if (decode_batch > 1) {
            // decode_batch sequences: their 8-token prompts in one step, then
            // steps of one token per sequence.
            runtime::TokenBatch batch;
            for (int32_t s = 0; s < decode_batch; ++s) {
              for (int i = 0; i < kDecodePrompt; ++i) {
                batch.Add(prompt.tokens[size_t(s + i)], s, i, i + 1 == kDecodePrompt);
              }
            }
            LOCKSTEP_CHECK(e.Forward(batch, &logits).ok());
            for (int i = 0; i < decode_tokens; ++i) {
              std::vector<int32_t> next;
              for (int32_t s = 0; s < decode_batch; ++s) {
                next.push_back(kernels::Argmax(logits.data() + size_t(s) * config->vocab_size,
                                               config->vocab_size));
              }
              batch.Clear();
              for (int32_t s = 0; s < decode_batch; ++s) {
                batch.Add(next[size_t(s)], s, kDecodePrompt + i, true);
              }
              const auto [bw, bc] =
                  TimeBoth(t, [&] { LOCKSTEP_CHECK(e.Forward(batch, &logits).ok()); });
              row.decode_batch.Update(bw, bc);
            }
          }
        }
        fmt::print(
            "{:<15} {:<5} {} thread(s): decode {:8.2f} tok/s ({:.2f} of bandwidth, CPU "
            "time {:.2f}); decode x{} {:8.1f} tok/s; prefill {:8.1f} tok/s ({:.2f} of FMA "
            "peak, CPU time {:.2f})\n",
            row.model, row.dtype, row.threads, 1.0 / row.decode.wall,
            row.step_bytes / row.decode.wall / row.bandwidth_wall,
            row.step_bytes / row.decode.cpu / row.bandwidth_cpu, decode_batch,
            decode_batch > 1 ? decode_batch / row.decode_batch.wall : 0.0,
            row.prefill_tokens / row.prefill.wall,
            row.prefill_flop / row.prefill.wall / row.peak_wall,
            row.prefill_flop / row.prefill.cpu / row.peak_cpu);
        if (attention_share) {
          fmt::print("{:<15} {:<5} {} thread(s): prefill of {} tokens {:.3f} s, its attention "
                     "{:.3f} s = {:.2f} of it (CPU time {:.3f} s of {:.3f} s = {:.2f})\n",
                     row.model, row.dtype, row.threads, row.prefill_tokens, row.prefill.wall,
                     row.attention.wall, row.attention.wall / row.prefill.wall, row.attention.cpu,
                     row.prefill.cpu, row.attention.cpu / row.prefill.cpu);
          // Attention against the FMA peak of the same repeats (the float
          // compute's anchor; attention runs in f32 in every mode).
          fmt::print("{:<15} {:<5} {} thread(s): attention {:.1f} GFLOP, {:.1f} GFLOP/s = {:.2f} "
                     "of the FMA peak (CPU time {:.1f} GFLOP/s = {:.2f})\n",
                     row.model, row.dtype, row.threads, row.attention_flop / 1e9,
                     row.attention_flop / row.attention.wall / 1e9,
                     row.attention_flop / row.attention.wall / row.fma_peak_wall,
                     row.attention_flop / row.attention.cpu / 1e9,
                     row.attention_flop / row.attention.cpu / row.fma_peak_cpu);
        }
        std::fflush(stdout);
        rows.push_back(row);
      }
      }
    }
  }

  // Wall clock: what a user sees on this (possibly shared) machine.
  fmt::print("\nwall clock (best of {}; anchors measured in the same repeat):\n", repeats);
  fmt::print(
      "| model | dtype | threads | decode tok/s | decode GB/s | read GB/s | decode / read "
      "(>= 0.90) | prefill tok/s | prefill GFLOP/s | peak GFLOP/s (FMA; bf16c: vdpbf16ps if its step; q8_0, q4_0: vpdpbusd) | prefill / peak "
      "(>= 0.50) | decode x{} tok/s |\n", decode_batch);
  fmt::print("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    fmt::print(
        "| {} | {} | {} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.1f} | {:.1f} | {:.1f} | "
        "{:.2f} | {:.1f} |\n",
        r.model, r.dtype, r.threads, 1.0 / r.decode.wall, r.step_bytes / r.decode.wall / 1e9,
        r.bandwidth_wall / 1e9, r.step_bytes / r.decode.wall / r.bandwidth_wall,
        r.prefill_tokens / r.prefill.wall, r.prefill_flop / r.prefill.wall / 1e9, r.peak_wall / 1e9,
        r.prefill_flop / r.prefill.wall / r.peak_wall,
        decode_batch > 1 ? decode_batch / r.decode_batch.wall : 0.0);
  }
  // CPU time / threads: the same runs, timed while this process ran.
  fmt::print("\nCPU time / threads (same runs):\n");
  fmt::print(
      "| model | dtype | threads | decode tok/s | decode GB/s | read GB/s | decode / read "
      "(>= 0.90) | prefill tok/s | prefill GFLOP/s | peak GFLOP/s (FMA; bf16c: vdpbf16ps if its step; q8_0, q4_0: vpdpbusd) | prefill / peak "
      "(>= 0.50) | decode x{} tok/s |\n", decode_batch);
  fmt::print("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    fmt::print(
        "| {} | {} | {} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.1f} | {:.1f} | {:.1f} | "
        "{:.2f} | {:.1f} |\n",
        r.model, r.dtype, r.threads, 1.0 / r.decode.cpu, r.step_bytes / r.decode.cpu / 1e9,
        r.bandwidth_cpu / 1e9, r.step_bytes / r.decode.cpu / r.bandwidth_cpu,
        r.prefill_tokens / r.prefill.cpu, r.prefill_flop / r.prefill.cpu / 1e9, r.peak_cpu / 1e9,
        r.prefill_flop / r.prefill.cpu / r.peak_cpu,
        decode_batch > 1 ? decode_batch / r.decode_batch.cpu : 0.0);
  }
  return 0;
}

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  return lockstep::Main(argc, argv);
}
