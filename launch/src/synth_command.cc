// `lockstep synth`: writes a model file with seeded random weights
// (runtime/synth.h) for a Hugging Face style config.json or a preset,
// optionally carrying a real tokenizer (--tokenizer).
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>

#include "command.h"
#include "lockstep/convert/tokenizer_file.h"
#include "lockstep/model/synth.h"
#include "lockstep/partitioner/model_config.h"
#include "lockstep/tokenizer/chat_template.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::launch {
namespace {

struct SynthArgs {
  std::string config_path;
  std::string preset;
  std::string dtype = "f32";
  uint64_t seed = 0;
  std::string output;
  std::string tokenizer;
  std::string chat_template;  // a Jinja file: the model's chat template
};

int RunSynth(const SynthArgs& args) {
  if (args.config_path.empty() == args.preset.empty()) {
    return ReportUsage(InvalidArgument(
        "give the model with exactly one of --config FILE (a Hugging Face config.json) or "
        "--preset NAME"));
  }
  Result<partitioner::ModelConfig> config = args.config_path.empty()
                                                ? partitioner::ModelPreset(args.preset)
                                                : partitioner::LoadHfConfigFile(args.config_path);
  if (!config.ok()) {
    // An unknown preset name is a bad flag; a bad config file is bad input.
    return args.config_path.empty() ? ReportUsage(config.status().WithContext("--preset"))
                                    : ReportError(config.status());
  }
  Result<DType> dtype = ParseDType(args.dtype);
  if (!dtype.ok()) return ReportUsage(dtype.status().WithContext("--dtype"));
  std::optional<runtime::TokenizerData> tokenizer;
  if (!args.tokenizer.empty()) {
    Result<runtime::TokenizerData> data = runtime::ReadTokenizerData(args.tokenizer);
    if (!data.ok()) return ReportError(data.status().WithContext("--tokenizer"));
    tokenizer = std::move(data).value();
    // The model stops on the tokenizer's EOS and starts with its BOS. (Ids
    // outside the vocabulary are left for the writer's size check to report.)
    auto fits = [&](int32_t id) { return id >= 0 && id < config->vocab_size; };
    if (fits(tokenizer->bos_token_id)) config->bos_token_id = tokenizer->bos_token_id;
    if (fits(tokenizer->eos_token_id)) config->eos_token_id = tokenizer->eos_token_id;
  }
  if (!args.chat_template.empty()) {
    if (!tokenizer) {
      ReportError(InvalidArgument("--chat-template needs --tokenizer"));
      return kExitUsage;
    }
    std::ifstream in(args.chat_template, std::ios::binary);
    if (!in) return ReportError(IoError("{}: cannot open (--chat-template)", args.chat_template));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Result<runtime::ChatTemplate> parsed = runtime::ChatTemplate::Parse(text);
    if (!parsed.ok()) return ReportError(parsed.status().WithContext(args.chat_template));
    tokenizer->chat_template = std::move(text);
  }
  Status status = runtime::SynthesizeModel(*config, *dtype, args.seed, args.output,
                                           tokenizer ? &*tokenizer : nullptr);
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
  sub->add_option("--dtype", args->dtype,
                  "Weight dtype of the matrices (norms are always f32); q8_0 / q4_0 quantize the "
                  "same random values with ggml's reference quantizer")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0", "q4_0"}))
      ->capture_default_str();
  sub->add_option("--seed", args->seed, "Seed of the counter-based generator")
      ->capture_default_str();
  sub->add_option("--output", args->output, "The model file to write (HDF5)")->required();
  sub->add_option("--tokenizer", args->tokenizer,
                  "Embed this tokenizer (tokenizer.json, tokenizer.model, a .gguf or a model .h5); "
                  "its vocabulary must fit the model's vocab_size");
  sub->add_option("--chat-template", args->chat_template,
                  "With --tokenizer: store this Jinja chat template (replacing the one of the "
                  "tokenizer's tokenizer_config.json or GGUF file)");
  return Command{sub, [args] { return RunSynth(*args); }};
}

}  // namespace lockstep::launch
