#include "job_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "lockstep/base/plural.h"
#include "lockstep/kernels/attention.h"
#include "lockstep/partitioner/chip_presets.h"
#include "lockstep/partitioner/element_type.h"
#include "lockstep/partitioner/plan_report.h"
#include "lockstep/partitioner/planner.h"

namespace lockstep::runtime {

partitioner::Workload JobWorkload(const BatchJobOptions& options,
                                  const partitioner::ModelConfig& config, DType weight_dtype,
                                  const std::vector<const Request*>& requests) {
  int64_t prompt = 1;
  int64_t generated = 1;
  for (const Request* r : requests) {
    prompt = std::max(prompt, static_cast<int64_t>(r->prompt_tokens.size()));
    generated = std::max(generated, r->max_tokens);
  }
  // Every request fits the context on its own (the request parser checks
  // it), but the longest prompt and the largest max_tokens may come from
  // different requests.
  prompt = std::min(prompt, config.ContextLength() - 1);
  generated = std::max<int64_t>(1, std::min(generated, config.ContextLength() - prompt));
  partitioner::Workload w;
  w.batch_size = static_cast<int>(
      std::clamp<int64_t>(static_cast<int64_t>(requests.size()), 1, options.max_batch));
  w.prompt_length = prompt;
  w.generated_length = generated;
  w.weight_type = partitioner::FromDType(weight_dtype);
  w.activation_type = partitioner::ElementType::kF32;
  w.compute = options.compute == kernels::Compute::kBf16 ? partitioner::MatmulCompute::kBf16
                                                          : partitioner::MatmulCompute::kFloat;
  w.micro_batches = std::min(options.micro_batches, w.batch_size);
  w.prefill_chunk = options.max_step_tokens < w.prompt_length ? options.max_step_tokens : 0;
  return w;
}

Status CheckJobPlan(const partitioner::Plan& plan, const partitioner::ModelConfig& config,
                    DType weight_dtype, int num_ranks, std::string_view source) {
  LOCKSTEP_RETURN_IF_ERROR(partitioner::CheckPlanFor(plan, config, num_ranks, source));
  if (!plan.executable()) {
    return InvalidArgument(
        "{}: the plan stores weights as {}, which the runtime cannot run; "
        "re-plan with --weight-type {}",
        source, partitioner::ElementTypeName(plan.request.workload.weight_type),
        DTypeName(weight_dtype));
  }
  if (plan.request.workload.weight_type != partitioner::FromDType(weight_dtype)) {
    return InvalidArgument(
        "{}: the plan is for {} weights but the model file holds {}; re-plan with --weight-type {}",
        source, partitioner::ElementTypeName(plan.request.workload.weight_type),
        DTypeName(weight_dtype), DTypeName(weight_dtype));
  }
  return Status::Ok();
}

Result<partitioner::Plan> MakeJobPlan(const BatchJobOptions& options,
                                      const partitioner::ModelConfig& config, DType weight_dtype,
                                      const std::vector<const Request*>& requests, int num_ranks) {
  if (options.compute == kernels::Compute::kBf16 && weight_dtype != DType::kBF16) {
    return InvalidArgument(
        "{}: --compute bf16 needs bf16 weights and the file holds {}; convert the model with "
        "--dtype bf16 or leave --compute at float",
        options.model_path, DTypeName(weight_dtype));
  }
  if (!options.plan_path.empty()) {
    if (options.tp != 0 || options.pp != 0) {
      return InvalidArgument("give either --plan or --tp/--pp, not both");
    }
    LOCKSTEP_ASSIGN_OR_RETURN(partitioner::Plan plan, partitioner::LoadPlanFile(options.plan_path));
    LOCKSTEP_RETURN_IF_ERROR(
        CheckJobPlan(plan, config, weight_dtype, num_ranks, options.plan_path));
    const partitioner::MatmulCompute compute = plan.request.workload.compute;
    if ((compute == partitioner::MatmulCompute::kBf16) !=
        (options.compute == kernels::Compute::kBf16)) {
      return InvalidArgument(
          "{}: the plan is for {} compute but the job runs {} compute; give --compute {} or "
          "re-plan with --compute {}",
          options.plan_path, partitioner::MatmulComputeName(compute),
          kernels::ComputeName(options.compute), partitioner::MatmulComputeName(compute),
          kernels::ComputeName(options.compute));
    }
    if (options.micro_batches > 0) plan.micro_batches = options.micro_batches;
    return plan;
  }
  int tp = options.tp;
  int pp = options.pp;
  if (tp < 0 || pp < 0) return InvalidArgument("--tp and --pp must be positive");
  if (tp > 0 && pp == 0) {
    if (num_ranks % tp != 0) {
      return InvalidArgument("--tp {} does not divide the job's {} ranks; use -np a multiple of {}",
                             tp, num_ranks, tp);
    }
    pp = num_ranks / tp;
  } else if (pp > 0 && tp == 0) {
    if (num_ranks % pp != 0) {
      return InvalidArgument("--pp {} does not divide the job's {} ranks; use -np a multiple of {}",
                             pp, num_ranks, pp);
    }
    tp = num_ranks / pp;
  } else if (tp > 0 && tp * pp != num_ranks) {
    return InvalidArgument(
        "--tp {} --pp {} needs {} ranks but the job has {}; start it with mpirun -np {} (or "
        "--transport local --chips {})",
        tp, pp, tp * pp, num_ranks, tp * pp, tp * pp);
  }
  partitioner::PlanRequest request;
  request.model = config;
  if (options.cluster) {
    request.cluster = *options.cluster;
  } else {
    LOCKSTEP_ASSIGN_OR_RETURN(request.cluster, partitioner::ChipPreset("host", num_ranks));
  }
  request.cluster.num_chips = num_ranks;
  request.cluster.threads_per_chip = options.threads;
  request.workload = JobWorkload(options, config, weight_dtype, requests);
  request.tp = tp;
  request.pp = pp;
  request.objective = partitioner::Objective::kThroughput;
  Result<partitioner::Plan> plan = partitioner::MakePlan(request);
  if (!plan.ok()) return plan.status().WithContext("planning the job");
  return plan;
}

uint64_t KvBytesPerPage(const partitioner::Plan& plan, int rank) {
  const partitioner::StagePlan& stage = plan.StageOfRank(rank);
  const partitioner::TpSlice& slice = plan.SliceOf(rank);
  return uint64_t{2} * static_cast<uint64_t>(stage.num_layers()) *
         static_cast<uint64_t>(slice.kv_heads.size()) *
         static_cast<uint64_t>(plan.request.model.head_dim) *
         static_cast<uint64_t>(kernels::kKvPageSize) * sizeof(float);
}

int32_t JobKvPages(const partitioner::Plan& plan, int64_t kv_cache_mb) {
  const partitioner::Workload& w = plan.request.workload;
  const int64_t page = kernels::kKvPageSize;
  if (kv_cache_mb <= 0) {
    // The plan's budget in whole pages: batch sequences of prompt +
    // generated positions, each rounded up to pages (the memory model counts
    // positions, the cache allocates pages).
    const int64_t pages =
        int64_t{w.batch_size} * ((w.prompt_length + w.generated_length + page - 1) / page);
    return static_cast<int32_t>(std::min<int64_t>(pages, std::numeric_limits<int32_t>::max()));
  }
  uint64_t pages = std::numeric_limits<int32_t>::max();
  for (int r = 0; r < plan.num_ranks(); ++r) {
    const uint64_t budget = static_cast<uint64_t>(kv_cache_mb) << 20;
    pages = std::min(pages, budget / std::max<uint64_t>(KvBytesPerPage(plan, r), 1));
  }
  return static_cast<int32_t>(pages);
}

std::string PlanSummary(const partitioner::Plan& plan, int window, int max_chunks,
                        int32_t kv_pages) {
  std::string out =
      fmt::format("plan: tp {} x pp {} = {}, {} in flight of up to {}, KV cache {} of 64 positions",
                  plan.tp, plan.pp, Plural(plan.num_ranks(), "rank"), Plural(window, "step"),
                  Plural(max_chunks, "sequence"), Plural(kv_pages, "page"));
  for (const partitioner::StagePlan& s : plan.stages) {
    const std::vector<int> ranks = plan.TpGroup(s.stage);
    out += fmt::format("\n  stage {}: {}{}{}, {}", s.stage,
                       Range("layer", s.layer_begin, s.layer_end - 1),
                       s.embedding ? " + embedding" : "", s.lm_head ? " + lm_head" : "",
                       Range("rank", ranks.front(), ranks.back()));
  }
  const partitioner::Prediction& p = plan.prediction;
  const partitioner::Workload& w = plan.request.workload;
  out += fmt::format(
      "\n  predicted for {} at once, prompts up to {}, up to {} generated each: decode {} per "
      "token, time to first token {}, {:.1f} tokens/s",
      Plural(w.batch_size, "request"), Plural(w.prompt_length, "token"), w.generated_length,
      partitioner::FormatSeconds(p.decode_latency_per_token_s),
      partitioner::FormatSeconds(p.time_to_first_token_s), p.throughput_tokens_per_s);
  return out;
}

}  // namespace lockstep::runtime
