// Model-format tensors from a checkpoint's tensors, per a family's layout
// (partitioner/model_family.h): names, fused tensors split by rows, biases.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "checkpoint.h"

namespace lockstep::runtime {
namespace {

using partitioner::CheckpointLayout;
using partitioner::CheckpointTensor;
using partitioner::TensorSpec;

std::string ShapeString(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// The checkpoint name of a tensor outside the layers ("" if the layout has
// none for it).
std::string_view GlobalName(const CheckpointLayout& layout, const TensorSpec& spec) {
  if (spec.path == partitioner::kEmbeddingPath) return layout.embedding;
  if (spec.path == partitioner::kFinalNormPath) return layout.final_norm;
  if (spec.path == partitioner::kLmHeadPath) return layout.lm_head;
  return {};
}

}  // namespace

Status MapTensors(const CheckpointLayout& layout,
                  const std::map<std::string, SourceTensor>& available,
                  std::string_view missing_where, Checkpoint* ckpt, std::set<std::string>* used) {
  const std::vector<TensorSpec> specs = partitioner::ModelTensors(ckpt->config);
  std::map<std::string, const TensorSpec*> by_path;
  for (const TensorSpec& spec : specs) by_path[spec.path] = &spec;

  for (const TensorSpec& spec : specs) {
    if (spec.layer < 0) {
      const std::string name(GlobalName(layout, spec));
      auto it = available.find(name);
      if (name.empty() || it == available.end()) {
        return NotFound("{}: tensor '{}' is missing (needed for {} by {})", missing_where, name,
                        spec.path, ckpt->config_source);
      }
      ckpt->tensors[spec.path] = it->second;
      used->insert(name);
      continue;
    }
    const std::string layer_dir = fmt::format("/layers/{}/", spec.layer);
    const std::string_view local = std::string_view(spec.path).substr(layer_dir.size());
    // The first layout entry holding this tensor that the checkpoint has.
    const CheckpointTensor* entry = nullptr;
    std::vector<std::string> candidates;
    for (const CheckpointTensor& t : layout.layer_tensors) {
      if (std::find(t.parts.begin(), t.parts.end(), local) == t.parts.end()) continue;
      const std::string name = partitioner::CheckpointLayerTensorName(layout, spec.layer, t.name);
      candidates.push_back(name);
      if (available.contains(name)) {
        entry = &t;
        break;
      }
    }
    if (entry == nullptr) {
      if (candidates.empty()) {
        return InvalidArgument("{}: architecture '{}' has no tensor for {}", ckpt->config_source,
                               ckpt->config.architecture, spec.path);
      }
      return NotFound("{}: tensor '{}' is missing (needed for {} by {})", missing_where,
                      fmt::join(candidates, "' or '"), spec.path, ckpt->config_source);
    }
    const std::string name =
        partitioner::CheckpointLayerTensorName(layout, spec.layer, entry->name);
    const SourceTensor& source = available.at(name);
    used->insert(name);
    if (entry->parts.size() == 1) {
      ckpt->tensors[spec.path] = source;
      continue;
    }
    // A fused tensor: its parts stacked by rows, each of the shape the
    // config implies for it.
    int64_t rows = 0, offset = 0;
    std::vector<std::string> rows_of;
    for (std::string_view part : entry->parts) {
      const TensorSpec& part_spec = *by_path.at(layer_dir + std::string(part));
      if (part == local) offset = rows;
      rows += part_spec.shape[0];
      rows_of.push_back(fmt::format("{} {}", part_spec.path, part_spec.shape[0]));
    }
    const std::vector<int64_t> expected = {rows, spec.shape[1]};
    if (source.shape != expected) {
      return InvalidArgument("{}: fused tensor '{}' has shape {}, but {} implies {} (rows: {})",
                             source.file->path(), name, ShapeString(source.shape),
                             ckpt->config_source, ShapeString(expected), fmt::join(rows_of, " + "));
    }
    ckpt->tensors[spec.path] = SliceSourceRows(source, offset, spec.shape[0]);
  }
  return Status::Ok();
}

}  // namespace lockstep::runtime
