// End-to-end benchmark of the one-rank engine (issue 2, item 10).
//
// In one run: the machine's anchors (memory read bandwidth and FMA peak,
// kernels/probe.h, for each thread count), then for each model, dtype and
// thread count, batch 1:
//   decode   tokens/s of single-token steps after an 8-token prompt, the weight bytes a
//            step streams (every matrix incl. the lm_head, norms, one
//            embedding row) times tokens/s, and that over the read bandwidth
//            measured with the same thread count            (target >= 0.90);
//   prefill  tokens/s of one prompt read in one step, its FLOP/s (2 per
//            multiply-add of every matmul and of attention's QK and PV) over
//            the FMA peak with the same thread count      (target >= 0.50).
// Models are synthesized into a scratch folder on first use (not committed).
//
//   e2e_benchmark [--scratch DIR] [--models llama-110m,tinyllama-1.1b]
//                 [--dtypes f32,f16,bf16] [--threads 1,2] [--isa auto]
//                 [--decode-tokens 32] [--prefill-tokens 256] [--repeats 3]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "lockstep/base/check.h"
#include "lockstep/base/log.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/kernels/probe.h"
#include "lockstep/kernels/sampling.h"
#include "lockstep/runtime/engine.h"
#include "lockstep/runtime/model_file.h"
#include "lockstep/runtime/synth.h"

namespace lockstep {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kDecodePrompt = 8;  // prompt length before the timed decode steps

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

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
double PrefillFlops(const partitioner::ModelConfig& c, int64_t tokens) {
  const double h = double(c.hidden_size);
  const double per_token_matmul =
      2.0 * (h * c.q_dim() * 2 + h * c.kv_dim() * 2 + 3.0 * h * c.intermediate_size);
  const double attention_pairs = double(tokens) * double(tokens + 1) / 2.0;
  const double attention = 2.0 * 2.0 * attention_pairs * double(c.q_dim());
  return c.num_layers * (per_token_matmul * tokens + attention) +
         2.0 * h * double(c.vocab_size);
}

struct Row {
  std::string model, dtype;
  int threads = 0;
  double decode_tokens_per_s = 0, decode_bytes_per_s = 0, decode_ratio = 0;
  double prefill_tokens_per_s = 0, prefill_flops = 0, prefill_ratio = 0;
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
  app.add_option("--scratch", scratch, "Folder for the synthesized models");
  app.add_option("--models", models, "Model presets, comma-separated");
  app.add_option("--dtypes", dtypes, "Weight dtypes, comma-separated");
  app.add_option("--threads", thread_list, "Thread counts, comma-separated");
  app.add_option("--isa", isa_name, "auto, avx512, avx2 or scalar");
  app.add_option("--decode-tokens", decode_tokens, "Decode steps timed per run");
  app.add_option("--prefill-tokens", prefill_tokens, "Prompt length of the prefill");
  app.add_option("--repeats", repeats, "Best of this many runs");
  CLI11_PARSE(app, argc, argv);

  Result<kernels::Isa> isa = kernels::ParseIsa(isa_name);
  if (!isa.ok()) {
    fmt::print(stderr, "e2e_benchmark: {}\n", isa.status().message());
    return 2;
  }
  std::vector<int> threads;
  for (const std::string& t : Split(thread_list)) threads.push_back(std::stoi(t));
  std::filesystem::create_directories(scratch);

  // Anchors, measured in this run.
  std::map<int, double> bandwidth, peak;
  for (int t : threads) {
    bandwidth[t] = kernels::MeasureReadBandwidth(t).read_bytes_per_second;
    peak[t] = kernels::MeasureFmaPeak(*isa, t);
    fmt::print("anchor: {} thread(s): read bandwidth {:.2f} GB/s, FMA peak ({}) {:.1f} GFLOP/s\n",
               t, bandwidth[t] / 1e9, kernels::IsaName(*isa), peak[t] / 1e9);
  }
  std::fflush(stdout);

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
      for (int t : threads) {
        Result<runtime::ModelWeights> weights = runtime::LoadWeights(*file, shard);
        if (!weights.ok()) {
          fmt::print(stderr, "e2e_benchmark: {}\n", weights.status().message());
          return 1;
        }
        const double step_bytes = double(weights->decode_bytes_per_token());
        runtime::EngineOptions options;
        options.threads = t;
        options.isa = *isa;
        options.max_slots = 1;
        options.kv_pages = runtime::KvPagesFor(std::max(prefill_tokens, kDecodePrompt + decode_tokens));
        auto engine = runtime::Engine::Create(std::move(weights).value(), options);
        LOCKSTEP_CHECK(engine.ok(), "{}", engine.status().message());
        runtime::Engine& e = **engine;
        e.ApplyBindings(std::vector<runtime::SlotBinding>{
            {0, [&] {
               std::vector<int32_t> pages;
               for (int32_t p = 0; p < options.kv_pages; ++p) pages.push_back(p);
               return pages;
             }()}});

        runtime::TokenBatch prompt;
        for (int i = 0; i < prefill_tokens; ++i) {
          prompt.Add(int32_t((i * 7919 + 1) % config->vocab_size), 0, i, i + 1 == prefill_tokens);
        }
        std::vector<float> logits;
        double best_prefill = 1e30, best_decode = 1e30;
        for (int r = 0; r < repeats; ++r) {
          Clock::time_point start = Clock::now();
          LOCKSTEP_CHECK(e.Forward(prompt, &logits).ok());
          best_prefill = std::min(best_prefill, Since(start));
          // Decode after a short prompt, so that the steps stream the weights
          // and hardly any KV cache (the figure compared is weight bytes).
          runtime::TokenBatch step;
          for (int i = 0; i < kDecodePrompt; ++i) {
            step.Add(prompt.tokens[size_t(i)], 0, i, i + 1 == kDecodePrompt);
          }
          LOCKSTEP_CHECK(e.Forward(step, &logits).ok());
          int32_t token = kernels::Argmax(logits.data(), config->vocab_size);
          start = Clock::now();
          for (int i = 0; i < decode_tokens; ++i) {
            step.Clear();
            step.Add(token, 0, kDecodePrompt + i, true);
            LOCKSTEP_CHECK(e.Forward(step, &logits).ok());
            token = kernels::Argmax(logits.data(), config->vocab_size);
          }
          best_decode = std::min(best_decode, Since(start) / decode_tokens);
        }
        Row row;
        row.model = model_name;
        row.dtype = dtype_name;
        row.threads = t;
        row.decode_tokens_per_s = 1.0 / best_decode;
        row.decode_bytes_per_s = step_bytes / best_decode;
        row.decode_ratio = row.decode_bytes_per_s / bandwidth[t];
        row.prefill_tokens_per_s = prefill_tokens / best_prefill;
        row.prefill_flops = PrefillFlops(*config, prefill_tokens) / best_prefill;
        row.prefill_ratio = row.prefill_flops / peak[t];
        fmt::print("{:<15} {:<5} {} thread(s): decode {:8.2f} tok/s {:6.2f} GB/s ({:.2f} of "
                   "bandwidth); prefill {:8.1f} tok/s {:6.1f} GFLOP/s ({:.2f} of peak)\n",
                   row.model, row.dtype, row.threads, row.decode_tokens_per_s,
                   row.decode_bytes_per_s / 1e9, row.decode_ratio, row.prefill_tokens_per_s,
                   row.prefill_flops / 1e9, row.prefill_ratio);
        std::fflush(stdout);
        rows.push_back(row);
      }
    }
  }

  fmt::print("\n| model | dtype | threads | decode tok/s | decode GB/s | / read bandwidth "
             "(>= 0.90) | prefill tok/s | prefill GFLOP/s | / FMA peak (>= 0.50) |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    fmt::print("| {} | {} | {} | {:.2f} | {:.2f} | {:.2f} | {:.1f} | {:.1f} | {:.2f} |\n", r.model,
               r.dtype, r.threads, r.decode_tokens_per_s, r.decode_bytes_per_s / 1e9,
               r.decode_ratio, r.prefill_tokens_per_s, r.prefill_flops / 1e9, r.prefill_ratio);
  }
  for (int t : threads) {
    fmt::print("anchors, {} thread(s): read bandwidth {:.2f} GB/s, FMA peak {:.1f} GFLOP/s\n", t,
               bandwidth[t] / 1e9, peak[t] / 1e9);
  }
  return 0;
}

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) { return lockstep::Main(argc, argv); }
