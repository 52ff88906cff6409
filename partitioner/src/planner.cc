#include "lockstep/partitioner/planner.h"

#include <algorithm>
#include <map>
#include <optional>

#include "lockstep/base/check.h"
#include "lockstep/partitioner/cost_model.h"
#include "lockstep/partitioner/memory_model.h"
#include "lockstep/partitioner/pipeline_schedule.h"

namespace lockstep::partitioner {
namespace {

std::string Bytes(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.1f} MB", b / 1e6);
  if (b >= 1e3) return fmt::format("{:.1f} kB", b / 1e3);
  return fmt::format("{} B", bytes);
}

int CeilDiv(int a, int b) {
  return (a + b - 1) / b;
}

std::vector<int> MicroBatchCandidates(const Workload& w, int pp) {
  if (w.micro_batches > 0) return {w.micro_batches};
  std::vector<int> c;
  const int limit = std::min(w.batch_size, 2 * pp);
  for (int m = 1; m <= limit; m *= 2) c.push_back(m);
  for (int m : {pp, 2 * pp, w.batch_size}) {
    if (m <= limit) c.push_back(m);
  }
  std::sort(c.begin(), c.end());
  c.erase(std::unique(c.begin(), c.end()), c.end());
  return c;
}

StageShape Shape(int stage, int pp, int layers) {
  return {stage, layers, stage == 0, stage == pp - 1};
}

// The most layers stage `stage` can hold within the chip memory (-1: not
// even the stage's fixed part fits).
int64_t MaxLayers(const ModelConfig& model, const Workload& w, const std::vector<TpSlice>& slices,
                  int stage, int pp, int max_micro_batch, int64_t limit) {
  int64_t cap = model.num_layers;
  for (const TpSlice& s : slices) {
    const RankMemory base = StageRankMemory(model, w, s, Shape(stage, pp, 0), pp, max_micro_batch);
    const int64_t per_layer =
        LayerWeightBytes(model, s, w.weight_type) + LayerKvCacheBytes(model, s, w);
    if (base.total() > limit) return -1;
    cap = std::min(cap, (limit - base.total()) / per_layer);
  }
  return cap;
}

// Memory caps of every stage. Stages differ only as first / middle / last.
std::vector<int64_t> StageCaps(const ModelConfig& model, const Workload& w,
                               const std::vector<TpSlice>& slices, int pp, int max_micro_batch,
                               int64_t limit) {
  std::vector<int64_t> caps(pp);
  std::optional<int64_t> middle;
  for (int s = 0; s < pp; ++s) {
    if (s > 0 && s < pp - 1) {
      if (!middle) middle = MaxLayers(model, w, slices, s, pp, max_micro_batch, limit);
      caps[s] = *middle;
    } else {
      caps[s] = MaxLayers(model, w, slices, s, pp, max_micro_batch, limit);
    }
  }
  return caps;
}

bool CapsFit(const std::vector<int64_t>& caps, int num_layers) {
  int64_t total = 0;
  for (int64_t c : caps) {
    if (c < 1) return false;
    total += c;
  }
  return total >= num_layers;
}

// Layers per stage: one each, then one at a time to the stage whose time
// would be the least (ties: the lower stage), within the caps. Requires
// CapsFit. With identical per-layer times this minimises the slowest stage.
std::vector<int> BalanceLayers(const std::vector<double>& per_layer_s,
                               const std::vector<double>& fixed_s, const std::vector<int64_t>& caps,
                               int num_layers) {
  const int pp = static_cast<int>(per_layer_s.size());
  std::vector<int> layers(pp, 1);
  for (int left = num_layers - pp; left > 0; --left) {
    int best = -1;
    double best_time = 0;
    for (int s = 0; s < pp; ++s) {
      if (layers[s] + 1 > caps[s]) continue;
      const double t = (layers[s] + 1) * per_layer_s[s] + fixed_s[s];
      if (best < 0 || t < best_time) {
        best = s;
        best_time = t;
      }
    }
    LOCKSTEP_CHECK(best >= 0, "BalanceLayers called without CapsFit");
    ++layers[best];
  }
  return layers;
}

struct Candidate {
  int tp = 0;
  int pp = 0;
  int micro_batches = 0;
  std::vector<int> layers;
  ScheduleInput schedule;
  double ttft_s = 0;
  double period_s = 0;
  double total_s = 0;
  double throughput = 0;
};

// Better by the objective; ties as in planner.h.
bool Better(const Candidate& a, const Candidate& b, Objective objective) {
  if (objective == Objective::kLatency) {
    if (a.period_s != b.period_s) return a.period_s < b.period_s;
    if (a.throughput != b.throughput) return a.throughput > b.throughput;
  } else {
    if (a.throughput != b.throughput) return a.throughput > b.throughput;
    if (a.period_s != b.period_s) return a.period_s < b.period_s;
  }
  if (a.micro_batches != b.micro_batches) return a.micro_batches < b.micro_batches;
  return a.tp < b.tp;
}

// Everything the evaluation of one (tp, pp) shares across micro-batch counts.
class Evaluator {
 public:
  Evaluator(const PlanRequest& q, int tp, int pp)
      : q_(q), tp_(tp), pp_(pp), cost_(q.model, q.cluster, q.workload, tp, pp) {
    for (int r = 0; r < tp; ++r) slices_.push_back(MakeTpSlice(q.model, tp, r));
    decode_context_ = q.workload.prompt_length + q.workload.generated_length / 2;
  }

  const std::vector<TpSlice>& slices() const { return slices_; }
  const CostModel& cost() const { return cost_; }
  int64_t decode_context() const { return decode_context_; }

  // nullopt when it does not fit.
  std::optional<Candidate> Evaluate(int m) {
    const Workload& w = q_.workload;
    const int b_max = CeilDiv(w.batch_size, m);
    const std::vector<int64_t> caps =
        StageCaps(q_.model, w, slices_, pp_, b_max, q_.cluster.ChipMemoryBytes());
    if (!CapsFit(caps, q_.model.num_layers)) return std::nullopt;
    std::vector<double> per_layer(pp_), fixed(pp_);
    for (int s = 0; s < pp_; ++s) {
      const double with_one = Decode(Shape(s, pp_, 1), b_max).time_s;
      fixed[s] = Decode(Shape(s, pp_, 0), b_max).time_s;
      per_layer[s] = with_one - fixed[s];
    }
    Candidate c;
    c.tp = tp_;
    c.pp = pp_;
    c.micro_batches = m;
    c.layers = BalanceLayers(per_layer, fixed, caps, q_.model.num_layers);
    c.schedule = Schedule(c.layers, m);
    c.ttft_s = SimulateSchedule(c.schedule, 0).time_to_first_token_s;
    c.period_s = SteadyDecodePeriod(c.schedule);
    c.total_s = c.ttft_s + static_cast<double>(w.generated_length - 1) * c.period_s;
    c.throughput =
        static_cast<double>(w.batch_size) * static_cast<double>(w.generated_length) / c.total_s;
    return c;
  }

  // A decode pass of a stage shape at the decode context (memoised: stages repeat).
  const PassCost& Decode(const StageShape& shape, int sequences) {
    return Pass(shape, PassShape::Decode(sequences, decode_context_));
  }
  // Prefill chunk k of a micro-batch of `sequences`.
  const PassCost& PrefillChunk(const StageShape& shape, int sequences, int k) {
    const Workload& w = q_.workload;
    return Pass(shape,
                PassShape::Prefill(sequences, w.PrefillChunkBegin(k), w.PrefillChunkBegin(k + 1)));
  }
  // The whole prefill of a micro-batch, its chunks combined.
  PassCost Prefill(const StageShape& shape, int sequences) {
    std::vector<PassCost> chunks;
    for (int k = 0; k < q_.workload.NumPrefillChunks(); ++k) {
      chunks.push_back(PrefillChunk(shape, sequences, k));
    }
    return CombinePasses(chunks);
  }

  ScheduleInput Schedule(const std::vector<int>& layers, int m) {
    const Workload& w = q_.workload;
    const int chunks = w.NumPrefillChunks();
    ScheduleInput in;
    in.num_stages = pp_;
    in.num_micro_batches = m;
    in.prefill_chunks = chunks;
    in.prefill_s.assign(pp_, std::vector<double>(m * chunks));
    in.decode_s.assign(pp_, std::vector<double>(m));
    for (int s = 0; s < pp_; ++s) {
      for (int j = 0; j < m; ++j) {
        const int b = MicroBatchSize(w.batch_size, m, j);
        for (int k = 0; k < chunks; ++k) {
          in.prefill_s[s][j * chunks + k] = PrefillChunk(Shape(s, pp_, layers[s]), b, k).time_s;
        }
        in.decode_s[s][j] = Decode(Shape(s, pp_, layers[s]), b).time_s;
      }
    }
    if (pp_ > 1) {
      in.hop_latency_s.resize(pp_);
      in.prefill_transfer_s.assign(pp_, std::vector<double>(m * chunks));
      in.decode_transfer_s.assign(pp_, std::vector<double>(m));
      for (int h = 0; h < pp_; ++h) {
        const LinkSpec& link = cost_.HopLink(h, (h + 1) % pp_);
        const bool back = h == pp_ - 1;
        in.hop_latency_s[h] = link.latency_s;
        for (int j = 0; j < m; ++j) {
          const int b = MicroBatchSize(w.batch_size, m, j);
          for (int k = 0; k < chunks; ++k) {
            const int64_t tokens = w.PrefillChunkBegin(k + 1) - w.PrefillChunkBegin(k);
            const double bytes =
                static_cast<double>(back ? cost_.TokenBytes(b) : cost_.HandoffBytes(b, tokens));
            in.prefill_transfer_s[h][j * chunks + k] = bytes / link.PeerBandwidth();
          }
          const double bytes =
              static_cast<double>(back ? cost_.TokenBytes(b) : cost_.HandoffBytes(b, 1));
          in.decode_transfer_s[h][j] = bytes / link.PeerBandwidth();
        }
      }
    }
    return in;
  }

 private:
  const PassCost& Pass(const StageShape& shape, const PassShape& pass) {
    auto key = std::make_tuple(shape.stage, shape.num_layers, pass.phase == Phase::kDecode,
                               pass.sequences, pass.tokens, pass.position);
    auto it = passes_.find(key);
    if (it != passes_.end()) return it->second;
    return passes_.emplace(key, cost_.StagePass(shape, pass)).first->second;
  }

  const PlanRequest& q_;
  int tp_;
  int pp_;
  CostModel cost_;
  std::vector<TpSlice> slices_;
  int64_t decode_context_ = 0;
  std::map<std::tuple<int, int, bool, int, int64_t, int64_t>, PassCost> passes_;
};

Plan BuildPlan(const PlanRequest& q, const Candidate& c, Evaluator& ev) {
  const ModelConfig& model = q.model;
  const Workload& w = q.workload;
  Plan plan;
  plan.request = q;
  plan.model_fingerprint = ModelConfigFingerprint(model);
  plan.tp = c.tp;
  plan.pp = c.pp;
  plan.micro_batches = c.micro_batches;
  plan.tp_slices = ev.slices();
  int layer = 0;
  for (int s = 0; s < c.pp; ++s) {
    plan.stages.push_back({s, layer, layer + c.layers[s], s == 0, s == c.pp - 1});
    layer += c.layers[s];
  }
  const int b_max = CeilDiv(w.batch_size, c.micro_batches);
  const std::vector<TensorSpec> all = ModelTensors(model);
  for (int s = 0; s < c.pp; ++s) {
    const std::vector<TensorSpec> tensors = StageTensors(model, all, plan.stages[s]);
    for (int r = 0; r < c.tp; ++r) {
      RankPlan rp;
      rp.rank = plan.WorldRank(s, r);
      rp.stage = s;
      rp.tp_rank = r;
      rp.node = q.cluster.NodeOf(rp.rank);
      for (const TensorSpec& t : tensors) {
        rp.shards.push_back(ShardTensor(model, t, plan.tp_slices[r], w.weight_type));
      }
      rp.memory =
          StageRankMemory(model, w, plan.tp_slices[r], Shape(s, c.pp, c.layers[s]), c.pp, b_max);
      plan.ranks.push_back(std::move(rp));
    }
  }

  Prediction& p = plan.prediction;
  p.time_to_first_token_s = c.ttft_s;
  p.decode_latency_per_token_s = c.period_s;
  p.decode_tokens_per_s_per_user = 1.0 / c.period_s;
  p.throughput_tokens_per_s = c.throughput;
  p.total_time_s = c.total_s;
  p.decode_context = ev.decode_context();
  const double decode_rounds = static_cast<double>(w.generated_length - 1);
  p.ranks.resize(plan.num_ranks());
  for (int s = 0; s < c.pp; ++s) {
    const StageShape shape = Shape(s, c.pp, c.layers[s]);
    StagePrediction sp;
    sp.stage = s;
    sp.prefill = ev.Prefill(shape, b_max);
    sp.decode = ev.Decode(shape, b_max);
    if (c.pp > 1) {
      sp.prefill_handoff_s =
          c.schedule.hop_latency_s[s] + c.schedule.prefill_transfer_s[s][0];  // chunk 0
      sp.decode_handoff_s = c.schedule.hop_latency_s[s] + c.schedule.decode_transfer_s[s][0];
    }
    for (int r = 0; r < c.tp; ++r) {
      RankShares& share = p.ranks[plan.WorldRank(s, r)];
      for (int j = 0; j < c.micro_batches; ++j) {
        const int b = MicroBatchSize(w.batch_size, c.micro_batches, j);
        const RankBusy pre = ev.Prefill(shape, b).tp_ranks[r];
        const RankBusy& dec = ev.Decode(shape, b).tp_ranks[r];
        share.compute_s += pre.compute_s + decode_rounds * dec.compute_s;
        share.memory_s += pre.memory_s + decode_rounds * dec.memory_s;
        share.communication_s += pre.communication_s + decode_rounds * dec.communication_s;
      }
      share.idle_s =
          std::max(0.0, c.total_s - share.compute_s - share.memory_s - share.communication_s);
    }
    p.stages.push_back(std::move(sp));
  }
  return plan;
}

// The largest memory need of any rank when the layers are balanced by time
// alone (for the does-not-fit message).
struct WorstRank {
  int rank = 0;
  int stage = 0;
  int layer_begin = 0;
  int layer_end = 0;
  RankMemory memory;
};

WorstRank WorstRankIgnoringMemory(const PlanRequest& q, int tp, int pp, int b_max) {
  std::vector<int64_t> unlimited(pp, q.model.num_layers);
  std::vector<int> layers = BalanceLayers(
      std::vector<double>(pp, 1.0), std::vector<double>(pp, 0.0), unlimited, q.model.num_layers);
  WorstRank worst;
  int begin = 0;
  for (int s = 0; s < pp; ++s) {
    for (int r = 0; r < tp; ++r) {
      RankMemory m = StageRankMemory(q.model, q.workload, MakeTpSlice(q.model, tp, r),
                                     Shape(s, pp, layers[s]), pp, b_max);
      if (m.total() > worst.memory.total()) worst = {s * tp + r, s, begin, begin + layers[s], m};
    }
    begin += layers[s];
  }
  return worst;
}

Status DoesNotFit(const PlanRequest& q, int tp, int pp) {
  const Workload& w = q.workload;
  const std::vector<int> ms = MicroBatchCandidates(w, pp);
  const WorstRank worst = WorstRankIgnoringMemory(q, tp, pp, CeilDiv(w.batch_size, ms.back()));
  const RankMemory& m = worst.memory;
  std::string advice;
  Result<ChipCount> fewest = FewestChipsThatFit(q.model, q.cluster, w);
  if (fewest.ok()) {
    advice = fmt::format("the fewest {} chips that hold it: {} (--tp {} --pp {})",
                         q.cluster.chip.name, fewest->chips, fewest->tp, fewest->pp);
  } else {
    advice = fewest.status().message();
  }
  return ResourceExhausted(
      "model '{}' with {} weights does not fit on {} {} chips as tp {} x pp {}: rank {} (stage {}, "
      "layers {}-{}) needs {} (weights {}, KV cache {}, activations {}, buffers {}) but a chip "
      "has {}; {}",
      q.model.name, ElementTypeName(w.weight_type), q.cluster.num_chips, q.cluster.chip.name, tp,
      pp, worst.rank, worst.stage, worst.layer_begin, worst.layer_end - 1, Bytes(m.total()),
      Bytes(m.weights), Bytes(m.kv_cache), Bytes(m.activations), Bytes(m.comm_buffers),
      Bytes(q.cluster.ChipMemoryBytes()), advice);
}

Status CheckPipeline(const ModelConfig& model, int pp) {
  if (pp < 1) return InvalidArgument("pp {} must be at least 1", pp);
  if (pp > model.num_layers) {
    return InvalidArgument(
        "pp {} exceeds the {} layers of '{}': every stage needs a layer; use pp <= {}", pp,
        model.num_layers, model.name, model.num_layers);
  }
  return Status::Ok();
}

Result<Plan> Best(const PlanRequest& q, const std::vector<std::pair<int, int>>& shapes) {
  std::optional<Candidate> best;
  std::optional<Evaluator> best_evaluator;
  for (auto [tp, pp] : shapes) {
    Evaluator ev(q, tp, pp);
    bool improved = false;
    for (int m : MicroBatchCandidates(q.workload, pp)) {
      std::optional<Candidate> c = ev.Evaluate(m);
      if (c && (!best || Better(*c, *best, q.objective))) {
        best = std::move(c);
        improved = true;
      }
    }
    if (improved) best_evaluator.emplace(q, tp, pp);
  }
  if (!best) {
    // Report the shape with the largest tp (the least memory per rank).
    return DoesNotFit(q, shapes.back().first, shapes.back().second);
  }
  return BuildPlan(q, *best, *best_evaluator);
}

}  // namespace

Result<ChipCount> FewestChipsThatFit(const ModelConfig& model, const ClusterSpec& cluster,
                                     const Workload& workload) {
  std::optional<ChipCount> best;
  for (int tp : ValidTensorParallelSizes(model, workload.weight_type)) {
    std::vector<TpSlice> slices;
    for (int r = 0; r < tp; ++r) slices.push_back(MakeTpSlice(model, tp, r));
    for (int pp = 1; pp <= model.num_layers; ++pp) {
      if (best && tp * pp >= best->chips) break;
      ClusterSpec sized = cluster;
      sized.num_chips = tp * pp;
      if (sized.chip.shared_by_node) sized.chips_per_node = sized.num_chips;
      const std::vector<int> ms = MicroBatchCandidates(workload, pp);
      const int b_max = CeilDiv(workload.batch_size, ms.back());
      if (CapsFit(StageCaps(model, workload, slices, pp, b_max, sized.ChipMemoryBytes()),
                  model.num_layers)) {
        best = ChipCount{tp * pp, tp, pp};
        break;
      }
    }
  }
  if (!best) {
    const std::vector<int> sizes = ValidTensorParallelSizes(model, workload.weight_type);
    if (sizes.empty()) return CheckTensorParallel(model, 1, workload.weight_type);
    const TpSlice one = MakeTpSlice(model, sizes.back(), 0);
    return NotFound(
        "it does not fit on any number of {} chips: even at the largest tp {} one layer needs {} "
        "of weights and KV cache per rank",
        cluster.chip.name, one.tp,
        Bytes(LayerWeightBytes(model, one, workload.weight_type) +
              LayerKvCacheBytes(model, one, workload)));
  }
  return *best;
}

Result<Plan> MakePlan(const PlanRequest& q) {
  LOCKSTEP_RETURN_IF_ERROR(q.model.Validate().WithContext(fmt::format("model '{}'", q.model.name)));
  LOCKSTEP_RETURN_IF_ERROR(q.cluster.Validate().WithContext("cluster spec"));
  LOCKSTEP_RETURN_IF_ERROR(q.workload.ValidateFor(q.model).WithContext("workload"));
  LOCKSTEP_RETURN_IF_ERROR(CostModel::CheckRates(q.cluster, q.workload));
  const int chips = q.cluster.num_chips;
  if ((q.tp == 0) != (q.pp == 0)) {
    return InvalidArgument("give both tp and pp (--tp T --pp P), or neither for an automatic plan");
  }
  if (q.tp != 0) {
    LOCKSTEP_RETURN_IF_ERROR(CheckTensorParallel(q.model, q.tp, q.workload.weight_type));
    LOCKSTEP_RETURN_IF_ERROR(CheckPipeline(q.model, q.pp));
    if (int64_t{q.tp} * q.pp != chips) {
      std::string hint;
      if (chips % q.tp == 0 && chips / q.tp <= q.model.num_layers) {
        hint = fmt::format("use --pp {} for {} chips, or ", chips / q.tp, chips);
      }
      return InvalidArgument(
          "tp {} x pp {} = {} chips but the cluster has {}; {}set the chip count "
          "to {} (--chips {})",
          q.tp, q.pp, int64_t{q.tp} * q.pp, chips, hint, q.tp * q.pp, q.tp * q.pp);
    }
    return Best(q, {{q.tp, q.pp}});
  }
  std::vector<std::pair<int, int>> shapes;
  const std::vector<int> sizes = ValidTensorParallelSizes(q.model, q.workload.weight_type);
  if (sizes.empty()) return CheckTensorParallel(q.model, 1, q.workload.weight_type);
  for (int tp : sizes) {
    if (chips % tp == 0 && chips / tp <= q.model.num_layers) shapes.push_back({tp, chips / tp});
  }
  if (shapes.empty()) {
    std::string valid;
    for (int tp : sizes) valid += (valid.empty() ? "" : ", ") + std::to_string(tp);
    return InvalidArgument(
        "no tp x pp uses exactly {} chips for '{}': tp must be one of {{{}}} and divide the chip "
        "count, with pp = chips / tp <= {} layers; choose a chip count such as {}",
        chips, q.model.name, valid, q.model.num_layers,
        sizes.back() * std::min(q.model.num_layers, std::max(1, chips / sizes.back())));
  }
  return Best(q, shapes);
}

Status VerifyPlan(const Plan& plan) {
  Result<Plan> again = MakePlan(plan.request);
  if (!again.ok()) return again.status().WithContext("re-planning the plan's inputs");
  const Plan& p = *again;
  if (p.tp != plan.tp || p.pp != plan.pp || p.micro_batches != plan.micro_batches) {
    return FailedPrecondition(
        "the plan says tp {} x pp {} with {} micro-batches but its inputs give tp {} x pp {} with "
        "{}",
        plan.tp, plan.pp, plan.micro_batches, p.tp, p.pp, p.micro_batches);
  }
  if (p.stages != plan.stages)
    return FailedPrecondition("the plan's stage layer ranges differ from its inputs'");
  if (p.tp_slices != plan.tp_slices)
    return FailedPrecondition("the plan's tp_slices differ from its inputs'");
  for (int r = 0; r < p.num_ranks(); ++r) {
    if (p.ranks[r] != plan.ranks[r]) {
      return FailedPrecondition("rank {}: shards or memory differ from what the plan's inputs give",
                                r);
    }
  }
  return Status::Ok();
}

}  // namespace lockstep::partitioner
