// Hugging Face checkpoint folders: config.json + safetensors, of any family
// of partitioner/model_family.h (its layout names the tensors).
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
  // The family's config keys, and every refusal of what lockstep does not
  // compute (model_config.h).
  LOCKSTEP_ASSIGN_OR_RETURN(ckpt.config,
                            partitioner::ModelConfigFromHfJson(config_json, ckpt.config_source));
  const partitioner::ModelFamily& family = *partitioner::FindFamily(ckpt.config.architecture);

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

  // Every tensor of the checkpoint, by name, as a source tensor (its dtype
  // checked once it is used).
  std::map<std::string, SourceTensor> all;
  std::map<std::string, std::string> bad_dtype;  // name -> a dtype lockstep does not read
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
      SourceTensor source;
      source.name = t.name;
      source.file = f;
      source.shape = t.shape;
      source.offset = t.offset;
      bool ok = false;
      source.encoding = EncodingOf(t.dtype, &ok);
      if (!ok) bad_dtype[t.name] = t.dtype;
      all[t.name] = std::move(source);
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
  const std::string where = files.size() == 1 ? dir + files[0] : index_path;
  LOCKSTEP_RETURN_IF_ERROR(MapTensors(family.hf, all, where, &ckpt, &used));
  for (const auto& [path, source] : ckpt.tensors) {
    if (auto it = bad_dtype.find(source.name); it != bad_dtype.end()) {
      return InvalidArgument("{}: tensor '{}' has dtype {}; expected F32, F16 or BF16",
                             source.file->path(), source.name, it->second);
    }
  }
  for (const auto& [name, entry] : all) {
    if (used.contains(name)) continue;
    // Tied checkpoints may store lm_head anyway; RoPE tables of old exports
    // are recomputed by the engine.
    if (name == family.hf.lm_head && ckpt.config.tie_word_embeddings) continue;
    if (name.ends_with(".rotary_emb.inv_freq")) continue;
    // A bias the architecture does not have would be silently lost.
    if (name.ends_with(".bias")) {
      return InvalidArgument(
          "{}: tensor '{}' is a bias, but architecture '{}' (model_type in {}) has none there; "
          "the checkpoint does not match its config",
          entry.file->path(), name, ckpt.config.architecture, ckpt.config_source);
    }
    ckpt.unused.push_back(name);
  }
  return ckpt;
}

}  // namespace lockstep::runtime
