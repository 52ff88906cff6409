#include "lockstep/partitioner/cost_model.h"

#include <algorithm>

#include "lockstep/base/check.h"
#include "lockstep/partitioner/collective_cost.h"

namespace lockstep::partitioner {
namespace {

// The type matmuls multiply in (element_type.h: int8 for quantized weights).
ElementType MatmulType(const Workload& w) {
  // bf16 compute multiplies bf16 by bf16 (the chip's bf16 rate).
  if (w.compute == MatmulCompute::kBf16) return ElementType::kBF16;
  return MatmulComputeType(w.weight_type, w.activation_type);
}

// Causal attention of `tokens` queries at positions [position, position +
// tokens): keys visited per query head, summed over the queries. With a
// sliding window w > 0 a query sees at most w keys.
double KeyVisits(int64_t tokens, int64_t position, int64_t window) {
  const double t = static_cast<double>(tokens);
  if (window <= 0) return t * static_cast<double>(position) + t * (t + 1) / 2;
  // The first k queries see position + i + 1 keys, the others w.
  const int64_t k = std::clamp<int64_t>(window - position, 0, tokens);
  const double kd = static_cast<double>(k);
  return kd * static_cast<double>(position) + kd * (kd + 1) / 2 +
         (t - kd) * static_cast<double>(window);
}

// Keys read per KV head: queries go in blocks of 64 and each block reads the
// keys up to its last query once (from its first query's window start).
double KeyReads(int64_t tokens, int64_t position, int64_t window) {
  const int64_t block = 64;
  const int64_t blocks = (tokens + block - 1) / block;
  if (window <= 0) {
    return static_cast<double>(blocks * position + block * blocks * (blocks - 1) / 2 + tokens);
  }
  double reads = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t first = position + b * block;
    const int64_t last = position + std::min(tokens, (b + 1) * block) - 1;
    reads += static_cast<double>(last + 1 - std::max<int64_t>(0, first - window + 1));
  }
  return reads;
}

}  // namespace

std::string_view PhaseName(Phase phase) {
  return phase == Phase::kPrefill ? "prefill" : "decode";
}

std::string_view OpBoundName(OpBound bound) {
  switch (bound) {
    case OpBound::kCompute:
      return "compute";
    case OpBound::kMemory:
      return "memory";
    case OpBound::kCommunication:
      return "communication";
  }
  return "?";
}

Status CostModel::CheckRates(const ClusterSpec& cluster, const Workload& workload) {
  for (ElementType t : {MatmulType(workload), workload.activation_type}) {
    if (!(cluster.chip.PeakFlops(t) > 0)) {
      return InvalidArgument(
          "chip '{}' has no peak_flops for {} (nor f32), which {} weights with {} activations "
          "compute in; add chip.peak_flops.{} to the cluster spec or change the weight/activation "
          "type",
          cluster.chip.name, ElementTypeName(t), ElementTypeName(workload.weight_type),
          ElementTypeName(workload.activation_type), ElementTypeName(t));
    }
  }
  return Status::Ok();
}

CostModel::CostModel(const ModelConfig& model, const ClusterSpec& cluster, const Workload& workload,
                     int tp, int pp)
    : model_(model),
      cluster_(cluster),
      workload_(workload),
      tp_(tp),
      pp_(pp),
      matmul_type_(MatmulType(workload)) {
  LOCKSTEP_CHECK(pp >= 1 && int64_t{tp} * pp <= cluster.num_chips, "tp {} pp {} chips {}", tp, pp,
                 cluster.num_chips);
  LOCKSTEP_CHECK(CheckRates(cluster, workload).ok());
  for (int r = 0; r < tp; ++r) slices_.push_back(MakeTpSlice(model, tp, r));
  // Node sharing (ChipSpec::shared_by_node): the node's figures are divided
  // among the chips that work at the same time, not among all of them. A
  // pipeline has at most min(pp, sequences in flight) stages busy at once --
  // at batch 1 one stage, whose tp ranks then have the node to themselves,
  // as far as their threads reach (ClusterSpec::BusyChipMemoryBandwidth;
  // measured: benchmarks/RESULTS.md, ## distributed).
  if (cluster.chip.shared_by_node) {
    const int in_flight = workload.micro_batches > 0 ? workload.micro_batches : workload.batch_size;
    const int busy = tp * std::min(pp, std::max(1, in_flight));
    node_sharing_ = std::max(1, std::min({cluster.chips_per_node, cluster.num_chips, busy}));
  }
}

std::vector<int> CostModel::Group(int stage) const {
  std::vector<int> group(tp_);
  for (int r = 0; r < tp_; ++r) group[r] = stage * tp_ + r;
  return group;
}

const LinkSpec& CostModel::HopLink(int from_stage, int to_stage) const {
  for (int r = 0; r < tp_; ++r) {
    if (!cluster_.SameNode(from_stage * tp_ + r, to_stage * tp_ + r))
      return cluster_.inter_node_link;
  }
  return cluster_.intra_node_link;
}

int64_t CostModel::HandoffBytes(int sequences, int64_t tokens) const {
  return int64_t{sequences} * tokens * model_.hidden_size * ElementSize(workload_.activation_type);
}

OpCost CostModel::Compute(std::string name, int launches, double flops, double bytes,
                          ElementType type, double measured_rate) const {
  OpCost op;
  op.name = std::move(name);
  op.launches = launches;
  op.flops = flops;
  op.bytes = bytes;
  op.compute_s =
      flops / (measured_rate > 0 ? measured_rate : cluster_.BusyChipPeakFlops(type, node_sharing_));
  op.memory_s = bytes / cluster_.BusyChipMemoryBandwidth(node_sharing_);
  op.overhead_s = launches * cluster_.chip.op_overhead_s;
  op.time_s = std::max(op.compute_s, op.memory_s) + op.overhead_s;
  // A measured rate includes the kernel's own memory traffic: the op counts
  // as memory-bound while the bandwidth alone explains most of its time.
  if (measured_rate > 0) {
    op.bound = op.memory_s >= 0.8 * op.compute_s ? OpBound::kMemory : OpBound::kCompute;
  } else {
    op.bound = op.compute_s >= op.memory_s ? OpBound::kCompute : OpBound::kMemory;
  }
  return op;
}

// y[tokens][rows] = x[tokens][k] W[rows][k]^T: weights read once per pass.
OpCost CostModel::Matmul(std::string name, int launches, int64_t tokens, int64_t rows,
                         int64_t k) const {
  const double a = static_cast<double>(ElementSize(workload_.activation_type));
  const double w = BytesPerElement(workload_.weight_type);
  const double t = static_cast<double>(tokens);
  const double flops = 2.0 * t * static_cast<double>(rows) * static_cast<double>(k);
  const double bytes = static_cast<double>(rows) * static_cast<double>(k) * w +
                       t * static_cast<double>(k) * a + t * static_cast<double>(rows) * a;
  // One call per launch: the measured rate is for calls of `tokens` rows.
  return Compute(std::move(name), launches, flops, bytes, matmul_type_,
                 cluster_.BusyChipMatmulFlops(workload_.weight_type, tokens, node_sharing_,
                                              workload_.compute == MatmulCompute::kBf16));
}

OpCost CostModel::Collective(std::string name, double time_s, double bytes_sent) const {
  OpCost op;
  op.name = std::move(name);
  op.launches = 0;
  op.comm_bytes = bytes_sent;
  op.comm_s = time_s;
  op.time_s = time_s;
  op.bound = OpBound::kCommunication;
  return op;
}

void CostModel::AddLayerOps(int stage, int tp_rank, const PassShape& pass,
                            std::vector<OpCost>* ops) const {
  const TpSlice& s = slices_[tp_rank];
  const ElementType act = workload_.activation_type;
  const double a = static_cast<double>(ElementSize(act));
  const int64_t tokens = int64_t{pass.sequences} * pass.tokens;
  const double t = static_cast<double>(tokens);
  const double h = static_cast<double>(model_.hidden_size);
  const int64_t hd = model_.head_dim;
  const int64_t q_rows = s.q_heads.size() * hd;
  const int64_t kv_rows = s.kv_heads.size() * hd;
  const int64_t ffn = s.ffn.size();

  auto norm = [&](std::string name) {
    return Compute(std::move(name), 1, 4.0 * t * h, 2.0 * t * h * a + 4.0 * h, act);
  };
  auto residual = [&](std::string name) {
    return Compute(std::move(name), 1, t * h, 3.0 * t * h * a, act);
  };
  const std::vector<int> group = Group(stage);
  const int64_t reduce_bytes = tokens * model_.hidden_size * ElementSize(act);
  const CollectiveCost allreduce = AllreduceCost(cluster_, group, reduce_bytes);

  ops->push_back(norm("attn_norm"));
  ops->push_back(Matmul("attn_qkv", 3, tokens, q_rows + 2 * kv_rows, model_.hidden_size));
  if (model_.qkv_bias) {  // q, k, v bias adds: one read-add-write per element
    ops->push_back(Compute("qkv_bias", 1, t * static_cast<double>(q_rows + 2 * kv_rows),
                           2.0 * t * static_cast<double>(q_rows + 2 * kv_rows) * a +
                               4.0 * static_cast<double>(q_rows + 2 * kv_rows),
                           act));
  }
  ops->push_back(Compute("rope", 1, 6.0 * t * static_cast<double>(q_rows + kv_rows),
                         2.0 * t * static_cast<double>(q_rows + kv_rows) * a, act));
  {
    // K and V are read once per KV head and query block.
    const double visits = KeyVisits(pass.tokens, pass.position, model_.sliding_window);
    const double reads = KeyReads(pass.tokens, pass.position, model_.sliding_window);
    const double b = static_cast<double>(pass.sequences);
    const double q_heads = static_cast<double>(s.q_heads.size());
    const double flops = b * q_heads * visits * (4.0 * static_cast<double>(hd) + 5.0);
    const double bytes = b * reads * 2.0 * static_cast<double>(kv_rows) * a  // K, V reads
                         + 2.0 * t * static_cast<double>(kv_rows) * a        // K, V appends
                         + 2.0 * t * static_cast<double>(q_rows) * a;        // q in, out
    ops->push_back(
        Compute("attention", 1, flops, bytes, act,
                cluster_.BusyChipAttentionFlops(node_sharing_, pass.phase == Phase::kDecode)));
  }
  ops->push_back(Matmul("attn_out", 1, tokens, model_.hidden_size, q_rows));
  if (tp_ > 1) {  // a single rank runs no collectives
    ops->push_back(
        Collective("attn_allreduce", allreduce.time_s, static_cast<double>(allreduce.bytes_sent)));
  }
  ops->push_back(residual("attn_residual"));
  ops->push_back(norm("ffn_norm"));
  ops->push_back(Matmul("ffn_gate_up", 2, tokens, 2 * ffn, model_.hidden_size));
  ops->push_back(Compute("swiglu", 1, 8.0 * t * static_cast<double>(ffn),
                         3.0 * t * static_cast<double>(ffn) * a, act));
  ops->push_back(Matmul("ffn_down", 1, tokens, model_.hidden_size, ffn));
  if (tp_ > 1) {
    ops->push_back(
        Collective("ffn_allreduce", allreduce.time_s, static_cast<double>(allreduce.bytes_sent)));
  }
  ops->push_back(residual("ffn_residual"));
}

PassCost CostModel::StagePass(const StageShape& stage, const PassShape& shape) const {
  const int sequences = shape.sequences;
  const ElementType act = workload_.activation_type;
  const double a = static_cast<double>(ElementSize(act));
  const double w = BytesPerElement(workload_.weight_type);
  const int64_t tokens = int64_t{sequences} * shape.tokens;
  const std::vector<int> group = Group(stage.stage);

  // ops_by_rank[r]: the same operator list for every tp rank, its own figures.
  std::vector<std::vector<OpCost>> ops_by_rank(tp_);
  for (int r = 0; r < tp_; ++r) {
    std::vector<OpCost>& ops = ops_by_rank[r];
    const TpSlice& s = slices_[r];
    if (stage.embedding) {
      const double cols = static_cast<double>(s.hidden.size());
      ops.push_back(
          Compute("embedding", 1, 0.0, static_cast<double>(tokens) * cols * (w + a), act));
      if (tp_ > 1) {
        const CollectiveCost gather =
            AllgatherCost(cluster_, group, tokens * model_.hidden_size * ElementSize(act));
        ops.push_back(Collective("embedding_allgather", gather.time_s,
                                 static_cast<double>(gather.bytes_sent)));
      }
    }
    const size_t first_layer_op = ops.size();
    if (stage.num_layers > 0) AddLayerOps(stage.stage, r, shape, &ops);
    for (size_t i = first_layer_op; i < ops.size(); ++i) ops[i].count = stage.num_layers;
    if (stage.lm_head) {
      // Only the last position of each sequence needs logits.
      const double b = static_cast<double>(sequences);
      const double h = static_cast<double>(model_.hidden_size);
      const double vocab = static_cast<double>(model_.vocab_size);
      ops.push_back(Compute("final_norm", 1, 4.0 * b * h, 2.0 * b * h * a + 4.0 * h, act));
      ops.push_back(Matmul("lm_head", 1, sequences, s.vocab.size(), model_.hidden_size));
      if (tp_ > 1) {
        const CollectiveCost gather =
            AllgatherCost(cluster_, group, int64_t{sequences} * model_.vocab_size * 4);
        ops.push_back(
            Collective("logits_allgather", gather.time_s, static_cast<double>(gather.bytes_sent)));
      }
      ops.push_back(Compute("sampling", 1, 2.0 * b * vocab, 4.0 * b * vocab, act));
    }
  }

  PassCost pass;
  pass.phase = shape.phase;
  pass.sequences = sequences;
  pass.tokens = shape.tokens;
  pass.position = shape.position;
  pass.tp_ranks.resize(tp_);
  const size_t num_ops = ops_by_rank[0].size();
  for (size_t i = 0; i < num_ops; ++i) {
    // The slowest rank's figures stand for the stage.
    size_t slowest = 0;
    for (int r = 1; r < tp_; ++r) {
      if (ops_by_rank[r][i].time_s > ops_by_rank[slowest][i].time_s) slowest = r;
    }
    pass.ops.push_back(ops_by_rank[slowest][i]);
    for (int r = 0; r < tp_; ++r) {
      const OpCost& op = ops_by_rank[r][i];
      const double total = op.total_s();
      RankBusy& busy = pass.tp_ranks[r];
      switch (op.bound) {
        case OpBound::kCompute:
          busy.compute_s += total;
          break;
        case OpBound::kMemory:
          busy.memory_s += total;
          break;
        case OpBound::kCommunication:
          busy.communication_s += total;
          break;
      }
    }
    pass.time_s += pass.ops.back().total_s();
  }
  return pass;
}

PassCost CombinePasses(const std::vector<PassCost>& passes) {
  LOCKSTEP_CHECK(!passes.empty());
  PassCost sum = passes[0];
  for (size_t p = 1; p < passes.size(); ++p) {
    const PassCost& part = passes[p];
    LOCKSTEP_CHECK(part.ops.size() == sum.ops.size() &&
                   part.tp_ranks.size() == sum.tp_ranks.size());
    sum.tokens += part.tokens;
    sum.time_s += part.time_s;
    for (size_t i = 0; i < sum.ops.size(); ++i) {
      OpCost& op = sum.ops[i];
      const OpCost& add = part.ops[i];
      LOCKSTEP_CHECK(op.name == add.name && op.count == add.count, "{} vs {}", op.name, add.name);
      op.flops += add.flops;
      op.bytes += add.bytes;
      op.comm_bytes += add.comm_bytes;
      op.compute_s += add.compute_s;
      op.memory_s += add.memory_s;
      op.comm_s += add.comm_s;
      op.overhead_s += add.overhead_s;
      op.time_s += add.time_s;
      if (op.bound != OpBound::kCommunication) {
        op.bound = op.compute_s >= op.memory_s ? OpBound::kCompute : OpBound::kMemory;
      }
    }
    for (size_t r = 0; r < sum.tp_ranks.size(); ++r) {
      sum.tp_ranks[r].compute_s += part.tp_ranks[r].compute_s;
      sum.tp_ranks[r].memory_s += part.tp_ranks[r].memory_s;
      sum.tp_ranks[r].communication_s += part.tp_ranks[r].communication_s;
    }
  }
  return sum;
}

}  // namespace lockstep::partitioner
