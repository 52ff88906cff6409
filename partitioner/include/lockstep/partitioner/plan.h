// A plan: how a model is split over tp x pp chips, what every rank holds, how
// much memory it needs, and how fast the cost model says it will run. The
// runtime executes it (issue 5); `lockstep plan` prints and writes it.
//
// Layout. World rank = stage * tp + tp_rank. A tp group (one stage) is
// contiguous, so with chips_per_node a multiple of tp it shares a node and its
// two allreduces per layer stay inside it. Stage s holds layers
// [layer_begin, layer_end); the first stage also holds the embedding, the last
// the final norm and lm_head. Pipeline traffic: tp rank r of stage s sends the
// full hidden state of a micro-batch to tp rank r of stage s+1; the last
// stage's tp rank r sends the sampled token ids to tp rank r of stage 0.
//
// Shards. RankShards(rank) lists every tensor slice the rank loads, as HDF5
// hyperslabs (sharding.h has the rules and the KV-head mapping). A model with
// tied embeddings has no /lm_head: its last stage holds a kLmHead shard (rows
// by vocabulary) of /tok_embeddings; with pp == 1 that tensor then appears
// twice in one rank's list (embedding columns and lm_head rows).
//
// A plan is a pure function of its request (model config, cluster spec,
// workload, tp/pp or automatic, objective): the same request gives an
// identical plan and identical JSON. Plans serialise to JSON and parse back to
// an equal Plan (docs/partitioner.md, "Plan JSON").
//
// Thread safety: plain values; const methods may be called concurrently.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/partitioner/cluster_spec.h"
#include "lockstep/partitioner/cost_model.h"
#include "lockstep/partitioner/memory_model.h"
#include "lockstep/partitioner/model_config.h"
#include "lockstep/partitioner/sharding.h"
#include "lockstep/partitioner/workload.h"

namespace lockstep::partitioner {

// What automatic planning (and the micro-batch choice) optimises.
enum class Objective {
  kLatency,     // the least decode time per token of one sequence
  kThroughput,  // the most generated tokens per second for the workload's batch
};
std::string_view ObjectiveName(Objective objective);  // "latency", "throughput"
Result<Objective> ParseObjective(std::string_view name);

// The inputs a plan is a function of.
struct PlanRequest {
  ModelConfig model;
  ClusterSpec cluster;
  Workload workload;
  int tp = 0;  // tp and pp both 0: automatic; both > 0: manual
  int pp = 0;
  Objective objective = Objective::kLatency;
  bool operator==(const PlanRequest&) const = default;
};

struct StagePlan {
  int stage = 0;
  int layer_begin = 0;
  int layer_end = 0;       // one past the last layer
  bool embedding = false;  // holds /tok_embeddings (lookup + allgather)
  bool lm_head = false;    // holds /norm and the lm_head (+ logits allgather, sampling)
  int num_layers() const { return layer_end - layer_begin; }
  bool operator==(const StagePlan&) const = default;
};

struct RankPlan {
  int rank = 0;
  int stage = 0;
  int tp_rank = 0;
  int node = 0;                     // rank / chips_per_node
  std::vector<TensorShard> shards;  // file order: embedding, layers, norm, lm_head
  RankMemory memory;
  bool operator==(const RankPlan&) const = default;
};

// Per stage: the cost of one pass of the largest micro-batch, and the hop to
// the next stage (the last stage: back to stage 0).
struct StagePrediction {
  int stage = 0;
  PassCost prefill;
  PassCost decode;               // at Prediction::decode_context
  double prefill_handoff_s = 0;  // latency + bytes / bandwidth
  double decode_handoff_s = 0;
  bool operator==(const StagePrediction&) const = default;
};

// A rank's time over the whole workload (prefill, then generated_length - 1
// decode rounds), split by what it does; the four add up to total_time_s.
struct RankShares {
  double compute_s = 0;
  double memory_s = 0;
  double communication_s = 0;  // inside tp collectives
  double idle_s = 0;           // waiting for inputs or slower ranks
  bool operator==(const RankShares&) const = default;
};

struct Prediction {
  double time_to_first_token_s = 0;         // prefill of the whole batch (last micro-batch)
  double decode_latency_per_token_s = 0;    // steady state, at decode_context
  double decode_tokens_per_s_per_user = 0;  // 1 / decode_latency_per_token_s
  double throughput_tokens_per_s = 0;       // batch * generated_length / total_time_s
  double total_time_s = 0;                  // ttft + (generated_length - 1) * decode latency
  int64_t decode_context = 0;               // prompt_length + generated_length / 2
  std::vector<StagePrediction> stages;
  std::vector<RankShares> ranks;  // by world rank
  bool operator==(const Prediction&) const = default;
};

struct Plan {
  PlanRequest request;            // echoed inputs
  std::string model_fingerprint;  // ModelConfigFingerprint(request.model)
  int tp = 1;
  int pp = 1;
  int micro_batches = 1;           // the workload's, or the planner's choice
  std::vector<StagePlan> stages;   // by stage
  std::vector<TpSlice> tp_slices;  // by tp rank (the same on every stage)
  std::vector<RankPlan> ranks;     // by world rank
  Prediction prediction;

  int num_ranks() const { return tp * pp; }
  int WorldRank(int stage, int tp_rank) const { return stage * tp + tp_rank; }
  int StageOf(int rank) const { return rank / tp; }
  int TpRankOf(int rank) const { return rank % tp; }
  // The world ranks of one stage's tp group, by tp rank.
  std::vector<int> TpGroup(int stage) const;
  // The world ranks holding tp rank `tp_rank` on every stage, by stage.
  std::vector<int> PipelineGroup(int tp_rank) const;

  // Requires 0 <= rank < num_ranks().
  const RankPlan& Rank(int rank) const { return ranks[rank]; }
  const std::vector<TensorShard>& RankShards(int rank) const { return ranks[rank].shards; }
  const TpSlice& SliceOf(int rank) const { return tp_slices[TpRankOf(rank)]; }
  const StagePlan& StageOfRank(int rank) const { return stages[StageOf(rank)]; }
  // The rank's shard of tensor `path` in `role`, or nullptr if it holds none.
  const TensorShard* FindShard(int rank, std::string_view path, TensorRole role) const;

  // The runtime can execute it (weights f32, f16, bf16, q8_0 or q4_0; not
  // the cost-study int8).
  bool executable() const { return request.workload.weight_type != ElementType::kInt8; }

  bool operator==(const Plan&) const = default;
};

// The tensors stage `stage` holds, in file order, picked from `all`
// (= ModelTensors(model)): the embedding on the first stage, the stage's
// layers, /norm and the lm_head on the last stage (for tied embeddings a
// kLmHead-role entry for /tok_embeddings). ShardTensor of each, with a
// rank's TpSlice, is that rank's shard list (Plan::RankShards).
std::vector<TensorSpec> StageTensors(const ModelConfig& model, const std::vector<TensorSpec>& all,
                                     const StagePlan& stage);

// Checks a plan against the job that wants to run it: the model's
// fingerprint and the number of ranks. Messages name `source` and say what to
// do ("re-plan with lockstep plan --model ...").
Status CheckPlanFor(const Plan& plan, const ModelConfig& model, int num_ranks,
                    std::string_view source);

nlohmann::json PlanToJson(const Plan& plan);
// Parses and checks the structure (counts, ranges, consistency of ranks and
// stages). To check that the plan is also what the planner makes for its
// inputs, use VerifyPlan (planner.h).
Result<Plan> PlanFromJson(const nlohmann::json& json, std::string_view source);
Result<Plan> LoadPlanFile(const std::string& path);
Status SavePlanFile(const Plan& plan, const std::string& path);

}  // namespace lockstep::partitioner
