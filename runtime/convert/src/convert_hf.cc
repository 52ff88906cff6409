// Hugging Face Llama checkpoint folders: config.json + safetensors.
#include <fmt/format.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "checkpoint.h"
#include "lockstep/base/json_nesting.h"
#include "lockstep/formats/safetensors.h"

namespace lockstep::runtime {
namespace {

using partitioner::TensorSpec;

// The Hugging Face name of a model-format tensor.
std::string HfName(const TensorSpec& spec) {
  if (spec.path == partitioner::kEmbeddingPath) return "model.embed_tokens.weight";
  if (spec.path == partitioner::kFinalNormPath) return "model.norm.weight";
  if (spec.path == partitioner::kLmHeadPath) return "lm_head.weight";
  static const std::map<std::string, std::string> kLayerNames = {
      {"attn_norm", "input_layernorm"}, {"attn/wq", "self_attn.q_proj"},
      {"attn/wk", "self_attn.k_proj"},  {"attn/wv", "self_attn.v_proj"},
      {"attn/wo", "self_attn.o_proj"},  {"ffn_norm", "post_attention_layernorm"},
      {"ffn/w_gate", "mlp.gate_proj"},  {"ffn/w_up", "mlp.up_proj"},
      {"ffn/w_down", "mlp.down_proj"}};
  const std::string prefix = fmt::format("/layers/{}/", spec.layer);
  return fmt::format("model.layers.{}.{}.weight", spec.layer,
                     kLayerNames.at(spec.path.substr(prefix.size())));
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

Result<nlohmann::json> ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("{}: cannot open", path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LOCKSTEP_RETURN_IF_ERROR(CheckJsonNesting(text, path));
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // syntax, a number beyond a double
    return InvalidArgument("{}: not valid JSON: {}", path, e.what());
  }
}

// Features of config.json that would change the computation and that
// lockstep's Llama does not implement: refused rather than ignored.
Status CheckUnsupportedConfig(const nlohmann::json& json, const std::string& path) {
  if (auto it = json.find("rope_scaling"); it != json.end() && !it->is_null()) {
    std::string type = "?";
    if (it->is_object()) {
      for (const char* key : {"rope_type", "type"}) {
        if (auto t = it->find(key); t != it->end() && t->is_string()) type = t->get<std::string>();
      }
    }
    if (type != "default") {
      return InvalidArgument(
          "{}: field 'rope_scaling' (type '{}') is not supported: lockstep implements plain RoPE",
          path, type);
    }
  }
  if (auto it = json.find("hidden_act");
      it != json.end() && it->is_string() && it->get<std::string>() != "silu") {
    return InvalidArgument("{}: field 'hidden_act' is '{}', only 'silu' (SwiGLU) is supported",
                           path, it->get<std::string>());
  }
  for (const char* field : {"attention_bias", "mlp_bias"}) {
    if (auto it = json.find(field); it != json.end() && it->is_boolean() && it->get<bool>()) {
      return InvalidArgument("{}: field '{}' is true; biases are not supported", path, field);
    }
  }
  return Status::Ok();
}

// Shard file names of model.safetensors.index.json, by tensor name.
Result<std::map<std::string, std::string>> ReadIndex(const std::string& path) {
  LOCKSTEP_ASSIGN_OR_RETURN(nlohmann::json json, ReadJson(path));
  auto map = json.find("weight_map");
  if (!json.is_object() || map == json.end() || !map->is_object()) {
    return InvalidArgument("{}: no 'weight_map' object", path);
  }
  std::map<std::string, std::string> shards;
  for (auto it = map->begin(); it != map->end(); ++it) {
    if (!it.value().is_string()) {
      return InvalidArgument("{}: weight_map entry '{}' is not a file name", path, it.key());
    }
    const std::string file = it.value().get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..") {
      return InvalidArgument("{}: weight_map entry '{}' names '{}', not a file in the folder", path,
                             it.key(), file);
    }
    shards[it.key()] = file;
  }
  return shards;
}

SourceEncoding EncodingOf(const std::string& dtype, bool* ok) {
  *ok = true;
  if (dtype == "F32") return SourceEncoding::kF32;
  if (dtype == "F16") return SourceEncoding::kF16;
  if (dtype == "BF16") return SourceEncoding::kBF16;
  *ok = false;
  return SourceEncoding::kF32;
}

}  // namespace

Result<Checkpoint> OpenHfCheckpoint(const std::string& folder) {
  if (!Exists(folder)) return NotFound("{}: checkpoint folder not found", folder);
  if (!IsDirectory(folder)) {
    return InvalidArgument(
        "{}: not a folder; --from hf expects a Hugging Face checkpoint folder (config.json, "
        "model.safetensors)",
        folder);
  }
  Checkpoint ckpt;
  ckpt.source = folder;
  ckpt.rope_layout = RopeLayout::kHalf;
  const std::string dir = folder.ends_with('/') ? folder : folder + "/";
  ckpt.config_source = dir + "config.json";
  if (!Exists(ckpt.config_source)) {
    return NotFound("{}: missing; a Hugging Face checkpoint folder has one", ckpt.config_source);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(nlohmann::json config_json, ReadJson(ckpt.config_source));
  LOCKSTEP_ASSIGN_OR_RETURN(ckpt.config,
                            partitioner::ModelConfigFromHfJson(config_json, ckpt.config_source));
  if (config_json.is_object()) {
    LOCKSTEP_RETURN_IF_ERROR(CheckUnsupportedConfig(config_json, ckpt.config_source));
  }

  // The tokenizer, read later unless --tokenizer replaces it.
  for (const char* name : {"tokenizer.json", "tokenizer.model"}) {
    if (Exists(dir + name)) {
      ckpt.tokenizer_file = dir + name;
      break;
    }
  }

  // Which files hold which tensors.
  std::map<std::string, std::string> shard_of;  // tensor -> file name ("" = the single file)
  std::vector<std::string> files;
  const std::string index_path = dir + "model.safetensors.index.json";
  if (Exists(index_path)) {
    LOCKSTEP_ASSIGN_OR_RETURN(shard_of, ReadIndex(index_path));
    std::set<std::string> unique;
    for (const auto& [tensor, file] : shard_of) unique.insert(file);
    files.assign(unique.begin(), unique.end());
  } else if (Exists(dir + "model.safetensors")) {
    files.push_back("model.safetensors");
  } else {
    return NotFound(
        "{}: no model.safetensors or model.safetensors.index.json (only safetensors weights are "
        "read; convert pytorch_model.bin to safetensors first)",
        folder);
  }

  std::map<std::string, std::pair<const InputFile*, SafetensorsTensor>> all;  // by tensor name
  for (const std::string& name : files) {
    LOCKSTEP_ASSIGN_OR_RETURN(InputFile file, InputFile::Open(dir + name));
    ckpt.files.push_back(std::make_unique<InputFile>(std::move(file)));
    const InputFile* f = ckpt.files.back().get();
    LOCKSTEP_ASSIGN_OR_RETURN(SafetensorsHeader header, ReadSafetensorsHeader(*f));
    for (SafetensorsTensor& t : header.tensors) {
      if (!shard_of.empty()) {
        auto it = shard_of.find(t.name);
        if (it == shard_of.end() || it->second != name) continue;  // not this shard's, per index
      }
      std::string tensor_name = t.name;  // `t` is moved from below
      all[tensor_name] = {f, std::move(t)};
    }
  }
  if (!shard_of.empty()) {
    for (const auto& [tensor, file] : shard_of) {
      if (!all.contains(tensor)) {
        return NotFound("{}{}: tensor '{}' is missing (model.safetensors.index.json puts it there)",
                        dir, file, tensor);
      }
    }
  }

  std::set<std::string> used;
  for (const TensorSpec& spec : partitioner::ModelTensors(ckpt.config)) {
    const std::string name = HfName(spec);
    auto it = all.find(name);
    if (it == all.end()) {
      const std::string where = files.size() == 1 ? dir + files[0] : index_path;
      return NotFound("{}: tensor '{}' is missing (needed for {} by {})", where, name, spec.path,
                      ckpt.config_source);
    }
    const auto& [file, t] = it->second;
    bool ok = false;
    SourceTensor source;
    source.name = name;
    source.file = file;
    source.encoding = EncodingOf(t.dtype, &ok);
    if (!ok) {
      return InvalidArgument("{}: tensor '{}' has dtype {}; expected F32, F16 or BF16",
                             file->path(), name, t.dtype);
    }
    source.shape = t.shape;
    source.offset = t.offset;
    ckpt.tensors[spec.path] = std::move(source);
    used.insert(name);
  }
  for (const auto& [name, entry] : all) {
    if (used.contains(name)) continue;
    // Tied checkpoints may store lm_head anyway; RoPE tables of old exports
    // are recomputed by the engine.
    if (name == "lm_head.weight" && ckpt.config.tie_word_embeddings) continue;
    if (name.ends_with(".rotary_emb.inv_freq")) continue;
    ckpt.unused.push_back(name);
  }
  return ckpt;
}

}  // namespace lockstep::runtime
