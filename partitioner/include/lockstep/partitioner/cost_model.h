// Per-operator cost of one micro-batch passing through one pipeline stage.
//
// For every operator the runtime runs (docs/partitioner.md, "Cost model"):
//
//   compute_s  = flops / peak FLOP/s of its type
//   memory_s   = bytes moved to/from memory / memory bandwidth
//   time_s     = max(compute_s, memory_s) + launches * op_overhead_s
//   collectives: time_s = the alpha-beta time of collective_cost.h
//
// per tp rank (ranks of a group can differ by one row of an uneven split); a
// stage's operator takes as long as its slowest rank, because the next
// collective waits for everyone. A pass is the operator list of the stage's
// layers (count = layers) plus the embedding (first stage) and the final norm,
// lm_head, logits allgather and sampling (last stage).
//
// Types: matrix multiplications run in the wider of the weight and activation
// types (f16/bf16 weights are widened to f32 when activations are f32);
// attention and element-wise operators in the activation type; logits are f32.
//
// The breakdown (PassCost::ops) is meant to be compared with measured per-op
// times of the runtime: names are stable and documented.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/partitioner/cluster_spec.h"
#include "lockstep/partitioner/model_config.h"
#include "lockstep/partitioner/sharding.h"
#include "lockstep/partitioner/workload.h"

namespace lockstep::partitioner {

enum class Phase { kPrefill, kDecode };
std::string_view PhaseName(Phase phase);  // "prefill", "decode"

// What limits an operator.
enum class OpBound { kCompute, kMemory, kCommunication };
std::string_view OpBoundName(OpBound bound);  // "compute", "memory", "communication"

struct OpCost {
  std::string name;       // e.g. "attn_qkv", "ffn_allreduce", "lm_head"
  int count = 1;          // executions per pass (the stage's layers for per-layer ops)
  int launches = 1;       // kernels per execution (overhead is paid per launch)
  double flops = 0;       // per execution, slowest rank
  double bytes = 0;       // memory traffic per execution, slowest rank
  double comm_bytes = 0;  // bytes each rank sends per execution (collectives)
  double compute_s = 0;
  double memory_s = 0;
  double comm_s = 0;
  double overhead_s = 0;
  double time_s = 0;  // per execution
  OpBound bound = OpBound::kCompute;

  double total_s() const { return time_s * count; }
  bool operator==(const OpCost&) const = default;
};

// Busy time of one tp rank during a pass, by what limits it. The rest of the
// pass (time_s minus the sum) the rank waits for slower ranks of its group.
struct RankBusy {
  double compute_s = 0;
  double memory_s = 0;
  double communication_s = 0;
  double total() const { return compute_s + memory_s + communication_s; }
  bool operator==(const RankBusy&) const = default;
};

// The tokens one pass processes: for each of `sequences` sequences, `tokens`
// new positions starting at `position`. Each attends to every position up to
// itself (causal), so the keys visited grow with the position.
struct PassShape {
  Phase phase = Phase::kDecode;
  int sequences = 1;
  int64_t tokens = 1;    // new positions per sequence
  int64_t position = 0;  // the first of them
  // One decode step over `context` keys (the new token's included).
  static PassShape Decode(int sequences, int64_t context) {
    return {Phase::kDecode, sequences, 1, context - 1};
  }
  // Prefill of prompt positions [begin, end).
  static PassShape Prefill(int sequences, int64_t begin, int64_t end) {
    return {Phase::kPrefill, sequences, end - begin, begin};
  }
  bool operator==(const PassShape&) const = default;
};

struct PassCost {
  Phase phase = Phase::kDecode;
  int sequences = 0;     // micro-batch size
  int64_t tokens = 0;    // new positions per sequence (1 in decode)
  int64_t position = 0;  // the first of them (decode: context - 1)
  std::vector<OpCost> ops;
  std::vector<RankBusy> tp_ranks;  // indexed by tp rank
  double time_s = 0;               // sum of op totals
  bool operator==(const PassCost&) const = default;
};

// Several passes of one stage as one (e.g. the prefill chunks of a
// micro-batch): per operator, flops, bytes and times are summed (count
// unchanged), and so are the ranks' busy times; tokens add up, position is the
// first pass's. Requires the same operator list in every pass.
PassCost CombinePasses(const std::vector<PassCost>& passes);

// What one pipeline stage holds, for costing.
struct StageShape {
  int stage = 0;
  int num_layers = 0;
  bool embedding = false;  // first stage
  bool lm_head = false;    // last stage
};

class CostModel {
 public:
  // Requires CheckTensorParallel(model, tp).ok(), pp >= 1, tp * pp <=
  // cluster.num_chips, and a positive rate for every type used
  // (CheckRates).
  CostModel(const ModelConfig& model, const ClusterSpec& cluster, const Workload& workload, int tp,
            int pp);

  // A positive FLOP/s rate for the matmul and activation types of `workload`
  // on `cluster`'s chip; the message says which type is missing.
  static Status CheckRates(const ClusterSpec& cluster, const Workload& workload);

  PassCost StagePass(const StageShape& stage, const PassShape& pass) const;

  // Activation bytes a pass of `sequences` x `tokens` sends to the next stage.
  int64_t HandoffBytes(int sequences, int64_t tokens) const;
  // Bytes of the sampled tokens the last stage sends back to stage 0.
  int64_t TokenBytes(int sequences) const { return int64_t{4} * sequences; }
  // Latency and bandwidth of the hop from `from_stage` to `to_stage` (tp rank
  // r talks to tp rank r; the slowest pair counts).
  const LinkSpec& HopLink(int from_stage, int to_stage) const;

  ElementType matmul_type() const { return matmul_type_; }
  int tp() const { return tp_; }
  int pp() const { return pp_; }
  const TpSlice& slice(int tp_rank) const { return slices_[tp_rank]; }

 private:
  void AddLayerOps(int stage, int tp_rank, const PassShape& pass, std::vector<OpCost>* ops) const;
  // `measured_rate` > 0: the calibrated rate (ChipSpec::matmul_flops,
  // attention_flops) instead of the peak of `type`.
  OpCost Compute(std::string name, int launches, double flops, double bytes, ElementType type,
                 double measured_rate = 0) const;
  OpCost Matmul(std::string name, int launches, int64_t tokens, int64_t rows, int64_t k) const;
  OpCost Collective(std::string name, double time_s, double bytes_sent) const;
  std::vector<int> Group(int stage) const;

  ModelConfig model_;
  ClusterSpec cluster_;
  Workload workload_;
  int tp_;
  int pp_;
  ElementType matmul_type_;
  // Chips of a node sharing its rates at once (1 without
  // ChipSpec::shared_by_node); see the constructor.
  int node_sharing_ = 1;
  std::vector<TpSlice> slices_;
};

}  // namespace lockstep::partitioner
