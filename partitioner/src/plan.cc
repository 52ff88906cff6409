#include "lockstep/partitioner/plan.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "json_reader.h"
#include "lockstep/base/json_nesting.h"

namespace lockstep::partitioner {
namespace {

using internal::JsonReader;
using nlohmann::json;

constexpr std::string_view kFormat = "lockstep-plan";
constexpr int kVersion = 1;

json RangeJson(const Range& r) {
  return json::array({r.begin, r.end});
}

void ReadRange(JsonReader& r, std::string_view field, Range* out) {
  std::vector<int64_t> v;
  r.IntArray(field, &v);
  if (!r.ok()) return;
  if (v.size() != 2 || v[0] > v[1]) {
    r.Fail(field, "must be [begin, end] with begin <= end");
    return;
  }
  *out = {v[0], v[1]};
}

// Calls fn(reader, index) for each object of the array `field`.
template <typename Fn>
void ForEach(JsonReader& r, std::string_view field, Fn fn) {
  const json* array = r.Raw(field);
  if (array == nullptr) return;
  if (!array->is_array()) {
    r.Fail(field, "must be an array");
    return;
  }
  for (size_t i = 0; i < array->size() && r.ok(); ++i) {
    JsonReader e((*array)[i], r.source(), fmt::format("{}[{}]", r.Path(field), i));
    fn(e, i);
    r.Fail(e.Finish());
  }
}

json OpJson(const OpCost& op) {
  return {{"name", op.name},           {"count", op.count},
          {"launches", op.launches},   {"flops", op.flops},
          {"bytes", op.bytes},         {"comm_bytes", op.comm_bytes},
          {"compute_s", op.compute_s}, {"memory_s", op.memory_s},
          {"comm_s", op.comm_s},       {"overhead_s", op.overhead_s},
          {"time_s", op.time_s},       {"bound", OpBoundName(op.bound)}};
}

json PassJson(const PassCost& pass) {
  json ops = json::array();
  for (const OpCost& op : pass.ops) ops.push_back(OpJson(op));
  json ranks = json::array();
  for (const RankBusy& b : pass.tp_ranks) {
    ranks.push_back({{"compute_s", b.compute_s},
                     {"memory_s", b.memory_s},
                     {"communication_s", b.communication_s}});
  }
  return {{"phase", PhaseName(pass.phase)},
          {"sequences", pass.sequences},
          {"tokens", pass.tokens},
          {"position", pass.position},
          {"time_s", pass.time_s},
          {"ops", ops},
          {"tp_ranks", ranks}};
}

void ReadPass(JsonReader& parent, std::string_view field, PassCost* pass) {
  JsonReader r = parent.Object(field);
  std::string phase;
  r.String("phase", &phase);
  if (r.ok()) {
    if (phase == "prefill") {
      pass->phase = Phase::kPrefill;
    } else if (phase == "decode") {
      pass->phase = Phase::kDecode;
    } else {
      r.Fail("phase", "must be \"prefill\" or \"decode\", got \"" + phase + "\"");
    }
  }
  r.Int("sequences", &pass->sequences);
  r.Int("tokens", &pass->tokens);
  r.Int("position", &pass->position);
  r.Double("time_s", &pass->time_s);
  ForEach(r, "ops", [&](JsonReader& e, size_t) {
    OpCost op;
    e.String("name", &op.name);
    e.Int("count", &op.count);
    e.Int("launches", &op.launches);
    e.Double("flops", &op.flops);
    e.Double("bytes", &op.bytes);
    e.Double("comm_bytes", &op.comm_bytes);
    e.Double("compute_s", &op.compute_s);
    e.Double("memory_s", &op.memory_s);
    e.Double("comm_s", &op.comm_s);
    e.Double("overhead_s", &op.overhead_s);
    e.Double("time_s", &op.time_s);
    std::string bound;
    e.String("bound", &bound);
    if (bound == "compute") {
      op.bound = OpBound::kCompute;
    } else if (bound == "memory") {
      op.bound = OpBound::kMemory;
    } else if (bound == "communication") {
      op.bound = OpBound::kCommunication;
    } else if (e.ok()) {
      e.Fail("bound", "must be compute, memory or communication, got \"" + bound + "\"");
    }
    pass->ops.push_back(std::move(op));
  });
  ForEach(r, "tp_ranks", [&](JsonReader& e, size_t) {
    RankBusy b;
    e.Double("compute_s", &b.compute_s);
    e.Double("memory_s", &b.memory_s);
    e.Double("communication_s", &b.communication_s);
    pass->tp_ranks.push_back(b);
  });
  parent.Fail(r.Finish());
}

json ShardJson(const TensorShard& s) {
  return {{"path", s.path},
          {"role", TensorRoleName(s.role)},
          {"layer", s.layer},
          {"shape", s.shape},
          {"start", s.start},
          {"count", s.count},
          {"segments", RangeJson(s.segments)},
          {"replicated", s.replicated},
          {"type", ElementTypeName(s.type)},
          {"bytes", s.bytes}};
}

// Structure checks a parser can make without re-planning.
Status CheckStructure(const Plan& plan) {
  const ModelConfig& model = plan.request.model;
  if (plan.tp < 1 || plan.tp > kCanonicalSegments || plan.pp < 1 || plan.pp > model.num_layers) {
    return InvalidArgument("tp {} must be in [1, {}] and pp {} in [1, {}]", plan.tp,
                           kCanonicalSegments, plan.pp, model.num_layers);
  }
  if (plan.micro_batches < 1 || plan.micro_batches > plan.request.workload.batch_size) {
    return InvalidArgument("micro_batches {} must be between 1 and the batch size {}",
                           plan.micro_batches, plan.request.workload.batch_size);
  }
  if (static_cast<int>(plan.stages.size()) != plan.pp) {
    return InvalidArgument("{} stages listed for pp {}", plan.stages.size(), plan.pp);
  }
  if (static_cast<int>(plan.tp_slices.size()) != plan.tp) {
    return InvalidArgument("{} tp_slices listed for tp {}", plan.tp_slices.size(), plan.tp);
  }
  // The slices must be the canonical ones (sharding.h): they tile every
  // dimension without gap or overlap, and the row-parallel segments are the
  // subtrees of the canonical reduction (docs/determinism.md). Anything else
  // would make the engine compute on missing or doubled rows.
  LOCKSTEP_RETURN_IF_ERROR(CheckTensorParallel(model, plan.tp));
  for (int r = 0; r < plan.tp; ++r) {
    const TpSlice& got = plan.tp_slices[static_cast<size_t>(r)];
    const TpSlice want = MakeTpSlice(model, plan.tp, r);
    if (got == want) continue;
    const std::pair<const char*, std::pair<Range, Range>> fields[] = {
        {"q_heads", {got.q_heads, want.q_heads}}, {"kv_heads", {got.kv_heads, want.kv_heads}},
        {"ffn", {got.ffn, want.ffn}},             {"hidden", {got.hidden, want.hidden}},
        {"vocab", {got.vocab, want.vocab}},       {"segments", {got.segments, want.segments}}};
    for (const auto& [name, ranges] : fields) {
      if (ranges.first == ranges.second) continue;
      return InvalidArgument(
          "tp_slices[{}]: '{}' is [{}, {}) but tp {} of this model gives [{}, {}): the tp "
          "ranks' slices must tile every dimension without gap or overlap (re-plan with "
          "`lockstep plan`)",
          r, name, ranges.first.begin, ranges.first.end, plan.tp, ranges.second.begin,
          ranges.second.end);
    }
    return InvalidArgument(
        "tp_slices[{}] is not the slice tp {} gives tp rank {} of this model (tp, tp_rank or "
        "kv_replicated differ); re-plan with `lockstep plan`",
        r, plan.tp, r);
  }
  if (static_cast<int>(plan.ranks.size()) != plan.num_ranks()) {
    return InvalidArgument("{} ranks listed for tp {} x pp {}", plan.ranks.size(), plan.tp,
                           plan.pp);
  }
  int next_layer = 0;
  for (int s = 0; s < plan.pp; ++s) {
    const StagePlan& st = plan.stages[s];
    if (st.stage != s || st.layer_begin != next_layer || st.layer_end <= st.layer_begin ||
        st.embedding != (s == 0) || st.lm_head != (s == plan.pp - 1)) {
      return InvalidArgument(
          "stages[{}]: expected stage {} starting at layer {} with at least one layer, the "
          "embedding only on the first stage and the lm_head only on the last",
          s, s, next_layer);
    }
    next_layer = st.layer_end;
  }
  if (next_layer != model.num_layers) {
    return InvalidArgument("the stages cover {} layers but the model has {}", next_layer,
                           model.num_layers);
  }
  for (int r = 0; r < plan.num_ranks(); ++r) {
    const RankPlan& rp = plan.ranks[r];
    if (rp.rank != r || rp.stage != plan.StageOf(r) || rp.tp_rank != plan.TpRankOf(r) ||
        rp.node != plan.request.cluster.NodeOf(r)) {
      return InvalidArgument(
          "ranks[{}]: expected rank {} = stage {} * tp {} + tp_rank {} on node {}", r, r,
          plan.StageOf(r), plan.tp, plan.TpRankOf(r), plan.request.cluster.NodeOf(r));
    }
    int64_t weights = 0;
    for (const TensorShard& sh : rp.shards) {
      if (sh.shape.empty() || sh.shape.size() > 2 || sh.start.size() != sh.shape.size() ||
          sh.count.size() != sh.shape.size()) {
        return InvalidArgument(
            "ranks[{}]: shard '{}' must have 1 or 2 dimensions in shape, start "
            "and count",
            r, sh.path);
      }
      for (size_t d = 0; d < sh.shape.size(); ++d) {
        if (sh.start[d] < 0 || sh.count[d] < 0 || sh.start[d] + sh.count[d] > sh.shape[d]) {
          return InvalidArgument("ranks[{}]: shard '{}' dimension {} [{}, +{}) is outside [0, {})",
                                 r, sh.path, d, sh.start[d], sh.count[d], sh.shape[d]);
        }
      }
      const int64_t expected_bytes = sh.shape.size() > 1
                                         ? sh.count[0] * ElementBytes(sh.type, sh.count[1])
                                         : ElementBytes(sh.type, sh.elements());
      if (sh.bytes != expected_bytes) {
        return InvalidArgument("ranks[{}]: shard '{}' has {} bytes, expected {}", r, sh.path,
                               sh.bytes, expected_bytes);
      }
      weights += sh.bytes;
    }
    if (weights != rp.memory.weights) {
      return InvalidArgument("ranks[{}]: memory.weights {} differs from the sum of its shards {}",
                             r, rp.memory.weights, weights);
    }
  }
  return Status::Ok();
}

}  // namespace

std::string_view ObjectiveName(Objective objective) {
  return objective == Objective::kLatency ? "latency" : "throughput";
}

Result<Objective> ParseObjective(std::string_view name) {
  if (name == "latency") return Objective::kLatency;
  if (name == "throughput") return Objective::kThroughput;
  return InvalidArgument("unknown objective '{}' (known: latency, throughput)", name);
}

std::vector<int> Plan::TpGroup(int stage) const {
  std::vector<int> group;
  for (int r = 0; r < tp; ++r) group.push_back(WorldRank(stage, r));
  return group;
}

std::vector<int> Plan::PipelineGroup(int tp_rank) const {
  std::vector<int> group;
  for (int s = 0; s < pp; ++s) group.push_back(WorldRank(s, tp_rank));
  return group;
}

const TensorShard* Plan::FindShard(int rank, std::string_view path, TensorRole role) const {
  for (const TensorShard& s : ranks[rank].shards) {
    if (s.path == path && s.role == role) return &s;
  }
  return nullptr;
}

std::vector<TensorSpec> StageTensors(const ModelConfig& model, const std::vector<TensorSpec>& all,
                                     const StagePlan& stage) {
  std::vector<TensorSpec> out;
  for (const TensorSpec& t : all) {
    if (t.role == TensorRole::kEmbedding) {
      if (stage.embedding) out.push_back(t);
      if (stage.lm_head && model.tie_word_embeddings) continue;  // added below, as lm_head
    } else if (t.layer >= 0) {
      if (t.layer >= stage.layer_begin && t.layer < stage.layer_end) out.push_back(t);
    } else if (stage.lm_head) {
      out.push_back(t);  // /norm and /lm_head
    }
  }
  if (stage.lm_head && model.tie_word_embeddings) {
    out.push_back({std::string(kEmbeddingPath),
                   TensorRole::kLmHead,
                   -1,
                   {model.vocab_size, model.hidden_size}});
  }
  return out;
}

Status CheckPlanFor(const Plan& plan, const ModelConfig& model, int num_ranks,
                    std::string_view source) {
  const std::string fingerprint = ModelConfigFingerprint(model);
  if (fingerprint != plan.model_fingerprint) {
    return FailedPrecondition(
        "{}: the plan was made for model '{}' (fingerprint {}) but this model '{}' has "
        "fingerprint {}; re-plan with `lockstep plan` for this model",
        source, plan.request.model.name, plan.model_fingerprint, model.name, fingerprint);
  }
  if (num_ranks != plan.num_ranks()) {
    return FailedPrecondition(
        "{}: the plan needs {} ranks (tp {} x pp {}) but the job has {}; run with -np {} or "
        "re-plan for {} ranks",
        source, plan.num_ranks(), plan.tp, plan.pp, num_ranks, plan.num_ranks(), num_ranks);
  }
  return Status::Ok();
}

json PlanToJson(const Plan& plan) {
  const PlanRequest& q = plan.request;
  json inputs = {{"model", ModelConfigToHfJson(q.model)},
                 {"model_fingerprint", plan.model_fingerprint},
                 {"cluster", ClusterSpecToJson(q.cluster)},
                 {"workload", WorkloadToJson(q.workload)},
                 {"tp", q.tp},
                 {"pp", q.pp},
                 {"objective", ObjectiveName(q.objective)}};
  json stages = json::array();
  for (const StagePlan& s : plan.stages) {
    stages.push_back({{"stage", s.stage},
                      {"layer_begin", s.layer_begin},
                      {"layer_end", s.layer_end},
                      {"embedding", s.embedding},
                      {"lm_head", s.lm_head}});
  }
  json slices = json::array();
  for (const TpSlice& s : plan.tp_slices) {
    slices.push_back({{"tp_rank", s.tp_rank},
                      {"q_heads", RangeJson(s.q_heads)},
                      {"kv_heads", RangeJson(s.kv_heads)},
                      {"kv_replicated", s.kv_replicated},
                      {"ffn", RangeJson(s.ffn)},
                      {"hidden", RangeJson(s.hidden)},
                      {"vocab", RangeJson(s.vocab)},
                      {"segments", RangeJson(s.segments)}});
  }
  json ranks = json::array();
  for (const RankPlan& r : plan.ranks) {
    json shards = json::array();
    for (const TensorShard& s : r.shards) shards.push_back(ShardJson(s));
    ranks.push_back({{"rank", r.rank},
                     {"stage", r.stage},
                     {"tp_rank", r.tp_rank},
                     {"node", r.node},
                     {"memory",
                      {{"weights", r.memory.weights},
                       {"kv_cache", r.memory.kv_cache},
                       {"activations", r.memory.activations},
                       {"comm_buffers", r.memory.comm_buffers},
                       {"total", r.memory.total()}}},
                     {"shards", shards}});
  }
  const Prediction& p = plan.prediction;
  json stage_predictions = json::array();
  for (const StagePrediction& s : p.stages) {
    stage_predictions.push_back({{"stage", s.stage},
                                 {"prefill", PassJson(s.prefill)},
                                 {"decode", PassJson(s.decode)},
                                 {"prefill_handoff_s", s.prefill_handoff_s},
                                 {"decode_handoff_s", s.decode_handoff_s}});
  }
  json rank_shares = json::array();
  for (const RankShares& s : p.ranks) {
    rank_shares.push_back({{"compute_s", s.compute_s},
                           {"memory_s", s.memory_s},
                           {"communication_s", s.communication_s},
                           {"idle_s", s.idle_s}});
  }
  json prediction = {{"time_to_first_token_s", p.time_to_first_token_s},
                     {"decode_latency_per_token_s", p.decode_latency_per_token_s},
                     {"decode_tokens_per_s_per_user", p.decode_tokens_per_s_per_user},
                     {"throughput_tokens_per_s", p.throughput_tokens_per_s},
                     {"total_time_s", p.total_time_s},
                     {"decode_context", p.decode_context},
                     {"stages", stage_predictions},
                     {"ranks", rank_shares}};
  return {{"format", kFormat},
          {"version", kVersion},
          {"inputs", inputs},
          {"tp", plan.tp},
          {"pp", plan.pp},
          {"micro_batches", plan.micro_batches},
          {"num_ranks", plan.num_ranks()},
          {"canonical_segments", kCanonicalSegments},
          {"executable", plan.executable()},
          {"stages", stages},
          {"tp_slices", slices},
          {"ranks", ranks},
          {"prediction", prediction}};
}

Result<Plan> PlanFromJson(const json& j, std::string_view source) {
  Plan plan;
  JsonReader r(j, source);
  std::string format;
  int version = 0;
  r.String("format", &format);
  r.Int("version", &version);
  if (r.ok() && (format != kFormat || version != kVersion)) {
    return InvalidArgument("{}: not a lockstep plan of version {} (format '{}', version {})",
                           source, kVersion, format, version);
  }
  {
    JsonReader in = r.Object("inputs");
    const json* model = in.Raw("model");
    if (model != nullptr) {
      Result<ModelConfig> config =
          ModelConfigFromHfJson(*model, fmt::format("{}: inputs.model", source));
      if (config.ok()) {
        plan.request.model = *config;
      } else {
        in.Fail(config.status());
      }
    }
    in.String("model_fingerprint", &plan.model_fingerprint);
    const json* cluster = in.Raw("cluster");
    if (cluster != nullptr && in.ok()) {
      Result<ClusterSpec> spec =
          ClusterSpecFromJson(*cluster, fmt::format("{}: inputs.cluster", source));
      if (spec.ok()) {
        plan.request.cluster = *spec;
      } else {
        in.Fail(spec.status());
      }
    }
    const json* workload = in.Raw("workload");
    if (workload != nullptr && in.ok()) {
      Result<Workload> w = WorkloadFromJson(*workload, fmt::format("{}: inputs.workload", source));
      if (w.ok()) {
        plan.request.workload = *w;
      } else {
        in.Fail(w.status());
      }
    }
    in.Int("tp", &plan.request.tp);
    in.Int("pp", &plan.request.pp);
    std::string objective;
    in.String("objective", &objective);
    if (in.ok()) {
      Result<Objective> o = ParseObjective(objective);
      if (o.ok()) {
        plan.request.objective = *o;
      } else {
        in.Fail(o.status().WithContext(fmt::format("{}: inputs.objective", source)));
      }
    }
    r.Fail(in.Finish());
  }
  r.Int("tp", &plan.tp);
  r.Int("pp", &plan.pp);
  r.Int("micro_batches", &plan.micro_batches);
  int num_ranks = 0;
  int segments = 0;
  bool executable = false;
  r.Int("num_ranks", &num_ranks);
  r.Int("canonical_segments", &segments);
  r.Bool("executable", &executable);
  if (r.ok() && segments != kCanonicalSegments) {
    r.Fail("canonical_segments",
           fmt::format("is {}, this build uses {}", segments, kCanonicalSegments));
  }
  ForEach(r, "stages", [&](JsonReader& e, size_t) {
    StagePlan s;
    e.Int("stage", &s.stage);
    e.Int("layer_begin", &s.layer_begin);
    e.Int("layer_end", &s.layer_end);
    e.Bool("embedding", &s.embedding);
    e.Bool("lm_head", &s.lm_head);
    plan.stages.push_back(s);
  });
  ForEach(r, "tp_slices", [&](JsonReader& e, size_t) {
    TpSlice s;
    s.tp = plan.tp;
    e.Int("tp_rank", &s.tp_rank);
    ReadRange(e, "q_heads", &s.q_heads);
    ReadRange(e, "kv_heads", &s.kv_heads);
    e.Bool("kv_replicated", &s.kv_replicated);
    ReadRange(e, "ffn", &s.ffn);
    ReadRange(e, "hidden", &s.hidden);
    ReadRange(e, "vocab", &s.vocab);
    ReadRange(e, "segments", &s.segments);
    plan.tp_slices.push_back(s);
  });
  ForEach(r, "ranks", [&](JsonReader& e, size_t) {
    RankPlan rp;
    e.Int("rank", &rp.rank);
    e.Int("stage", &rp.stage);
    e.Int("tp_rank", &rp.tp_rank);
    e.Int("node", &rp.node);
    {
      JsonReader m = e.Object("memory");
      int64_t total = 0;
      m.Int("weights", &rp.memory.weights);
      m.Int("kv_cache", &rp.memory.kv_cache);
      m.Int("activations", &rp.memory.activations);
      m.Int("comm_buffers", &rp.memory.comm_buffers);
      m.Int("total", &total);
      if (m.ok() && total != rp.memory.total()) m.Fail("total", "is not the sum of the parts");
      e.Fail(m.Finish());
    }
    ForEach(e, "shards", [&](JsonReader& se, size_t) {
      TensorShard s;
      se.String("path", &s.path);
      std::string role;
      se.String("role", &role);
      if (se.ok()) {
        Result<TensorRole> parsed = ParseTensorRole(role);
        if (parsed.ok()) {
          s.role = *parsed;
        } else {
          se.Fail("role", parsed.status().message());
        }
      }
      se.Int("layer", &s.layer);
      se.IntArray("shape", &s.shape);
      se.IntArray("start", &s.start);
      se.IntArray("count", &s.count);
      ReadRange(se, "segments", &s.segments);
      se.Bool("replicated", &s.replicated);
      std::string type;
      se.String("type", &type);
      if (se.ok()) {
        Result<ElementType> t = ParseElementType(type);
        if (t.ok()) {
          s.type = *t;
        } else {
          se.Fail("type", t.status().message());
        }
      }
      se.Int("bytes", &s.bytes);
      rp.shards.push_back(std::move(s));
    });
    plan.ranks.push_back(std::move(rp));
  });
  {
    JsonReader p = r.Object("prediction");
    Prediction& pr = plan.prediction;
    p.Double("time_to_first_token_s", &pr.time_to_first_token_s);
    p.Double("decode_latency_per_token_s", &pr.decode_latency_per_token_s);
    p.Double("decode_tokens_per_s_per_user", &pr.decode_tokens_per_s_per_user);
    p.Double("throughput_tokens_per_s", &pr.throughput_tokens_per_s);
    p.Double("total_time_s", &pr.total_time_s);
    p.Int("decode_context", &pr.decode_context);
    ForEach(p, "stages", [&](JsonReader& e, size_t) {
      StagePrediction s;
      e.Int("stage", &s.stage);
      ReadPass(e, "prefill", &s.prefill);
      ReadPass(e, "decode", &s.decode);
      e.Double("prefill_handoff_s", &s.prefill_handoff_s);
      e.Double("decode_handoff_s", &s.decode_handoff_s);
      pr.stages.push_back(std::move(s));
    });
    ForEach(p, "ranks", [&](JsonReader& e, size_t) {
      RankShares s;
      e.Double("compute_s", &s.compute_s);
      e.Double("memory_s", &s.memory_s);
      e.Double("communication_s", &s.communication_s);
      e.Double("idle_s", &s.idle_s);
      pr.ranks.push_back(s);
    });
    r.Fail(p.Finish());
  }
  LOCKSTEP_RETURN_IF_ERROR(r.Finish());

  if (plan.model_fingerprint != ModelConfigFingerprint(plan.request.model)) {
    return InvalidArgument(
        "{}: inputs.model_fingerprint {} does not match inputs.model (fingerprint {}); the plan "
        "was edited: re-plan with `lockstep plan`",
        source, plan.model_fingerprint, ModelConfigFingerprint(plan.request.model));
  }
  if (Status model = plan.request.model.Validate(); !model.ok()) {
    return model.WithContext(fmt::format("{}: inputs.model", source));
  }
  Status structure = CheckStructure(plan);
  if (!structure.ok()) return structure.WithContext(source);
  if (num_ranks != plan.num_ranks() || executable != plan.executable()) {
    return InvalidArgument("{}: num_ranks / executable disagree with tp, pp and the weight type",
                           source);
  }
  return plan;
}

Result<Plan> LoadPlanFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("{}: cannot open plan", path);
  json j;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LOCKSTEP_RETURN_IF_ERROR(CheckJsonNesting(text, path));
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // syntax, a number beyond a double
    return InvalidArgument("{}: not valid JSON: {}", path, e.what());
  }
  return PlanFromJson(j, path);
}

Status SavePlanFile(const Plan& plan, const std::string& path) {
  std::ofstream out(path);
  if (!out) return IoError("{}: cannot open for writing", path);
  out << PlanToJson(plan).dump(1) << "\n";
  out.close();
  if (!out) return IoError("{}: write failed", path);
  return Status::Ok();
}

}  // namespace lockstep::partitioner
