#include "lockstep/partitioner/model_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lockstep/base/json_nesting.h"
#include "lockstep/partitioner/model_family.h"

namespace lockstep::partitioner {
namespace {

struct Preset {
  std::string_view name;
  ModelConfig config;
};

ModelConfig Make(std::string_view name, int64_t vocab, int64_t hidden, int64_t ffn, int layers,
                 int heads, int kv_heads, int head_dim, int64_t context, double theta, bool tied,
                 int32_t bos, int32_t eos, double eps = 1e-5) {
  ModelConfig c;
  c.name = std::string(name);
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = ffn;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = head_dim;
  c.max_position_embeddings = context;
  c.rope_theta = theta;
  c.tie_word_embeddings = tied;
  c.bos_token_id = bos;
  c.eos_token_id = eos;
  c.rms_norm_eps = eps;
  return c;
}

RopeScaling Llama3Scaling(double factor, int64_t original) {
  RopeScaling s;
  s.type = RopeScalingType::kLlama3;
  s.factor = factor;
  s.low_freq_factor = 1.0;
  s.high_freq_factor = 4.0;
  s.original_max_position_embeddings = original;
  return s;
}

ModelConfig WithLlama3(ModelConfig c, double factor, int64_t original) {
  c.rope_scaling = Llama3Scaling(factor, original);
  return c;
}

ModelConfig AsQwen2(ModelConfig c) {
  c.architecture = "qwen2";
  c.qkv_bias = true;
  return c;
}

ModelConfig AsMistral(ModelConfig c, int64_t window) {
  c.architecture = "mistral";
  c.sliding_window = window;
  return c;
}

ModelConfig AsPhi3(ModelConfig c, int64_t window) {
  c.architecture = "phi3";
  c.sliding_window = window;
  return c;
}

// The small test models of each family's shape: the tiny preset's sizes
// (GQA 8 over 2, head_dim 16, a vocabulary and FFN width that are not
// multiples of 64) with the family's features, sized so that the short
// prompts of the tests reach past what the features change at: a window of
// 40 positions (shorter than a KV page), scaling thresholds at 64-128.
ModelConfig TinyLlama3() {
  ModelConfig c = Make("tiny-llama3", 500, 128, 352, 4, 8, 2, 16, 512, 500000.0, true, 1, 2);
  c.rope_scaling = Llama3Scaling(8.0, 64);  // pairs 0 kept, 1 smoothed, 2+ divided
  return c;
}

ModelConfig TinyQwen2() {
  ModelConfig c =
      AsQwen2(Make("tiny-qwen2", 520, 128, 352, 4, 8, 2, 16, 128, 1000000.0, true, 1, 2, 1e-6));
  c.rope_scaling.type = RopeScalingType::kYarn;  // Qwen2.5's long-context recipe
  c.rope_scaling.factor = 4.0;
  c.rope_scaling.original_max_position_embeddings = 128;
  c.rope_scaling.attention_factor = 0.1 * std::log(4.0) + 1.0;
  return c;
}

ModelConfig TinyMistral() {
  return AsMistral(Make("tiny-mistral", 500, 128, 352, 4, 8, 2, 16, 512, 10000.0, false, 1, 2),
                   40);
}

ModelConfig TinyPhi3() {
  // Multi-head attention like Phi-3-mini; longrope switching to the long
  // factors at position 96; a window of 100.
  ModelConfig c = AsPhi3(Make("tiny-phi3", 500, 128, 352, 4, 8, 8, 16, 384, 10000.0, false, 1, 2),
                         100);
  RopeScaling& s = c.rope_scaling;
  s.type = RopeScalingType::kLongRope;
  s.original_max_position_embeddings = 96;
  s.factor = 4.0;  // 384 / 96
  s.attention_factor = std::sqrt(1.0 + std::log(4.0) / std::log(96.0));
  s.short_factor = {1.0, 1.02, 1.05, 1.1, 1.2, 1.4, 1.7, 2.0};
  s.long_factor = {1.0, 1.25, 1.6, 2.1, 2.8, 3.5, 4.2, 5.0};
  return c;
}

// Sources: the config.json files published with each model on the Hugging
// Face hub (meta-llama/*, TinyLlama/TinyLlama-1.1B-Chat-v1.0,
// Qwen/Qwen2.5-{7B,72B}-Instruct, mistralai/Mistral-7B-v0.1 and -v0.3,
// microsoft/Phi-3-mini-4k-instruct) and, for llama-110m, karpathy/llama2.c's
// stories110M. docs/partitioner.md cites them.
const std::vector<Preset>& Presets() {
  static const std::vector<Preset>* presets = new std::vector<Preset>{
      // For tests: 8 heads over 2 KV heads (GQA, replicated KV at tp 4 and 8),
      // an FFN width and vocabulary that are not multiples of 64.
      {"tiny", Make("tiny", 500, 128, 352, 4, 8, 2, 16, 512, 10000.0, false, 1, 2)},
      {"tiny-llama3", TinyLlama3()},
      {"tiny-qwen2", TinyQwen2()},
      {"tiny-mistral", TinyMistral()},
      {"tiny-phi3", TinyPhi3()},
      {"llama-110m", Make("llama-110m", 32000, 768, 2048, 12, 12, 12, 64, 1024, 10000.0, true, 1, 2)},
      {"tinyllama-1.1b",
       Make("tinyllama-1.1b", 32000, 2048, 5632, 22, 32, 4, 64, 2048, 10000.0, false, 1, 2)},
      {"llama-2-7b", Make("llama-2-7b", 32000, 4096, 11008, 32, 32, 32, 128, 4096, 10000.0, false, 1, 2)},
      {"llama-2-13b",
       Make("llama-2-13b", 32000, 5120, 13824, 40, 40, 40, 128, 4096, 10000.0, false, 1, 2)},
      {"llama-2-70b",
       Make("llama-2-70b", 32000, 8192, 28672, 80, 64, 8, 128, 4096, 10000.0, false, 1, 2)},
      {"llama-3-8b", Make("llama-3-8b", 128256, 4096, 14336, 32, 32, 8, 128, 8192, 500000.0, false,
                          128000, 128001)},
      {"llama-3-70b", Make("llama-3-70b", 128256, 8192, 28672, 80, 64, 8, 128, 8192, 500000.0,
                           false, 128000, 128001)},
      {"llama-3.1-8b", WithLlama3(Make("llama-3.1-8b", 128256, 4096, 14336, 32, 32, 8, 128, 131072,
                                       500000.0, false, 128000, 128001),
                                  8.0, 8192)},
      {"llama-3.1-70b", WithLlama3(Make("llama-3.1-70b", 128256, 8192, 28672, 80, 64, 8, 128,
                                        131072, 500000.0, false, 128000, 128001),
                                   8.0, 8192)},
      {"llama-3.1-405b", WithLlama3(Make("llama-3.1-405b", 128256, 16384, 53248, 126, 128, 8, 128,
                                         131072, 500000.0, false, 128000, 128001),
                                    8.0, 8192)},
      {"llama-3.2-1b", WithLlama3(Make("llama-3.2-1b", 128256, 2048, 8192, 16, 32, 8, 64, 131072,
                                       500000.0, true, 128000, 128001),
                                  32.0, 8192)},
      {"llama-3.2-3b", WithLlama3(Make("llama-3.2-3b", 128256, 3072, 8192, 28, 24, 8, 128, 131072,
                                       500000.0, true, 128000, 128001),
                                  32.0, 8192)},
      {"qwen2.5-7b", AsQwen2(Make("qwen2.5-7b", 152064, 3584, 18944, 28, 28, 4, 128, 32768,
                                  1000000.0, false, 151643, 151645, 1e-6))},
      {"qwen2.5-72b", AsQwen2(Make("qwen2.5-72b", 152064, 8192, 29568, 80, 64, 8, 128, 32768,
                                   1000000.0, false, 151643, 151645, 1e-6))},
      {"mistral-7b", AsMistral(Make("mistral-7b", 32000, 4096, 14336, 32, 32, 8, 128, 32768,
                                    10000.0, false, 1, 2),
                               4096)},
      {"mistral-7b-v0.3", AsMistral(Make("mistral-7b-v0.3", 32768, 4096, 14336, 32, 32, 8, 128,
                                         32768, 1000000.0, false, 1, 2),
                                    0)},
      {"phi-3-mini", AsPhi3(Make("phi-3-mini", 32064, 3072, 8192, 32, 32, 32, 96, 4096, 10000.0,
                                 false, 1, 32000),
                            2047)},
  };
  return *presets;
}

template <typename T>
Status ReadInt(const nlohmann::json& json, std::string_view source, const char* field, T* out,
               bool required) {
  auto it = json.find(field);
  if (it == json.end() || it->is_null()) {
    if (required) return InvalidArgument("{}: field '{}' is missing", source, field);
    return Status::Ok();
  }
  if (!it->is_number_integer()) {
    return InvalidArgument("{}: field '{}' must be an integer, got {}", source, field, it->dump());
  }
  // Range-check before narrowing: 1e10 layers must not wrap to a small number.
  const bool fits =
      it->is_number_unsigned()
          ? it->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
          : it->get<int64_t>() >= std::numeric_limits<T>::min() &&
                it->get<int64_t>() <= std::numeric_limits<T>::max();
  if (!fits) {
    return InvalidArgument("{}: field '{}' is out of range: {}", source, field, it->dump());
  }
  *out = it->get<T>();
  return Status::Ok();
}

Status ReadDouble(const nlohmann::json& json, std::string_view source, const char* field,
                  double* out) {
  auto it = json.find(field);
  if (it == json.end() || it->is_null()) return Status::Ok();
  if (!it->is_number()) {
    return InvalidArgument("{}: field '{}' must be a number, got {}", source, field, it->dump());
  }
  *out = it->get<double>();
  return Status::Ok();
}

// bos/eos may be an integer or (for eos in some configs) a list; take the first.
Status ReadTokenId(const nlohmann::json& json, std::string_view source, const char* field,
                   int32_t* out) {
  auto it = json.find(field);
  if (it == json.end() || it->is_null()) return Status::Ok();
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) {
    *out = (*it)[0].get<int32_t>();
    return Status::Ok();
  }
  return ReadInt(json, source, field, out, false);
}

}  // namespace

int64_t ModelConfig::NumParameters() const {
  int64_t per_layer = 2 * hidden_size                 // norms
                      + q_dim() * hidden_size * 2     // wq, wo
                      + kv_dim() * hidden_size * 2    // wk, wv
                      + 3 * intermediate_size * hidden_size;
  if (qkv_bias) per_layer += q_dim() + 2 * kv_dim();
  int64_t total = vocab_size * hidden_size + per_layer * num_layers + hidden_size;
  if (!tie_word_embeddings) total += vocab_size * hidden_size;
  return total;
}

int64_t ModelConfig::ContextLength() const {
  return RopeContextLength(rope_scaling, max_position_embeddings);
}

bool ModelConfig::NeedsFormatV2() const {
  return qkv_bias || sliding_window > 0 || rope_scaling.active();
}

Status ModelConfig::Validate() const {
  const ModelFamily* family = FindFamily(architecture);
  if (family == nullptr) {
    return InvalidArgument("architecture '{}' is not supported (supported: {})", architecture,
                           FamilyNames());
  }
  // Positive, and at most the limit (model_config.h, "Limits"): a value
  // beyond it is a damaged or mistyped config, and would otherwise overflow
  // a size or allocate without bound.
  auto in_range = [](int64_t v, int64_t limit, const char* field) -> Status {
    if (v <= 0) return InvalidArgument("field '{}' must be positive, got {}", field, v);
    if (v > limit) {
      return InvalidArgument("field '{}' is {}, more than lockstep supports ({})", field, v,
                             limit);
    }
    return Status::Ok();
  };
  LOCKSTEP_RETURN_IF_ERROR(in_range(vocab_size, kMaxVocabSize, "vocab_size"));
  LOCKSTEP_RETURN_IF_ERROR(in_range(hidden_size, kMaxModelDimension, "hidden_size"));
  LOCKSTEP_RETURN_IF_ERROR(in_range(intermediate_size, kMaxModelDimension, "intermediate_size"));
  LOCKSTEP_RETURN_IF_ERROR(in_range(num_layers, kMaxLayers, "num_hidden_layers"));
  LOCKSTEP_RETURN_IF_ERROR(in_range(num_heads, kMaxHeads, "num_attention_heads"));
  LOCKSTEP_RETURN_IF_ERROR(in_range(num_kv_heads, kMaxHeads, "num_key_value_heads"));
  LOCKSTEP_RETURN_IF_ERROR(in_range(head_dim, kMaxHeadDim, "head_dim"));
  LOCKSTEP_RETURN_IF_ERROR(
      in_range(max_position_embeddings, kMaxContext, "max_position_embeddings"));
  if (head_dim % 2 != 0) {
    return InvalidArgument("field 'head_dim' must be even for rotary embeddings, got {}", head_dim);
  }
  if (num_heads % num_kv_heads != 0) {
    return InvalidArgument(
        "field 'num_attention_heads' ({}) must be a multiple of 'num_key_value_heads' ({})",
        num_heads, num_kv_heads);
  }
  if (!(rms_norm_eps > 0.0 && rms_norm_eps <= 1.0)) {
    return InvalidArgument("field 'rms_norm_eps' must be a number in (0, 1], got {}",
                           rms_norm_eps);
  }
  if (!(rope_theta > 0.0 && std::isfinite(rope_theta))) {
    return InvalidArgument("field 'rope_theta' must be a finite positive number, got {}",
                           rope_theta);
  }
  for (auto [field, id] :
       {std::pair{"bos_token_id", bos_token_id}, std::pair{"eos_token_id", eos_token_id}}) {
    if (id < -1 || id >= vocab_size) {
      return InvalidArgument("field '{}' is {}, outside the vocabulary of {} (-1: none)", field, id,
                             vocab_size);
    }
  }
  // The family fixes what its checkpoints can say (model_family.h).
  if (qkv_bias != family->qkv_bias) {
    return InvalidArgument("field 'qkv_bias' is {} but architecture '{}' {} q/k/v biases",
                           qkv_bias ? 1 : 0, architecture, family->qkv_bias ? "has" : "has no");
  }
  if (sliding_window < 0) {
    return InvalidArgument("field 'sliding_window' must be 0 (none) or positive, got {}",
                           sliding_window);
  }
  if (sliding_window > 0 && family->sliding_window != SlidingWindowKey::kSlidingWindow) {
    return InvalidArgument(
        "field 'sliding_window' is {} but architecture '{}' has no sliding-window attention",
        sliding_window, architecture);
  }
  LOCKSTEP_RETURN_IF_ERROR(ValidateRopeScaling(rope_scaling, head_dim));
  if (ContextLength() > std::numeric_limits<int32_t>::max()) {
    return InvalidArgument("the context length {} (max_position_embeddings {} with {} rope scaling) "
                           "exceeds 2^31 - 1 positions",
                           ContextLength(), max_position_embeddings,
                           RopeScalingTypeName(rope_scaling.type));
  }
  return Status::Ok();
}

namespace {

// config.json settings that change the computation in ways no family of
// lockstep implements: refused, not ignored. One line naming the field and
// its value.
Status CheckUnsupportedKeys(const nlohmann::json& json, std::string_view source) {
  if (auto it = json.find("hidden_act");
      it != json.end() && it->is_string() && it->get<std::string>() != "silu") {
    return InvalidArgument("{}: hidden_act \"{}\" is not supported (supported: silu, i.e. SwiGLU)",
                           source, it->get<std::string>());
  }
  for (const char* field : {"attention_bias", "mlp_bias"}) {
    if (auto it = json.find(field); it != json.end() && it->is_boolean() && it->get<bool>()) {
      return InvalidArgument("{}: {} true is not supported (biases beyond Qwen2's q/k/v ones)",
                             source, field);
    }
  }
  if (auto it = json.find("partial_rotary_factor"); it != json.end() && !it->is_null()) {
    if (!it->is_number() || it->get<double>() != 1.0) {
      return InvalidArgument(
          "{}: partial_rotary_factor {} is not supported (lockstep rotates whole heads)", source,
          it->dump());
    }
  }
  return Status::Ok();
}

// The family's sliding-window key (model_family.h).
Status ReadSlidingWindow(const nlohmann::json& json, std::string_view source,
                         const ModelFamily& family, ModelConfig* c) {
  switch (family.sliding_window) {
    case SlidingWindowKey::kNone:
      return Status::Ok();
    case SlidingWindowKey::kQwen2:
      if (auto it = json.find("use_sliding_window");
          it != json.end() && it->is_boolean() && it->get<bool>()) {
        return InvalidArgument(
            "{}: use_sliding_window true is not supported (Qwen2's windows on the layers from "
            "max_window_layers on)",
            source);
      }
      return Status::Ok();
    case SlidingWindowKey::kSlidingWindow: {
      auto it = json.find("sliding_window");
      if (it == json.end() || it->is_null()) return Status::Ok();
      if (!it->is_number_integer() || it->get<int64_t>() <= 0) {
        return InvalidArgument("{}: sliding_window must be a positive integer or null, got {}",
                               source, it->dump());
      }
      c->sliding_window = it->get<int64_t>();
      return Status::Ok();
    }
  }
  return Status::Ok();
}

}  // namespace

Result<ModelConfig> ModelConfigFromHfJson(const nlohmann::json& json, std::string_view source) {
  if (!json.is_object()) return InvalidArgument("{}: expected a JSON object", source);
  ModelConfig c;
  const ModelFamily* family = FindFamily("llama");
  if (auto it = json.find("model_type"); it != json.end() && !it->is_null()) {
    const std::string type = it->is_string() ? it->get<std::string>() : it->dump();
    family = FindFamilyByHfModelType(type);
    if (family == nullptr) {
      return InvalidArgument("{}: model_type \"{}\" is not supported (supported: {})", source, type,
                             HfModelTypeNames());
    }
  }
  c.architecture = std::string(family->name);
  c.qkv_bias = family->qkv_bias;
  if (auto it = json.find("_name_or_path"); it != json.end() && it->is_string()) {
    c.name = it->get<std::string>();
  }
  LOCKSTEP_RETURN_IF_ERROR(ReadInt(json, source, "vocab_size", &c.vocab_size, true));
  LOCKSTEP_RETURN_IF_ERROR(ReadInt(json, source, "hidden_size", &c.hidden_size, true));
  LOCKSTEP_RETURN_IF_ERROR(ReadInt(json, source, "intermediate_size", &c.intermediate_size, true));
  LOCKSTEP_RETURN_IF_ERROR(ReadInt(json, source, "num_hidden_layers", &c.num_layers, true));
  LOCKSTEP_RETURN_IF_ERROR(ReadInt(json, source, "num_attention_heads", &c.num_heads, true));
  c.num_kv_heads = c.num_heads;
  LOCKSTEP_RETURN_IF_ERROR(ReadInt(json, source, "num_key_value_heads", &c.num_kv_heads, false));
  if (c.num_heads > 0) c.head_dim = static_cast<int>(c.hidden_size / c.num_heads);
  LOCKSTEP_RETURN_IF_ERROR(ReadInt(json, source, "head_dim", &c.head_dim, false));
  LOCKSTEP_RETURN_IF_ERROR(ReadInt(json, source, "max_position_embeddings",
                                   &c.max_position_embeddings, false));
  LOCKSTEP_RETURN_IF_ERROR(ReadDouble(json, source, "rms_norm_eps", &c.rms_norm_eps));
  LOCKSTEP_RETURN_IF_ERROR(ReadDouble(json, source, "rope_theta", &c.rope_theta));
  if (auto it = json.find("tie_word_embeddings"); it != json.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return InvalidArgument("{}: field 'tie_word_embeddings' must be true or false", source);
    }
    c.tie_word_embeddings = it->get<bool>();
  }
  LOCKSTEP_RETURN_IF_ERROR(ReadTokenId(json, source, "bos_token_id", &c.bos_token_id));
  LOCKSTEP_RETURN_IF_ERROR(ReadTokenId(json, source, "eos_token_id", &c.eos_token_id));
  if (c.num_heads > 0 && json.find("head_dim") == json.end() &&
      c.hidden_size % c.num_heads != 0) {
    return InvalidArgument(
        "{}: hidden_size {} is not a multiple of num_attention_heads {}; give 'head_dim'", source,
        c.hidden_size, c.num_heads);
  }
  LOCKSTEP_RETURN_IF_ERROR(CheckUnsupportedKeys(json, source));
  LOCKSTEP_RETURN_IF_ERROR(ReadSlidingWindow(json, source, *family, &c));
  if (c.head_dim > 2 && c.head_dim % 2 == 0 && c.max_position_embeddings > 0) {
    LOCKSTEP_ASSIGN_OR_RETURN(
        c.rope_scaling,
        RopeScalingFromHfJson(json, source, c.max_position_embeddings, c.head_dim));
  }
  Status valid = c.Validate();
  if (!valid.ok()) return valid.WithContext(source);
  return c;
}

Result<ModelConfig> LoadHfConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("{}: cannot open model config", path);
  nlohmann::json json;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LOCKSTEP_RETURN_IF_ERROR(CheckJsonNesting(text, path));
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // syntax, a number beyond a double
    return InvalidArgument("{}: not valid JSON: {}", path, e.what());
  }
  LOCKSTEP_ASSIGN_OR_RETURN(ModelConfig config, ModelConfigFromHfJson(json, path));
  if (config.name.empty()) config.name = ModelNameFromPath(path);
  return config;
}

std::string ModelNameFromPath(std::string_view path) {
  std::filesystem::path p{std::string(path)};
  std::string stem = p.stem().string();
  // Hugging Face folders: "Llama-2-7b-hf/config.json" is "Llama-2-7b-hf".
  if (stem == "config" && p.has_parent_path()) {
    const std::string folder = std::filesystem::absolute(p).parent_path().filename().string();
    if (!folder.empty()) return folder;
  }
  return stem;
}

nlohmann::json ModelConfigToHfJson(const ModelConfig& c) {
  nlohmann::json j;
  const ModelFamily* family = FindFamily(c.architecture);
  j["model_type"] = family != nullptr && !family->hf_model_types.empty()
                        ? std::string(family->hf_model_types.front())
                        : c.architecture;
  if (!c.name.empty()) j["_name_or_path"] = c.name;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_layers;
  j["num_attention_heads"] = c.num_heads;
  j["num_key_value_heads"] = c.num_kv_heads;
  j["head_dim"] = c.head_dim;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["bos_token_id"] = c.bos_token_id;
  j["eos_token_id"] = c.eos_token_id;
  // Only what differs from plain Llama, so that a Llama config's JSON (and
  // its fingerprint) is what it always was. qkv_bias follows from model_type.
  if (c.sliding_window > 0) j["sliding_window"] = c.sliding_window;
  if (c.rope_scaling.active()) j["rope_scaling"] = RopeScalingToHfJson(c.rope_scaling);
  return j;
}

Result<ModelConfig> ModelPreset(std::string_view name) {
  for (const Preset& p : Presets()) {
    if (p.name == name) return p.config;
  }
  std::string names;
  for (const Preset& p : Presets()) names += (names.empty() ? "" : ", ") + std::string(p.name);
  return InvalidArgument("unknown model preset '{}' (known: {})", name, names);
}

std::vector<std::string> ModelPresetNames() {
  std::vector<std::string> names;
  for (const Preset& p : Presets()) names.emplace_back(p.name);
  return names;
}

std::string ModelConfigFingerprint(const ModelConfig& config) {
  nlohmann::json j = ModelConfigToHfJson(config);
  j.erase("_name_or_path");  // the name is not part of the model's identity
  std::string text = j.dump();
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char ch : text) {
    hash ^= ch;
    hash *= 0x100000001b3ull;
  }
  return fmt::format("{:016x}", hash);
}

std::string LayerTensorPath(int layer, std::string_view name) {
  return fmt::format("/layers/{}/{}", layer, name);
}

std::vector<TensorSpec> ModelTensors(const ModelConfig& c) {
  std::vector<TensorSpec> t;
  const int64_t h = c.hidden_size;
  t.push_back({std::string(kEmbeddingPath), TensorRole::kEmbedding, -1, {c.vocab_size, h}});
  for (int l = 0; l < c.num_layers; ++l) {
    t.push_back({LayerTensorPath(l, "attn_norm"), TensorRole::kNorm, l, {h}});
    t.push_back({LayerTensorPath(l, "attn/wq"), TensorRole::kColumnParallel, l, {c.q_dim(), h}});
    t.push_back({LayerTensorPath(l, "attn/wk"), TensorRole::kColumnParallel, l, {c.kv_dim(), h}});
    t.push_back({LayerTensorPath(l, "attn/wv"), TensorRole::kColumnParallel, l, {c.kv_dim(), h}});
    if (c.qkv_bias) {
      t.push_back({LayerTensorPath(l, "attn/bq"), TensorRole::kColumnBias, l, {c.q_dim()}});
      t.push_back({LayerTensorPath(l, "attn/bk"), TensorRole::kColumnBias, l, {c.kv_dim()}});
      t.push_back({LayerTensorPath(l, "attn/bv"), TensorRole::kColumnBias, l, {c.kv_dim()}});
    }
    t.push_back({LayerTensorPath(l, "attn/wo"), TensorRole::kRowParallel, l, {h, c.q_dim()}});
    t.push_back({LayerTensorPath(l, "ffn_norm"), TensorRole::kNorm, l, {h}});
    t.push_back({LayerTensorPath(l, "ffn/w_gate"), TensorRole::kColumnParallel, l,
                 {c.intermediate_size, h}});
    t.push_back({LayerTensorPath(l, "ffn/w_up"), TensorRole::kColumnParallel, l,
                 {c.intermediate_size, h}});
    t.push_back({LayerTensorPath(l, "ffn/w_down"), TensorRole::kRowParallel, l,
                 {h, c.intermediate_size}});
  }
  t.push_back({std::string(kFinalNormPath), TensorRole::kNorm, -1, {h}});
  if (!c.tie_word_embeddings) {
    t.push_back({std::string(kLmHeadPath), TensorRole::kLmHead, -1, {c.vocab_size, h}});
  }
  return t;
}

}  // namespace lockstep::partitioner
