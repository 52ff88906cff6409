// `lockstep convert`: a Hugging Face, GGUF or llama2.c checkpoint into model
// format v1 (runtime/convert.h, docs/converting.md).
#include <memory>
#include <string>

#include "command.h"
#include "lockstep/base/log.h"
#include "lockstep/convert/convert.h"

namespace lockstep::launch {
namespace {

struct ConvertArgs {
  std::string from;
  std::string input;
  std::string output;
  std::string dtype;
  std::string tokenizer;
  bool no_progress = false;
};

int RunConvert(const ConvertArgs& args) {
  runtime::ConvertOptions options;
  Result<runtime::CheckpointFormat> format = runtime::ParseCheckpointFormat(args.from);
  if (!format.ok()) return ReportUsage(format.status().WithContext("--from"));
  options.format = *format;
  options.input = args.input;
  options.output = args.output;
  if (!args.dtype.empty()) {
    Result<DType> dtype = ParseDType(args.dtype);
    if (!dtype.ok()) return ReportUsage(dtype.status().WithContext("--dtype"));
    options.dtype = *dtype;
  }
  options.tokenizer = args.tokenizer;
  options.progress = !args.no_progress;
  Result<runtime::ConvertSummary> summary = runtime::ConvertCheckpoint(options);
  if (!summary.ok()) return ReportError(summary.status());
  LOCKSTEP_LOG_INFO("convert",
                    "{}: {} tensors, {:.1f} MB of {} weights in {:.1f} s; peak memory {:.1f} MiB",
                    args.output, summary->num_tensors,
                    static_cast<double>(summary->output_bytes) / 1e6, DTypeName(summary->dtype),
                    summary->seconds, static_cast<double>(summary->peak_rss_bytes) / (1 << 20));
  return kExitOk;
}

}  // namespace

Command AddConvertCommand(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* sub = app.add_subcommand(
      "convert",
      "Convert a Hugging Face, GGUF or llama2.c checkpoint into a model file (docs/converting.md)");
  sub->add_option("--from", args->from,
                  "Checkpoint format: hf (a folder with config.json and safetensors), gguf, or "
                  "llama2c (a .bin export)")
      ->required()
      ->check(CLI::IsMember({"hf", "gguf", "llama2c"}));
  sub->add_option("input", args->input, "The checkpoint folder (hf) or file (gguf, llama2c)")
      ->required();
  sub->add_option("--output", args->output, "The model file to write (HDF5)")->required();
  sub->add_option("--dtype", args->dtype,
                  "Weight dtype of the matrices (norms are always f32). Default: the source's "
                  "where exact (GGUF Q8_0 and Q4_0 stay as they are, Q8_0 with Q4_0 gives q8_0; "
                  "other mixed sources: f32). q8_0 / q4_0 from a float source: ggml's reference "
                  "quantizer")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0", "q4_0"}));
  sub->add_option("--tokenizer", args->tokenizer,
                  "Tokenizer to store in the model: llama2.c's tokenizer.bin (llama2c), or a "
                  "tokenizer.json / tokenizer.model replacing the checkpoint's own");
  sub->add_flag("--no-progress", args->no_progress, "No progress lines on stderr");
  return Command{sub, [args] { return RunConvert(*args); }};
}

}  // namespace lockstep::launch
