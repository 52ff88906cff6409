// plan_bench: how long planning takes for large models and chip counts.
//
// For each case: MakePlan (automatic or manual), PlanToJson + dump, and
// PlanFromJson of the dumped text; best of several repetitions, wall clock.
// Ratios are to two anchors measured in the same run: the 1-second budget of
// issue 4 and the plan of the `tiny` model on one chip (machine speed).
//
//   plan_bench [--repetitions N]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lockstep/partitioner/chip_presets.h"
#include "lockstep/partitioner/planner.h"

namespace {

using namespace lockstep::partitioner;
using Clock = std::chrono::steady_clock;

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

double BestSeconds(int repetitions, const std::function<void()>& fn) {
  double best = 1e300;
  for (int i = 0; i < repetitions; ++i) {
    const auto start = Clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

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

}  // namespace

int main(int argc, char** argv) {
  int repetitions = 5;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--repetitions") == 0) repetitions = std::atoi(argv[i + 1]);
  }
  const ElementType i8 = ElementType::kInt8, f16 = ElementType::kF16, bf16 = ElementType::kBF16,
                    f32 = ElementType::kF32;
  const Case cases[] = {
      {"anchor: tiny, 1 host chip", "tiny", "host", 1, 1, 1, bf16, f32, 1, Objective::kLatency},
      {"llama-2-70b / 576 groq-lpu, auto", "llama-2-70b", "groq-lpu", 576, 0, 0, i8, f16, 1,
       Objective::kLatency},
      {"llama-2-70b / 576 groq-lpu, tp 8 pp 72", "llama-2-70b", "groq-lpu", 576, 8, 72, i8, f16, 1,
       Objective::kLatency},
      {"llama-2-70b / 576 groq-lpu, batch 64 thr.", "llama-2-70b", "groq-lpu", 576, 0, 0, i8, f16,
       64, Objective::kThroughput},
      {"llama-3.1-405b / 2688 groq-lpu, auto", "llama-3.1-405b", "groq-lpu", 2688, 0, 0, i8, f16, 1,
       Objective::kLatency},
      {"llama-3.1-405b / 64 h100, batch 64 thr.", "llama-3.1-405b", "h100-nvlink", 64, 0, 0, bf16,
       bf16, 64, Objective::kThroughput},
      {"llama-3-70b / 16 h100, batch 32 thr.", "llama-3-70b", "h100-nvlink", 16, 0, 0, bf16, bf16,
       32, Objective::kThroughput},
  };

  std::printf("plan_bench: best of %d, wall clock; shared machine, expect noise\n", repetitions);
  std::printf("%-42s %7s %9s %10s %10s %10s %9s %8s %9s\n", "case", "tp x pp", "plan", "to json",
              "from json", "json", "/ 1 s", "/ tiny", "tok/s/u");
  double anchor = 0;
  for (const Case& c : cases) {
    const PlanRequest q = RequestOf(c);
    lockstep::Result<Plan> plan = MakePlan(q);
    if (!plan.ok()) {
      std::printf("%-42s error: %s\n", c.label, plan.status().message().c_str());
      continue;
    }
    const double plan_s = BestSeconds(repetitions, [&] { (void)MakePlan(q); });
    std::string text;
    const double to_json_s = BestSeconds(repetitions, [&] { text = PlanToJson(*plan).dump(1); });
    const double from_json_s = BestSeconds(repetitions, [&] {
      (void)PlanFromJson(nlohmann::json::parse(text), "bench");
    });
    if (anchor == 0) anchor = plan_s;
    std::printf("%-42s %7s %7.2f ms %7.2f ms %7.2f ms %7.1f MB %9.4f %8.0f %9.1f\n", c.label,
                (std::to_string(plan->tp) + "x" + std::to_string(plan->pp)).c_str(), plan_s * 1e3,
                to_json_s * 1e3, from_json_s * 1e3, static_cast<double>(text.size()) / 1e6,
                plan_s / 1.0, plan_s / anchor, plan->prediction.decode_tokens_per_s_per_user);
  }
  return 0;
}
