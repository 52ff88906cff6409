#include "lockstep/partitioner/model_family.h"

#include <fmt/format.h>

#include "families/families.h"

namespace lockstep::partitioner {

const std::vector<const ModelFamily*>& ModelFamilies() {
  static const std::vector<const ModelFamily*>* families =
      new std::vector<const ModelFamily*>{&internal::LlamaFamily(), &internal::Qwen2Family(),
                                          &internal::MistralFamily(), &internal::Phi3Family()};
  return *families;
}

const ModelFamily* FindFamily(std::string_view architecture) {
  for (const ModelFamily* f : ModelFamilies()) {
    if (f->name == architecture) return f;
  }
  return nullptr;
}

const ModelFamily* FindFamilyByHfModelType(std::string_view model_type) {
  for (const ModelFamily* f : ModelFamilies()) {
    for (std::string_view t : f->hf_model_types) {
      if (t == model_type) return f;
    }
  }
  return nullptr;
}

const ModelFamily* FindFamilyByGgufArchitecture(std::string_view architecture) {
  if (architecture.empty()) return nullptr;
  for (const ModelFamily* f : ModelFamilies()) {
    if (f->gguf_architecture == architecture) return f;
  }
  return nullptr;
}

std::string FamilyNames() {
  std::string out;
  for (const ModelFamily* f : ModelFamilies())
    out += (out.empty() ? "" : ", ") + std::string(f->name);
  return out;
}

std::string HfModelTypeNames() {
  std::string out;
  for (const ModelFamily* f : ModelFamilies()) {
    for (std::string_view t : f->hf_model_types) out += (out.empty() ? "" : ", ") + std::string(t);
  }
  return out;
}

std::string GgufArchitectureNames() {
  std::string out;
  for (const ModelFamily* f : ModelFamilies()) {
    if (!f->gguf_architecture.empty()) {
      out += (out.empty() ? "" : ", ") + std::string(f->gguf_architecture);
    }
  }
  return out;
}

std::string CheckpointLayerTensorName(const CheckpointLayout& layout, int layer,
                                      std::string_view name) {
  return fmt::format(fmt::runtime(layout.layer_prefix), layer) + std::string(name);
}

}  // namespace lockstep::partitioner
