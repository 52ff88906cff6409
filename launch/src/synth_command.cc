// `lockstep synth`: writes a model file with seeded random weights
// (runtime/synth.h) for a Hugging Face style config.json or a preset.
#include <cstdint>
#include <memory>
#include <string>

#include "command.h"
#include "lockstep/partitioner/model_config.h"
#include "lockstep/runtime/synth.h"

namespace lockstep::launch {
namespace {

struct SynthArgs {
  std::string config_path;
  std::string preset;
  std::string dtype = "f32";
  uint64_t seed = 0;
  std::string output;
};

int RunSynth(const SynthArgs& args) {
  Result<partitioner::ModelConfig> config = args.config_path.empty()
                                                ? partitioner::ModelPreset(args.preset)
                                                : partitioner::LoadHfConfigFile(args.config_path);
  if (!config.ok()) return ReportError(config.status());
  Result<DType> dtype = ParseDType(args.dtype);
  if (!dtype.ok()) return ReportError(dtype.status());
  Status status = runtime::SynthesizeModel(*config, *dtype, args.seed, args.output);
  if (!status.ok()) return ReportError(status);
  return kExitOk;
}

}  // namespace

Command AddSynthCommand(CLI::App& app) {
  auto args = std::make_shared<SynthArgs>();
  CLI::App* sub = app.add_subcommand(
      "synth", "Write a model file with seeded random weights (for tests and benchmarks)");
  CLI::Option_group* source = sub->add_option_group("model", "Which model to synthesise");
  source->add_option("--config", args->config_path,
                     "Hugging Face style config.json (hidden_size, num_hidden_layers, ...)");
  std::string presets;
  for (const std::string& name : partitioner::ModelPresetNames()) {
    presets += (presets.empty() ? "" : ", ") + name;
  }
  source->add_option("--preset", args->preset, "A named preset: " + presets);
  source->require_option(1);
  sub->add_option("--dtype", args->dtype, "Weight dtype of the matrices (norms are always f32)")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}))
      ->capture_default_str();
  sub->add_option("--seed", args->seed, "Seed of the counter-based generator")
      ->capture_default_str();
  sub->add_option("--output", args->output, "The model file to write (HDF5)")->required();
  return Command{sub, [args] { return RunSynth(*args); }};
}

}  // namespace lockstep::launch
