// plan_bench: how long planning takes for large models and chip counts, as a
// Google Benchmark program (the partitioner is pure computation, so its
// calls are what Google Benchmark times well: a loop of identical calls,
// repeated).
//
// For each case three benchmarks: plan/<case> (MakePlan, automatic or
// manual), to_json/<case> (PlanToJson + dump) and from_json/<case>
// (PlanFromJson of the dumped text). Every benchmark runs 5 repetitions and
// reports their mean, median, standard deviation and minimum (`_min`: on a
// shared machine noise only adds time, so the minimum is the figure to
// quote). Counters: tp and pp of the plan, json_MB (size of the plan JSON),
// tok_s_u (its predicted decode speed per user), and x_anchor: the time over
// that of plan/anchor (planning `tiny` on one chip), measured in the same run
// (machine speed cancels). The budget is 1 s per plan (issue 4).
//
//   plan_bench [--benchmark_filter=REGEX] [--benchmark_repetitions=N] [...]
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <algorithm>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lockstep/partitioner/chip_presets.h"
#include "lockstep/partitioner/planner.h"

namespace {

using namespace lockstep::partitioner;

struct Case {
  const char* label;
  const char* model;
  const char* chip;
  int chips;
  int tp, pp;  // 0, 0: automatic
  ElementType weights, activations;
  int batch;
  Objective objective;
};

const ElementType i8 = ElementType::kInt8, f16 = ElementType::kF16, bf16 = ElementType::kBF16,
                  f32 = ElementType::kF32;
const Case kCases[] = {
    {"anchor", "tiny", "host", 1, 1, 1, bf16, f32, 1, Objective::kLatency},
    {"llama-2-70b/576_groq-lpu/auto", "llama-2-70b", "groq-lpu", 576, 0, 0, i8, f16, 1,
     Objective::kLatency},
    {"llama-2-70b/576_groq-lpu/tp8_pp72", "llama-2-70b", "groq-lpu", 576, 8, 72, i8, f16, 1,
     Objective::kLatency},
    {"llama-2-70b/576_groq-lpu/batch64_throughput", "llama-2-70b", "groq-lpu", 576, 0, 0, i8, f16,
     64, Objective::kThroughput},
    {"llama-3.1-405b/2688_groq-lpu/auto", "llama-3.1-405b", "groq-lpu", 2688, 0, 0, i8, f16, 1,
     Objective::kLatency},
    {"llama-3.1-405b/64_h100/batch64_throughput", "llama-3.1-405b", "h100-nvlink", 64, 0, 0, bf16,
     bf16, 64, Objective::kThroughput},
    {"llama-3-70b/16_h100/batch32_throughput", "llama-3-70b", "h100-nvlink", 16, 0, 0, bf16, bf16,
     32, Objective::kThroughput},
};

PlanRequest RequestOf(const Case& c) {
  PlanRequest q;
  q.model = *ModelPreset(c.model);
  q.cluster = *ChipPreset(c.chip, c.chips);
  q.workload.batch_size = c.batch;
  q.workload.prompt_length = 128;
  q.workload.generated_length = 128;
  q.workload.weight_type = c.weights;
  q.workload.activation_type = c.activations;
  q.tp = c.tp;
  q.pp = c.pp;
  q.objective = c.objective;
  return q;
}

void SetPlanCounters(benchmark::State& state, const Plan& plan, size_t json_bytes) {
  state.counters["tp"] = plan.tp;
  state.counters["pp"] = plan.pp;
  state.counters["json_MB"] = static_cast<double>(json_bytes) / 1e6;
  state.counters["tok_s_u"] = plan.prediction.decode_tokens_per_s_per_user;
}

void BM_Plan(benchmark::State& state, const Case& c) {
  const PlanRequest q = RequestOf(c);
  lockstep::Result<Plan> plan = MakePlan(q);
  if (!plan.ok()) {
    state.SkipWithError(plan.status().message().c_str());
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(MakePlan(q));
  SetPlanCounters(state, *plan, PlanToJson(*plan).dump().size());
}

void BM_ToJson(benchmark::State& state, const Case& c) {
  lockstep::Result<Plan> plan = MakePlan(RequestOf(c));
  if (!plan.ok()) {
    state.SkipWithError(plan.status().message().c_str());
    return;
  }
  std::string text;
  for (auto _ : state) {
    text = PlanToJson(*plan).dump(1);
    benchmark::DoNotOptimize(text.data());
  }
  SetPlanCounters(state, *plan, text.size());
}

void BM_FromJson(benchmark::State& state, const Case& c) {
  lockstep::Result<Plan> plan = MakePlan(RequestOf(c));
  if (!plan.ok()) {
    state.SkipWithError(plan.status().message().c_str());
    return;
  }
  const std::string text = PlanToJson(*plan).dump(1);
  for (auto _ : state) benchmark::DoNotOptimize(PlanFromJson(nlohmann::json::parse(text), "bench"));
  SetPlanCounters(state, *plan, text.size());
}

double Min(const std::vector<double>& v) {
  return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
}

// The console reporter plus the x_anchor counter: each row's time over the
// anchor's (plan/anchor) of the same statistic, computed as the rows come
// (the anchor runs first; stddev and cv rows get the ratio of their
// statistic too).
class AnchorReporter : public benchmark::ConsoleReporter {
 public:
  AnchorReporter()
      : ConsoleReporter(isatty(STDOUT_FILENO) == 1 ? OO_ColorTabular : OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    std::vector<Run> with_ratio = runs;
    for (Run& run : with_ratio) {
      const std::string key = run.run_type == Run::RT_Aggregate ? run.aggregate_name : "";
      const double t = run.GetAdjustedRealTime();
      if (run.run_name.function_name.rfind("plan/anchor", 0) == 0) anchor_[key] = t;
      auto it = anchor_.find(key);
      run.counters["x_anchor"] = it != anchor_.end() && it->second > 0 ? t / it->second : 0.0;
    }
    ConsoleReporter::ReportRuns(with_ratio);
  }

 private:
  std::map<std::string, double> anchor_;  // by aggregate name ("" for single runs)
};

}  // namespace

int main(int argc, char** argv) {
  for (const Case& c : kCases) {
    for (auto [prefix, fn] :
         {std::pair{"plan/", &BM_Plan}, {"to_json/", &BM_ToJson}, {"from_json/", &BM_FromJson}}) {
      benchmark::RegisterBenchmark((std::string(prefix) + c.label).c_str(), fn, c)
          ->Unit(benchmark::kMillisecond)
          ->Repetitions(5)
          ->ComputeStatistics("min", Min)
          ->ReportAggregatesOnly(true);
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  AnchorReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
