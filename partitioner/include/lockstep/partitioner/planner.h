// Making plans: manual (tp and pp given) or automatic (the planner picks tp,
// pp and the micro-batch count for the objective), under the chips' memory.
//
// Steps, for each (tp, pp, micro-batch count) considered:
//  1. Layers to stages. Each stage gets at least one layer; the others go one
//     at a time to the stage whose decode pass would then be the shortest
//     (ties: the lower stage), never beyond what fits in its ranks' memory.
//     The first stage's embedding and the last stage's lm_head count in its
//     time, so the last stage usually gets fewer layers.
//  2. Shards and memory per rank (sharding.h, memory_model.h).
//  3. Costs per stage (cost_model.h) and the schedule (pipeline_schedule.h):
//     time to first token, decode latency per token, throughput.
// Automatic mode tries every tp in ValidTensorParallelSizes with
// num_chips % tp == 0 and pp = num_chips / tp <= layers (all chips are used:
// the job runs on exactly num_chips ranks) and keeps the best by the
// objective; ties go to the other metric, then fewer micro-batches, then the
// smaller tp. When the workload leaves micro_batches at 0, the candidates are
// the powers of two, pp, 2 pp and the batch size, each at most min(batch, 2 pp).
//
// Errors say what to change: an invalid tp for the model, pp > layers, tp x pp
// != num_chips, a chip without a FLOP/s rate for the types used, and a model
// that does not fit (with the fewest chips that would hold it).
//
// Thread safety: pure functions of their arguments.
#pragma once

#include "lockstep/base/status.h"
#include "lockstep/partitioner/plan.h"

namespace lockstep::partitioner {

Result<Plan> MakePlan(const PlanRequest& request);

// The fewest chips (tp x pp) of `cluster`'s kind (chip, links, chips per
// node) whose memory holds the model for the workload, and that tp and pp.
// NotFound if no tp x pp does (one layer is larger than a chip).
struct ChipCount {
  int chips = 0;
  int tp = 0;
  int pp = 0;
};
Result<ChipCount> FewestChipsThatFit(const ModelConfig& model, const ClusterSpec& cluster,
                                     const Workload& workload);

// Checks that `plan` is exactly what MakePlan gives for its echoed request
// (layout, stages, shards, memory; predictions are not compared, so plans
// stay valid across cost-model changes). A hand-edited plan fails with the
// first difference.
Status VerifyPlan(const Plan& plan);

}  // namespace lockstep::partitioner
