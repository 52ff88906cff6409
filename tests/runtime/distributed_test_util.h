// Shared by the distributed determinism tests (local backend in
// distributed_local_test.cc, mpi and ucx under mpirun in
// distributed_mpi_test.cc): the request file, the one-rank reference, and
// the comparison that names the first differing request and step.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lockstep/job/batch_job.h"
#include "lockstep/partitioner/model_config.h"

namespace lockstep::runtime::testing {

inline std::vector<int32_t> TestPrompt(int length, int64_t vocab, int salt) {
  std::vector<int32_t> p;
  uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(salt + 1);
  for (int i = 0; i < length; ++i) {
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    p.push_back(static_cast<int32_t>(x % static_cast<uint64_t>(vocab)));
  }
  return p;
}

// Sixteen requests: prompts of 1 to 150 tokens (across KV page boundaries
// and longer than small --max-step-tokens), 1 to 30 generated tokens, greedy
// and sampled (temperature, top-k, top-p, seeds), with and without stop
// tokens and EOS.
inline std::string DeterminismRequests(int64_t vocab) {
  struct Spec {
    int prompt;
    int max_tokens;
    double temperature;
    int top_k;
    double top_p;
    int seed;
    bool ignore_eos;
    bool stop;
  };
  const Spec specs[] = {
      {1, 12, 0.0, 0, 1.0, 0, true, false},  {5, 20, 0.8, 0, 0.9, 3, false, false},
      {17, 9, 0.0, 0, 1.0, 0, false, true},  {63, 5, 1.2, 40, 1.0, 0, true, false},
      {64, 25, 0.0, 0, 1.0, 0, true, false}, {65, 7, 0.7, 20, 0.95, 11, true, true},
      {130, 4, 0.0, 0, 1.0, 0, true, false}, {3, 30, 1.0, 0, 1.0, 5, true, false},
      {40, 1, 0.0, 0, 1.0, 0, true, false},  {2, 16, 0.9, 8, 1.0, 7, false, false},
      {90, 6, 0.0, 0, 1.0, 0, true, false},  {7, 22, 0.6, 0, 0.8, 2, true, true},
      {150, 3, 0.0, 0, 1.0, 0, true, false}, {33, 10, 1.1, 0, 1.0, 9, true, false},
      {12, 18, 0.0, 0, 1.0, 0, false, true}, {70, 8, 0.5, 5, 0.9, 4, true, false},
  };
  std::string text;
  int salt = 0;
  for (const Spec& s : specs) {
    nlohmann::json j = {{"id", fmt::format("r{:02}", salt)},
                        {"prompt_tokens", TestPrompt(s.prompt, vocab, salt)},
                        {"max_tokens", s.max_tokens},
                        {"temperature", s.temperature},
                        {"top_k", s.top_k},
                        {"top_p", s.top_p},
                        {"seed", s.seed},
                        {"ignore_eos", s.ignore_eos}};
    if (s.stop) j["stop_token_ids"] = {salt * 7 % vocab, 3};
    text += j.dump() + "\n";
    ++salt;
  }
  return text;
}

// The test model of a weight dtype: the tiny preset, or for q8_0 / q4_0 a
// tiny model whose rows every tp up to 8 splits in whole 32-value blocks
// (hidden 256 and q_dim 256: 8 blocks; intermediate 512: 16 blocks; the tiny
// preset's intermediate_size 352 is 11 blocks, which tp 2 would cut). 8
// heads over 2 KV heads, 4 layers, as the tiny preset.
inline partitioner::ModelConfig DistributedTestConfig(DType dtype) {
  partitioner::ModelConfig c = *partitioner::ModelPreset("tiny");
  if (DTypeIsQuantized(dtype)) {
    c.name = "tiny-quant";
    c.hidden_size = 256;
    c.intermediate_size = 512;
    c.head_dim = 32;
  }
  return c;
}

inline void WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// One variant of a job: the knobs that must not change any bit.
struct JobVariant {
  int max_batch = 1;
  int max_step_tokens = 256;
  int micro_batches = 0;
  bool tp_overlap = false;  // BatchJobOptions::tp_overlap
  std::string Name() const {
    return fmt::format("max_batch {} max_step_tokens {} micro_batches {}{}", max_batch,
                       max_step_tokens, micro_batches, tp_overlap ? " tp_overlap" : "");
  }
};

inline BatchJobOptions JobOptions(const std::string& model, const std::string& requests,
                                  const std::string& output, const JobVariant& v, int tp, int pp) {
  BatchJobOptions o;
  o.model_path = model;
  o.input_path = requests;
  o.output_path = output;
  o.force = true;  // variants overwrite one results file
  o.isa = kernels::BestIsa();
  o.max_batch = v.max_batch;
  o.max_step_tokens = v.max_step_tokens;
  o.micro_batches = v.micro_batches;
  o.tp_overlap = v.tp_overlap;
  o.tp = tp;
  o.pp = pp;
  o.hash_logits = true;
  o.keep_results = true;
  o.progress = false;
  return o;
}

using ResultsById = std::map<std::string, JobResult>;

inline ResultsById ById(const BatchJobSummary& s) {
  ResultsById out;
  for (const JobResult& r : s.results) out[r.result.id] = r;
  return out;
}

// "" when `got` equals `want` bit for bit (tokens, every step's logits
// fingerprint, logits SHA-256, finish reason); otherwise the first
// difference in request order, naming the request and the step.
inline std::string FirstDifference(const ResultsById& want, const ResultsById& got) {
  if (got.size() != want.size()) {
    return fmt::format("{} results, expected {}", got.size(), want.size());
  }
  for (const auto& [id, w] : want) {
    auto it = got.find(id);
    if (it == got.end()) return fmt::format("request {}: no result", id);
    const JobResult& g = it->second;
    const size_t steps = std::max(w.result.tokens.size(), g.result.tokens.size());
    for (size_t step = 0; step < steps; ++step) {
      if (step < w.step_fingerprints.size() && step < g.step_fingerprints.size() &&
          w.step_fingerprints[step] != g.step_fingerprints[step]) {
        return fmt::format(
            "request {}: step {}: logits differ (fingerprint {:016x}, expected "
            "{:016x})",
            id, step, g.step_fingerprints[step], w.step_fingerprints[step]);
      }
      if (step >= g.result.tokens.size() || step >= w.result.tokens.size()) {
        return fmt::format("request {}: step {}: {} tokens, expected {}", id, step,
                           g.result.tokens.size(), w.result.tokens.size());
      }
      if (w.result.tokens[step] != g.result.tokens[step]) {
        return fmt::format("request {}: step {}: token {}, expected {}", id, step,
                           g.result.tokens[step], w.result.tokens[step]);
      }
    }
    if (w.result.logits_sha256 != g.result.logits_sha256) {
      return fmt::format("request {}: logits_sha256 {}, expected {}", id,
                         g.result.logits_sha256.value_or("-"),
                         w.result.logits_sha256.value_or("-"));
    }
    if (w.result.finish_reason != g.result.finish_reason) {
      return fmt::format("request {}: finish reason differs", id);
    }
  }
  return "";
}

}  // namespace lockstep::runtime::testing
