// `lockstep inspect FILE.h5`: the config and tensor inventory of a model file,
// read from its metadata only (no tensor data is read).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"
#include "lockstep/base/log.h"
#include "lockstep/model/model_file.h"

namespace lockstep::launch {
namespace {

std::string Dims(const std::vector<int64_t>& dims) {
  if (dims.empty()) return "contiguous";
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

std::string Bytes(double bytes) {
  if (bytes >= 1e9) return fmt::format("{:.2f} GB", bytes / 1e9);
  if (bytes >= 1e6) return fmt::format("{:.2f} MB", bytes / 1e6);
  if (bytes >= 1e3) return fmt::format("{:.2f} kB", bytes / 1e3);
  return fmt::format("{} B", bytes);
}

int RunInspect(const std::string& path) {
  Result<runtime::ModelFile> file = runtime::ModelFile::Open(path);
  if (!file.ok()) return ReportError(file.status());
  const partitioner::ModelConfig& c = file->config();
  struct stat st {};
  stat(path.c_str(), &st);

  std::string out;
  auto line = [&out](std::string text) {
    out += text;
    out += '\n';
  };
  line(fmt::format("model {}: lockstep-model v{}, {} ({} bytes)", path, file->format_version(),
                   Bytes(static_cast<double>(st.st_size)), st.st_size));
  line("config:");
  auto field = [&line](std::string_view name, auto value) {
    line(fmt::format("  {:<26}{}", name, value));
  };
  field("name", c.name.empty() ? "-" : c.name);
  field("architecture", c.architecture);
  field("vocab_size", c.vocab_size);
  field("hidden_size", c.hidden_size);
  field("intermediate_size", c.intermediate_size);
  field("num_hidden_layers", c.num_layers);
  field("num_attention_heads", c.num_heads);
  field("num_key_value_heads", c.num_kv_heads);
  field("head_dim", c.head_dim);
  field("rms_norm_eps", fmt::format("{:g}", c.rms_norm_eps));
  field("rope_theta", fmt::format("{:g}", c.rope_theta));
  field("max_position_embeddings", c.max_position_embeddings);
  field("tie_word_embeddings", c.tie_word_embeddings ? 1 : 0);
  field("bos_token_id", c.bos_token_id);
  field("eos_token_id", c.eos_token_id);
  // Version 2 (docs/model-format.md): shown when the model uses them.
  if (c.qkv_bias) field("qkv_bias", 1);
  if (c.sliding_window > 0) field("sliding_window", c.sliding_window);
  if (c.rope_scaling.active()) {
    field("rope_scaling", partitioner::RopeScalingToHfJson(c.rope_scaling).dump());
    field("context_length", c.ContextLength());
  }
  field("weight_dtype", DTypeName(file->weight_dtype()));
  field("rope_layout", "half");
  field("fingerprint", partitioner::ModelConfigFingerprint(c));
  const runtime::ModelIntegrity& integrity = file->integrity();
  if (integrity.complete()) {
    field("checksums", fmt::format("every chunk (Fletcher32), every tensor (sha256); manifest_sha256 {}",
                                   integrity.manifest_sha256));
  } else {
    field("checksums", fmt::format("{} of {} tensors{}", integrity.tensors_with_checksums,
                                   integrity.tensors,
                                   integrity.manifest_sha256.empty() ? ", no manifest" : ""));
    LOCKSTEP_LOG_WARN("inspect", "{}", integrity.Warning(path));
  }
  if (file->has_tokenizer()) {
    Result<runtime::TokenizerData> t = file->ReadTokenizer();
    if (!t.ok()) return ReportError(t.status());
    field("tokenizer",
          fmt::format("{} ({} bytes, bos {}, eos {}, add_bos {}) from {}",
                      runtime::TokenizerKindName(t->kind), t->data.size(), t->bos_token_id,
                      t->eos_token_id, t->add_bos_token ? 1 : 0, t->source));
  } else {
    field("tokenizer", "- (prompts as token ids only)");
  }

  size_t path_width = 4;
  for (const runtime::TensorInfo& t : file->tensors())
    path_width = std::max(path_width, t.path.size());
  line(fmt::format("tensors ({}):", file->tensors().size()));
  line(fmt::format("  {:<{}}  {:<5}  {:<14}  {:>12}  {}", "path", path_width, "dtype", "shape",
                   "bytes", "chunk"));
  int64_t total_elements = 0, total_bytes = 0;
  for (const runtime::TensorInfo& t : file->tensors()) {
    line(fmt::format("  {:<{}}  {:<5}  {:<14}  {:>12}  {}", t.path, path_width, DTypeName(t.dtype),
                     Dims(t.shape), t.bytes(), Dims(t.chunk)));
    total_elements += t.elements();
    total_bytes += t.bytes();
  }
  line(fmt::format("total: {} tensors, {} parameters, {} bytes of tensor data ({})",
                   file->tensors().size(), total_elements, total_bytes,
                   Bytes(static_cast<double>(total_bytes))));
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

}  // namespace

Command AddInspectCommand(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand(
      "inspect", "Print a model file's config and tensors (path, dtype, shape, bytes, chunks)");
  sub->add_option("model", *path, "The model file (HDF5)")->required();
  return Command{sub, [path] { return RunInspect(*path); }};
}

}  // namespace lockstep::launch
