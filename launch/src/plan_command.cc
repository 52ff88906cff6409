// `lockstep plan`: split a model over chips and predict how fast it runs.
//
//   lockstep plan --preset llama-2-70b --chip groq-lpu --chips 576
//       --weight-type int8 --activation-type f16 [--tp 8 --pp 72] [--output plan.json]
//
// Model: --model FILE.h5, --config config.json (Hugging Face) or --preset NAME. Cluster:
// --cluster spec.json, or --chip PRESET --chips N [--chips-per-node K].
// Without --tp/--pp the planner chooses them for --objective.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>

#include "command.h"
#include "flag_bounds.h"
#include "host_spec.h"
#include "lockstep/base/log.h"
#include "lockstep/model/model_file.h"
#include "lockstep/partitioner/chip_presets.h"
#include "lockstep/partitioner/plan_report.h"
#include "lockstep/partitioner/planner.h"

namespace lockstep::launch {
namespace {

using namespace partitioner;

struct PlanOptions {
  std::string model_file;
  std::string config_file;
  std::string preset;
  std::string cluster_file;
  std::string chip;
  int chips = 0;
  int chips_per_node = 0;
  int threads_per_chip = 0;  // 0: the cluster file's, or 1 (`lockstep run`'s) for --chip host
  Workload workload;
  std::string weight_type;      // default: the model file's dtype, else the chip's types
  std::string activation_type;  // default: the chip's (ChipSpec::DefaultActivationType)
  std::string compute = "float";  // the matmuls' arithmetic (Workload::compute)
  int tp = 0;
  int pp = 0;
  std::string objective = "latency";
  std::string output;
  bool show_ranks = false;
  bool quiet = false;
};

// Published decode speeds that a plan can be put next to. The figure is the
// vendor's, measured with its own software; see docs/partitioner.md.
struct PublishedFigure {
  std::string_view model_preset;
  std::string_view chip;
  int chips;
  double tokens_per_s_per_user;
  std::string_view source;
};

constexpr PublishedFigure kPublished[] = {
    {"llama-2-70b", "groq-lpu", 576, 300.0,
     "Groq LPU Inference Engine, Llama-2-70B (4096-token context) on 576 LPUs, as published by "
     "Groq in early 2024 (reported e.g. by TechPowerUp, 2024-02)"},
};

const PublishedFigure* FindPublished(const Plan& plan) {
  for (const PublishedFigure& f : kPublished) {
    Result<ModelConfig> preset = ModelPreset(f.model_preset);
    if (preset.ok() && ModelConfigFingerprint(*preset) == plan.model_fingerprint &&
        plan.request.cluster.chip.name == f.chip && plan.request.cluster.num_chips == f.chips) {
      return &f;
    }
  }
  return nullptr;
}

std::string FormatFlops(double rate) {
  if (rate >= 1e12) return fmt::format("{:.0f} TFLOP/s", rate / 1e12);
  return fmt::format("{:.0f} GFLOP/s", rate / 1e9);
}

std::string Assumptions(const Plan& plan) {
  const PlanRequest& q = plan.request;
  const ClusterSpec& c = q.cluster;
  const Workload& w = q.workload;
  int64_t most = 0;
  int64_t weights = 0;
  for (const RankPlan& r : plan.ranks) {
    most = std::max(most, r.memory.total());
    for (const TensorShard& s : r.shards) weights += s.replicated && r.tp_rank > 0 ? 0 : s.bytes;
  }
  std::string out = "assumptions of this prediction\n";
  out += fmt::format(
      "  - weights stored as {} ({} in all), KV cache, activations and messages as {}; everything "
      "lives in the chips' own memory ({} per chip, at most {:.0f}% used), nothing is streamed "
      "from elsewhere\n",
      ElementTypeName(w.weight_type), FormatBytes(static_cast<double>(weights)),
      ElementTypeName(w.activation_type), FormatBytes(static_cast<double>(c.ChipMemoryBytes())),
      100.0 * static_cast<double>(most) / static_cast<double>(c.ChipMemoryBytes()));
  out += fmt::format(
      "  - every operator runs at the chip's peak: max(flops / {}, bytes / {}/s) plus {} "
      "per launch; no overlap of compute with tp collectives\n",
      FormatFlops(c.ChipPeakFlops(MatmulComputeType(w.weight_type, w.activation_type))),
      FormatBytes(c.ChipMemoryBandwidth()), FormatSeconds(c.chip.op_overhead_s));
  out += fmt::format(
      "  - tp allreduce by recursive doubling (reduce-scatter + allgather from {}), alpha-beta on "
      "{}/s links with {} latency inside a node and {} between nodes; pipeline hand-offs are "
      "non-blocking\n",
      FormatBytes(static_cast<double>(c.allreduce_large_min_bytes)),
      FormatBytes(c.intra_node_link.PeerBandwidth()), FormatSeconds(c.intra_node_link.latency_s),
      FormatSeconds(c.inter_node_link.latency_s));
  out += fmt::format(
      "  - decode timed at context {} (prompt {} + half of {} generated), batch {} in {} "
      "micro-batch(es); plain greedy decoding, no speculative decoding\n",
      plan.prediction.decode_context, w.prompt_length, w.generated_length, w.batch_size,
      plan.micro_batches);
  return out;
}

std::string Comparison(const Plan& plan, const PublishedFigure& f) {
  std::string out = "comparison with a published figure\n";
  out += fmt::format(
      "  predicted   {:8.1f} tokens/s per user (this plan: tp {} x pp {}, {} weights)\n",
      plan.prediction.decode_tokens_per_s_per_user, plan.tp, plan.pp,
      ElementTypeName(plan.request.workload.weight_type));
  out += fmt::format("  published   {:8.1f} tokens/s per user ({})\n", f.tokens_per_s_per_user,
                     f.source);
  out += fmt::format("  ratio       {:8.2f} (predicted / published)\n",
                     plan.prediction.decode_tokens_per_s_per_user / f.tokens_per_s_per_user);
  for (ElementType t : {ElementType::kF16, ElementType::kInt8}) {
    Workload w = plan.request.workload;
    w.weight_type = t;
    Result<ChipCount> fewest = FewestChipsThatFit(plan.request.model, plan.request.cluster, w);
    if (fewest.ok()) {
      out += fmt::format("  with {} weights the model needs at least {} chips (tp {} x pp {})\n",
                         ElementTypeName(t), fewest->chips, fewest->tp, fewest->pp);
    }
  }
  out +=
      "  the published figure is Groq's own software (compiler, runtime, numerics) measured as a\n"
      "  service; this is a first-principles model of lockstep's schedule on Groq-like chips.\n";
  return out;
}

// The model's config and, for a model file, the dtype its weights are stored in.
struct LoadedModel {
  ModelConfig config;
  std::optional<ElementType> file_weight_type;
};

Result<LoadedModel> LoadModel(const PlanOptions& o) {
  const int given = !o.model_file.empty() + !o.config_file.empty() + !o.preset.empty();
  if (given != 1) {
    return InvalidArgument(
        "give the model with exactly one of --model FILE.h5, --config FILE or --preset NAME");
  }
  LoadedModel model;
  if (!o.model_file.empty()) {
    LOCKSTEP_ASSIGN_OR_RETURN(runtime::ModelFile file, runtime::ModelFile::Open(o.model_file));
    model.config = file.config();
    // Model files written before configs were named after their file.
    if (model.config.name.empty()) model.config.name = ModelNameFromPath(o.model_file);
    model.file_weight_type = FromDType(file.weight_dtype());
  } else if (!o.config_file.empty()) {
    LOCKSTEP_ASSIGN_OR_RETURN(model.config, LoadHfConfigFile(o.config_file));
  } else {
    LOCKSTEP_ASSIGN_OR_RETURN(model.config, ModelPreset(o.preset));
  }
  return model;
}

// The weight types to try, in order: --weight-type (checked against the
// model file's dtype: a plan for other weights than the file's would size
// memory wrongly and the runtime refuses it), else the file's dtype, else the
// chip's weight types (the first that fits is taken).
Result<std::vector<ElementType>> WeightTypes(const PlanOptions& o, const LoadedModel& model,
                                             const ClusterSpec& cluster) {
  if (o.weight_type.empty()) {
    if (model.file_weight_type) return std::vector<ElementType>{*model.file_weight_type};
    return cluster.chip.DefaultWeightTypes();
  }
  Result<ElementType> t = ParseElementType(o.weight_type);
  if (!t.ok()) return t.status().WithContext("--weight-type");
  if (model.file_weight_type && *t != *model.file_weight_type) {
    return InvalidArgument(
        "--weight-type {} differs from the {} weights stored in {}; drop the flag",
        ElementTypeName(*t), ElementTypeName(*model.file_weight_type), o.model_file);
  }
  return std::vector<ElementType>{*t};
}

Result<ClusterSpec> LoadCluster(const PlanOptions& o) {
  if (!o.cluster_file.empty() == !o.chip.empty()) {
    return InvalidArgument("give the machine with exactly one of --cluster FILE or --chip PRESET");
  }
  ClusterSpec spec;
  if (!o.cluster_file.empty()) {
    LOCKSTEP_ASSIGN_OR_RETURN(spec, LoadClusterSpecFile(o.cluster_file));
    if (o.chips > 0) spec.num_chips = o.chips;
  } else {
    if (o.chips < 1) return InvalidArgument("--chip {} needs --chips N", o.chip);
    if (o.chip == "host") {
      bool calibrated = false;
      LOCKSTEP_ASSIGN_OR_RETURN(spec, HostClusterSpec(o.chips, &calibrated));
      if (!calibrated) WarnUncalibratedOnce("plan");
    } else {
      LOCKSTEP_ASSIGN_OR_RETURN(spec, ChipPreset(o.chip, o.chips));
    }
  }
  if (o.chips_per_node > 0) spec.chips_per_node = o.chips_per_node;
  if (o.threads_per_chip != 0) {
    spec.threads_per_chip = o.threads_per_chip;  // a negative count fails Validate() below
  } else if (o.chip == "host") {
    spec.threads_per_chip = 1;  // `lockstep run --threads` default
  }
  Status valid = spec.Validate();
  if (!valid.ok()) return valid.WithContext("cluster");
  return spec;
}

// Flags that are wrong whatever the files say (exit 2).
Status CheckFlags(const PlanOptions& o) {
  const int models = !o.model_file.empty() + !o.config_file.empty() + !o.preset.empty();
  if (models != 1) {
    return InvalidArgument(
        "give the model with exactly one of --model FILE.h5, --config FILE or --preset NAME");
  }
  if (!o.preset.empty())
    LOCKSTEP_RETURN_IF_ERROR(ModelPreset(o.preset).status().WithContext("--preset"));
  if (!o.cluster_file.empty() == !o.chip.empty()) {
    return InvalidArgument("give the machine with exactly one of --cluster FILE or --chip PRESET");
  }
  if (!o.chip.empty()) {
    LOCKSTEP_RETURN_IF_ERROR(ChipPreset(o.chip, 1).status().WithContext("--chip"));
    if (o.chips < 1) return InvalidArgument("--chip {} needs --chips N", o.chip);
  }
  if (o.threads_per_chip < 0) {
    return InvalidArgument("--threads-per-chip must be zero (unknown) or positive, got {}",
                           o.threads_per_chip);
  }
  return Status::Ok();
}

int Run(PlanOptions o) {
  if (Status flags = CheckFlags(o); !flags.ok()) return ReportUsage(flags);
  Result<LoadedModel> model = LoadModel(o);
  if (!model.ok()) return ReportError(model.status());
  Result<ClusterSpec> cluster = LoadCluster(o);
  if (!cluster.ok()) return ReportError(cluster.status());
  PlanRequest request;
  request.model = model->config;
  request.cluster = *cluster;
  request.workload = o.workload;
  Result<std::vector<ElementType>> weight_types = WeightTypes(o, *model, *cluster);
  if (!weight_types.ok()) return ReportUsage(weight_types.status());
  if (weight_types->empty()) {
    return ReportError(InvalidArgument(
        "chip '{}' has no rate for any weight type; add chip.peak_flops to the cluster spec",
        cluster->chip.name));
  }
  request.workload.activation_type = cluster->chip.DefaultActivationType();
  if (!o.activation_type.empty()) {
    Result<ElementType> at = ParseElementType(o.activation_type);
    if (!at.ok()) return ReportUsage(at.status().WithContext("--activation-type"));
    request.workload.activation_type = *at;
  }
  Result<MatmulCompute> compute = ParseMatmulCompute(o.compute);
  if (!compute.ok()) return ReportUsage(compute.status().WithContext("--compute"));
  request.workload.compute = *compute;
  request.tp = o.tp;
  request.pp = o.pp;
  Result<Objective> objective = ParseObjective(o.objective);
  if (!objective.ok()) return ReportUsage(objective.status().WithContext("--objective"));
  request.objective = *objective;

  // The first weight type that plans; the others' failures explain the choice.
  Result<Plan> plan = Internal("no weight type tried");
  std::string type_note;
  for (size_t i = 0; i < weight_types->size(); ++i) {
    request.workload.weight_type = (*weight_types)[i];
    plan = MakePlan(request);
    if (plan.ok()) break;
    if (i + 1 < weight_types->size()) {
      type_note += fmt::format("  - {} weights (the chip's {} choice): {}\n",
                               ElementTypeName((*weight_types)[i]), i == 0 ? "first" : "next",
                               plan.status().message());
    }
  }
  if (!plan.ok() && weight_types->size() > 1) {
    std::string others;
    for (size_t i = 0; i + 1 < weight_types->size(); ++i) {
      others +=
          fmt::format("{}{}", others.empty() ? "" : ", ", ElementTypeName((*weight_types)[i]));
    }
    plan = Result<Plan>(
        InvalidArgument("{}; the chip's preferred weight types before it ({}) do not plan either",
                        plan.status().message(), others));
  }
  if (!plan.ok()) {
    // A split the flags chose that cannot be made, where the automatic one
    // can, is a bad command line (tp not a power of two, tp x pp not the chip
    // count, more stages than layers).
    if (o.tp != 0 || o.pp != 0) {
      PlanRequest automatic = request;
      automatic.tp = 0;
      automatic.pp = 0;
      if (MakePlan(automatic).ok()) return ReportUsage(plan.status());
    }
    return ReportError(plan.status());
  }
  if (!o.output.empty()) {
    Status saved = SavePlanFile(*plan, o.output);
    if (!saved.ok()) return ReportError(saved);
  }
  if (!o.quiet) {
    ReportOptions report;
    report.all_ranks = o.show_ranks;
    std::string text = FormatPlanReport(*plan, report);
    if (!type_note.empty()) {
      text += fmt::format(
          "\nweights {}: no --weight-type was given and the chip's preferred types do not fit\n{}",
          ElementTypeName(plan->request.workload.weight_type), type_note);
    }
    text += "\n" + Assumptions(*plan);
    if (const PublishedFigure* f = FindPublished(*plan)) text += "\n" + Comparison(*plan, *f);
    if (!o.output.empty()) text += fmt::format("\nplan written to {}\n", o.output);
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  return kExitOk;
}

}  // namespace

Command AddPlanCommand(CLI::App& app) {
  auto options = std::make_shared<PlanOptions>();
  PlanOptions& o = *options;
  CLI::App* cmd = app.add_subcommand(
      "plan", "Split a model over tp x pp chips under their memory and predict its speed");
  cmd->add_option("--model", o.model_file, "Model file (HDF5, lockstep format v1)");
  cmd->add_option("--config", o.config_file, "Model config.json (Hugging Face format)");
  cmd->add_option(
      "--preset", o.preset, "Model preset: " + [] {
        std::string names;
        for (const std::string& n : ModelPresetNames()) names += (names.empty() ? "" : ", ") + n;
        return names;
      }());
  cmd->add_option("--cluster", o.cluster_file, "Cluster spec JSON (docs/partitioner.md)");
  cmd->add_option("--chip", o.chip, "Chip preset: host, groq-lpu, h100-nvlink");
  cmd->add_option("--chips", o.chips, "Number of chips (ranks)")
      ->check(WholeNumber(1, partitioner::kMaxClusterChips));
  cmd->add_option("--chips-per-node", o.chips_per_node, "Chips per node (default: the preset's)")
      ->check(WholeNumber(0, partitioner::kMaxClusterChips));
  cmd->add_option("--threads-per-chip", o.threads_per_chip,
                  "Compute threads per chip, as `lockstep run --threads` (ranks sharing a host; "
                  "default 1 with --chip host)")
      ->check(WholeNumber(0, kMaxSplit));
  cmd->add_option("--batch", o.workload.batch_size, "Sequences decoded together")
      ->capture_default_str();
  cmd->add_option("--prompt-length", o.workload.prompt_length, "Prompt tokens per sequence")
      ->capture_default_str();
  cmd->add_option("--generate", o.workload.generated_length, "Tokens generated per sequence")
      ->capture_default_str();
  cmd->add_option("--weight-type", o.weight_type,
                  "Weights: f32, f16, bf16, q8_0, q4_0 (int8: cost study only); default: the "
                  "model file's, else the first of the chip's weight types that fits");
  cmd->add_option("--activation-type", o.activation_type,
                  "Activations, KV cache and messages: f32, f16, bf16; default: the chip's "
                  "(host f32, groq-lpu f16, h100-nvlink bf16)");
  cmd->add_option("--compute", o.compute,
                  "Matmul arithmetic: float or bf16 (bf16 weights only; `lockstep run "
                  "--compute`)")
      ->capture_default_str();
  cmd->add_option("--micro-batches", o.workload.micro_batches,
                  "Pipeline micro-batches (0: chosen by the planner)")
      ->capture_default_str();
  cmd->add_option("--prefill-chunk", o.workload.prefill_chunk,
                  "Prefill in chunks of this many prompt tokens (0: the whole prompt at once)")
      ->capture_default_str();
  cmd->add_option("--tp", o.tp, "Tensor-parallel size (with --pp; default: automatic)")
      ->check(WholeNumber(0, kMaxSplit));
  cmd->add_option("--pp", o.pp, "Pipeline stages (with --tp; default: automatic)")
      ->check(WholeNumber(0, kMaxSplit));
  cmd->add_option("--objective", o.objective, "latency (decode time per token) or throughput")
      ->capture_default_str();
  cmd->add_option("--output", o.output, "Write the plan JSON here");
  cmd->add_flag("--show-ranks", o.show_ranks, "List every rank, however many");
  cmd->add_flag("--quiet", o.quiet, "Print nothing (with --output)");
  return {cmd, [options] { return Run(*options); }};
}

}  // namespace lockstep::launch
