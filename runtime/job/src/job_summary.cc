#include "lockstep/job/job_summary.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "lockstep/partitioner/plan_report.h"

namespace lockstep::runtime {
namespace {

double Mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

// Keys in the order written (the file is for people too).
using Json = nlohmann::ordered_json;

Json Distribution(const std::vector<double>& seconds) {
  Json j;
  j["count"] = seconds.size();
  j["mean"] = Mean(seconds) * 1e3;
  for (double p : {50.0, 90.0, 99.0}) {
    j[fmt::format("p{:.0f}", p)] = Percentile(seconds, p) * 1e3;
  }
  j["max"] = seconds.empty() ? 0.0 : *std::max_element(seconds.begin(), seconds.end()) * 1e3;
  return j;
}

// "(2.43 ms, x0.95)": the prediction and measured / predicted.
std::string Beside(double measured, double predicted, const std::string& predicted_text) {
  if (!(predicted > 0) || !(measured > 0)) return fmt::format("({})", predicted_text);
  return fmt::format("({}, x{:.2f})", predicted_text, measured / predicted);
}

}  // namespace

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const double rank =
      std::ceil(std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(values.size()));
  const size_t index = static_cast<size_t>(std::max(rank, 1.0)) - 1;
  return values[std::min(index, values.size() - 1)];
}

MeasuredAndPredicted CompareWithPlan(const BatchJobSummary& s) {
  MeasuredAndPredicted m;
  m.decode_s_per_token = Mean(s.inter_token_s);
  m.ttft_s = s.first_batch_ttft_s > 0 ? s.first_batch_ttft_s : Percentile(s.ttft_s, 50);
  m.tokens_per_s = s.run_seconds > 0 ? static_cast<double>(s.generated_tokens) / s.run_seconds : 0;
  const partitioner::Prediction& p = s.plan.prediction;
  m.predicted_decode_s_per_token = p.decode_latency_per_token_s;
  m.predicted_ttft_s = p.time_to_first_token_s;
  m.predicted_tokens_per_s = p.throughput_tokens_per_s;
  return m;
}

std::string FormatMeasuredVsPredicted(const MeasuredAndPredicted& m) {
  using partitioner::FormatSeconds;
  std::string decode =
      m.decode_s_per_token > 0 ? FormatSeconds(m.decode_s_per_token) : std::string("-");
  return fmt::format(
      "measured (predicted): decode {} per token {}, time to first token {} {}, {:.1f} tokens/s "
      "{}",
      decode,
      Beside(m.decode_s_per_token, m.predicted_decode_s_per_token,
             FormatSeconds(m.predicted_decode_s_per_token)),
      FormatSeconds(m.ttft_s),
      Beside(m.ttft_s, m.predicted_ttft_s, FormatSeconds(m.predicted_ttft_s)), m.tokens_per_s,
      Beside(m.tokens_per_s, m.predicted_tokens_per_s,
             fmt::format("{:.1f}", m.predicted_tokens_per_s)));
}

std::string JobSummaryJson(const BatchJobOptions& options, const BatchJobSummary& s) {
  using json = Json;
  const MeasuredAndPredicted m = CompareWithPlan(s);
  const partitioner::Workload& w = s.plan.request.workload;
  json j;
  j["format"] = "lockstep-job-summary";
  j["version"] = 1;
  j["model"] = options.model_path;
  j["input"] = options.input_path;
  j["output"] = options.output_path;
  j["requests"] = {{"completed", s.completed},
                   {"failed", s.failed},
                   {"skipped", s.skipped},
                   {"commits", s.result_commits}};
  j["tokens"] = {{"prompt", s.prompt_tokens}, {"generated", s.generated_tokens}};
  j["load_s"] = s.load_seconds;
  j["run_s"] = s.run_seconds;
  j["throughput_tokens_per_s"] = m.tokens_per_s;
  j["ttft_ms"] = Distribution(s.ttft_s);
  j["inter_token_ms"] = Distribution(s.inter_token_s);
  j["measured"] = {{"decode_ms_per_token", m.decode_s_per_token * 1e3},
                   {"ttft_ms", m.ttft_s * 1e3},
                   {"ttft_of", s.first_batch_ttft_s > 0 ? "first batch" : "median"},
                   {"tokens_per_s", m.tokens_per_s}};
  j["predicted"] = {{"decode_ms_per_token", m.predicted_decode_s_per_token * 1e3},
                    {"ttft_ms", m.predicted_ttft_s * 1e3},
                    {"tokens_per_s", m.predicted_tokens_per_s}};
  j["compute"] = partitioner::MatmulComputeName(w.compute);
  j["plan"] = {{"tp", s.plan.tp},
               {"pp", s.plan.pp},
               {"ranks", s.plan.num_ranks()},
               {"micro_batches", s.plan.micro_batches},
               {"batch", w.batch_size},
               {"prompt_length", w.prompt_length},
               {"generated_length", w.generated_length},
               {"threads_per_rank", s.threads},
               {"kv_pages", s.kv_pages},
               {"chip_source", s.plan.request.cluster.chip.source}};
  json ranks = json::array();
  for (const RankStats& r : s.ranks) {
    ranks.push_back({{"rank", r.rank},
                     {"stage", r.stage},
                     {"tp_rank", r.tp_rank},
                     {"threads", r.threads},
                     {"load_s", r.load_seconds},
                     {"run_s", r.run_seconds},
                     {"compute_s", r.compute_seconds},
                     {"collective_s", r.collective_seconds},
                     {"pipeline_wait_s", r.pipeline_wait_seconds},
                     {"results_s", r.results_seconds},
                     {"steps", r.steps},
                     {"bytes_read", r.bytes_read},
                     {"plan_weight_bytes", r.plan_weight_bytes}});
  }
  j["ranks"] = std::move(ranks);
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

Status WriteJobSummary(const std::string& path, const BatchJobOptions& options,
                       const BatchJobSummary& summary) {
  const std::string text = JobSummaryJson(options, summary);
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) return IoError("{}: cannot write the job summary", path);
    out << text;
    out.flush();
    if (!out) return IoError("{}: write failed", temporary);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    return IoError("{}: cannot write the job summary (rename from {} failed)", path, temporary);
  }
  return Status::Ok();
}

}  // namespace lockstep::runtime
