// quant_accuracy: how far a quantized model's logits are from its source's
// (benchmarks/RESULTS.md, "## quantized").
//
// Feeds the same sequence of token ids to a reference model (f32, f16 or
// bf16) and to each model given, asks for the logits at every position, and
// prints per model: the mean and largest relative L2 error of the logits
// (|l - l_ref| / |l_ref| per position) and the share of positions whose
// top-1 token agrees. The token ids are pseudo-random (SplitMix64 of the
// position and --seed) or read from --tokens (one id per line, e.g. from
// llama.cpp's tokenizer), so llama.cpp can be fed the same sequence.
//
//   quant_accuracy --reference f16.h5 --models q8_0.h5,q4_0.h5 [--positions 1000]
//                  [--threads 2] [--chunk 250] [--seed 1] [--tokens FILE]
//                  [--dump-logits PREFIX]   (raw f32 logits per model, for comparisons)
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "lockstep/base/check.h"
#include "lockstep/base/log.h"
#include "lockstep/engine/engine.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/kernels/sampling.h"
#include "lockstep/model/model_file.h"

namespace lockstep {
namespace {

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

// Logits [positions][vocab] of `tokens` read as one sequence, in chunks.
std::vector<float> AllLogits(const std::string& path, const std::vector<int32_t>& tokens,
                             int threads, int chunk) {
  Result<runtime::ModelFile> file = runtime::ModelFile::Open(path);
  LOCKSTEP_CHECK(file.ok(), "{}", file.status().message());
  const partitioner::ModelConfig config = file->config();
  Result<runtime::ModelWeights> weights =
      runtime::LoadWeights(*file, runtime::ShardSpec::SingleRank(config));
  LOCKSTEP_CHECK(weights.ok(), "{}", weights.status().message());
  runtime::EngineOptions options;
  options.threads = threads;
  options.isa = kernels::BestIsa();
  options.max_slots = 1;
  options.kv_pages = runtime::KvPagesFor(static_cast<int64_t>(tokens.size()));
  auto engine = runtime::Engine::Create(std::move(weights).value(), options);
  LOCKSTEP_CHECK(engine.ok(), "{}", engine.status().message());
  std::vector<int32_t> pages;
  for (int32_t p = 0; p < options.kv_pages; ++p) pages.push_back(p);
  (*engine)->ApplyBindings(std::vector<runtime::SlotBinding>{{0, pages}});
  std::vector<float> all, logits;
  for (size_t begin = 0; begin < tokens.size(); begin += static_cast<size_t>(chunk)) {
    runtime::TokenBatch batch;
    const size_t end = std::min(tokens.size(), begin + static_cast<size_t>(chunk));
    for (size_t i = begin; i < end; ++i) {
      batch.Add(tokens[i], 0, static_cast<int32_t>(i), true);
    }
    LOCKSTEP_CHECK((*engine)->Forward(batch, &logits).ok());
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

int Main(int argc, char** argv) {
  InitLogging();
  CLI::App app{"quantized models' logits against their source's"};
  std::string reference, models, tokens_path, dump;
  int positions = 1000, threads = 2, chunk = 250;
  uint64_t seed = 1;
  app.add_option("--reference", reference, "The source model (f32, f16 or bf16)")->required();
  app.add_option("--models", models, "Models to compare, comma-separated")->required();
  app.add_option("--positions", positions, "Sequence length");
  app.add_option("--threads", threads, "Compute threads");
  app.add_option("--chunk", chunk, "Tokens per forward step");
  app.add_option("--seed", seed, "Seed of the token ids");
  app.add_option("--tokens", tokens_path, "Token ids, one per line (instead of random ones)");
  app.add_option("--dump-logits", dump, "Write each model's logits to PREFIX.<n>.f32");
  CLI11_PARSE(app, argc, argv);

  Result<runtime::ModelFile> ref_file = runtime::ModelFile::Open(reference);
  LOCKSTEP_CHECK(ref_file.ok(), "{}", ref_file.status().message());
  const int64_t vocab = ref_file->config().vocab_size;
  std::vector<int32_t> tokens;
  if (!tokens_path.empty()) {
    std::ifstream in(tokens_path);
    for (int32_t t; in >> t && static_cast<int>(tokens.size()) < positions;) tokens.push_back(t);
  } else {
    for (int i = 0; i < positions; ++i) {
      uint64_t z = seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(i + 1) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      tokens.push_back(static_cast<int32_t>((z ^ (z >> 31)) % static_cast<uint64_t>(vocab)));
    }
  }
  const std::vector<float> ref = AllLogits(reference, tokens, threads, chunk);
  const size_t n = tokens.size();
  auto write_dump = [&](const std::vector<float>& logits, int index) {
    if (dump.empty()) return;
    std::FILE* f = std::fopen(fmt::format("{}.{}.f32", dump, index).c_str(), "wb");
    std::fwrite(logits.data(), sizeof(float), logits.size(), f);
    std::fclose(f);
  };
  write_dump(ref, 0);
  fmt::print("reference {}: {} positions, vocabulary {}\n", reference, n, vocab);
  fmt::print("| model | mean rel. L2 of logits | max rel. L2 | top-1 agreement |\n");
  fmt::print("|---|---|---|---|\n");
  int index = 1;
  for (const std::string& path : Split(models)) {
    const std::vector<float> got = AllLogits(path, tokens, threads, chunk);
    write_dump(got, index++);
    double sum_rel = 0, max_rel = 0;
    int agree = 0;
    for (size_t p = 0; p < n; ++p) {
      const float* a = ref.data() + p * vocab;
      const float* b = got.data() + p * vocab;
      double diff = 0, norm = 0;
      for (int64_t v = 0; v < vocab; ++v) {
        diff += (double(b[v]) - a[v]) * (double(b[v]) - a[v]);
        norm += double(a[v]) * a[v];
      }
      const double rel = std::sqrt(diff / norm);
      sum_rel += rel;
      max_rel = std::max(max_rel, rel);
      agree += kernels::Argmax(a, static_cast<int32_t>(vocab)) ==
               kernels::Argmax(b, static_cast<int32_t>(vocab));
    }
    fmt::print("| {} | {:.4f} | {:.4f} | {:.1f}% ({} of {}) |\n", path, sum_rel / n, max_rel,
               100.0 * agree / n, agree, n);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  return lockstep::Main(argc, argv);
}
