// `lockstep quantize`: a model file's weight matrices into q8_0 or q4_0
// (runtime/convert/quantize.h, docs/converting.md).
#include <memory>
#include <string>

#include "command.h"
#include "lockstep/base/log.h"
#include "lockstep/convert/quantize.h"

namespace lockstep::launch {
namespace {

struct QuantizeArgs {
  std::string model;
  std::string type;
  std::string output;
  bool no_progress = false;
};

int RunQuantize(const QuantizeArgs& args) {
  runtime::QuantizeOptions options;
  options.input = args.model;
  options.output = args.output;
  Result<DType> type = ParseDType(args.type);
  if (!type.ok()) return ReportError(type.status());
  options.type = *type;
  options.progress = !args.no_progress;
  Result<runtime::QuantizeSummary> summary = runtime::QuantizeModel(options);
  if (!summary.ok()) return ReportError(summary.status());
  LOCKSTEP_LOG_INFO("quantize",
                    "{}: {} tensors, {} -> {}: {:.1f} MB -> {:.1f} MB in {:.1f} s; peak memory "
                    "{:.1f} MiB",
                    args.output, summary->num_tensors, DTypeName(summary->input_dtype),
                    DTypeName(options.type), static_cast<double>(summary->input_bytes) / 1e6,
                    static_cast<double>(summary->output_bytes) / 1e6, summary->seconds,
                    static_cast<double>(summary->peak_rss_bytes) / (1 << 20));
  return kExitOk;
}

}  // namespace

Command AddQuantizeCommand(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* sub = app.add_subcommand(
      "quantize",
      "Quantize a model file's weight matrices to q8_0 or q4_0, streaming (docs/converting.md)");
  sub->add_option("--model", args->model, "The model file to quantize (HDF5)")->required();
  sub->add_option("--type", args->type,
                  "q8_0 (int8 blocks, 1.0625 bytes per weight) or q4_0 (4-bit blocks, 0.5625 "
                  "bytes per weight); GGUF Q8_0 / Q4_0 blocks, ggml's reference quantizer")
      ->required()
      ->check(CLI::IsMember({"q8_0", "q4_0"}));
  sub->add_option("--output", args->output, "The model file to write (HDF5)")->required();
  sub->add_flag("--no-progress", args->no_progress, "No progress lines on stderr");
  return Command{sub, [args] { return RunQuantize(*args); }};
}

}  // namespace lockstep::launch
