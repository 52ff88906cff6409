// The plan a batch job runs (docs/distributed.md, "Plans"): loaded from a
// file or made with the partitioner for the job's rank count, and what the
// runtime derives from it (KV-cache pages, steps in flight).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lockstep/base/dtype.h"
#include "lockstep/base/status.h"
#include "lockstep/job/batch_job.h"
#include "lockstep/job/request.h"
#include "lockstep/partitioner/plan.h"

namespace lockstep::runtime {

// The workload a plan is made for, from the requests the job will run: the
// batch is min(max_batch, number of requests), the prompt the longest
// prompt, the generated length the largest max_tokens (both within the
// model's context); prefill in chunks of max_step_tokens when prompts are
// longer. These are the job's own token counts, which the plan line and the
// end-of-job comparison of measured and predicted show.
partitioner::Workload JobWorkload(const BatchJobOptions& options,
                                  const partitioner::ModelConfig& config, DType weight_dtype,
                                  const std::vector<const Request*>& requests);

// The leader's plan: options.plan_path loaded, else MakePlan with tp x pp
// (derived from the rank count when one is 0) or automatic, objective
// throughput. Checked against the model, the rank count and the file's
// weight dtype. Messages name the plan file or the flags.
Result<partitioner::Plan> MakeJobPlan(const BatchJobOptions& options,
                                      const partitioner::ModelConfig& config, DType weight_dtype,
                                      const std::vector<const Request*>& requests, int num_ranks);

// Checks every rank does on the plan it received: its model, the rank count,
// executable, weight type.
Status CheckJobPlan(const partitioner::Plan& plan, const partitioner::ModelConfig& config,
                    DType weight_dtype, int num_ranks, std::string_view source);

// Bytes of one KV page (64 positions, K and V, all its layers) on `rank`.
uint64_t KvBytesPerPage(const partitioner::Plan& plan, int rank);
// KV pages of the job: the same count on every rank (one allocator). With
// kv_cache_mb > 0 the most every rank's kv_cache_mb MiB hold; else the
// plan's workload: batch_size sequences of prompt + generated positions,
// each rounded up to whole pages of 64.
int32_t JobKvPages(const partitioner::Plan& plan, int64_t kv_cache_mb);

// A few lines for people: layout, stages, prediction.
std::string PlanSummary(const partitioner::Plan& plan, int window, int max_chunks,
                        int32_t kv_pages);

}  // namespace lockstep::runtime
