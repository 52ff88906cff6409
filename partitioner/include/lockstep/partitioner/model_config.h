// The model description shared by every component: hyper-parameters of a
// Llama-like transformer and the inventory of its tensors.
//
// A ModelConfig comes from an HDF5 model file (runtime/model_file.h reads the
// attributes), a Hugging Face style config.json, or a named preset. The tensor
// inventory (ModelTensors) is the single definition of the tensor names,
// shapes and roles of the model format (docs/model-format.md): the model
// writer, the loader and the partitioner all use it.
//
// The families lockstep runs (model_family.h: Llama, Qwen2, Mistral, Phi-3)
// differ in what these fields say, never in code paths keyed by their name:
// qkv_bias (Qwen2), sliding_window (Mistral v0.1, Phi-3), rope_scaling (Llama
// 3.1's llama3, Phi-3's longrope, linear, dynamic, yarn), tie_word_embeddings.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "lockstep/base/status.h"
#include "lockstep/partitioner/rope_scaling.h"

namespace lockstep::partitioner {

// Limits (ModelConfig::Validate): far beyond any published Llama-family
// model, low enough that no size computed from a config overflows and a
// mistyped or damaged value is refused instead of allocated.
inline constexpr int64_t kMaxVocabSize = int64_t{1} << 24;       // token ids are int32
inline constexpr int64_t kMaxModelDimension = int64_t{1} << 20;  // hidden and FFN sizes
inline constexpr int64_t kMaxLayers = 4096;
inline constexpr int64_t kMaxHeads = 4096;
inline constexpr int64_t kMaxHeadDim = 4096;
// Positions travel as int32 and are exact in f32 up to 2^24.
inline constexpr int64_t kMaxContext = int64_t{1} << 24;

struct ModelConfig {
  std::string name;                    // free text, e.g. the preset name
  std::string architecture = "llama";  // the family (model_family.h): llama, qwen2, mistral, phi3
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;             // model dimension
  int64_t intermediate_size = 0;       // FFN dimension
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;                // == num_heads: multi-head; fewer: GQA
  int head_dim = 0;                    // default hidden_size / num_heads
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  int64_t max_position_embeddings = 2048;  // context length
  bool tie_word_embeddings = false;    // lm_head shares tok_embeddings
  int32_t bos_token_id = 1;            // -1: none
  int32_t eos_token_id = 2;            // -1: none
  // Biases on the q, k and v projections (Qwen2): tensors /layers/N/attn/bq,
  // bk, bv, added to the matmul outputs before RoPE.
  bool qkv_bias = false;
  // Sliding-window attention (Mistral v0.1, Phi-3): the query at position p
  // attends to the keys at positions (p - sliding_window, p]. 0: every key.
  int64_t sliding_window = 0;
  // RoPE scaling (rope_scaling.h); type kNone: plain RoPE.
  RopeScaling rope_scaling;

  int64_t q_dim() const { return int64_t{num_heads} * head_dim; }
  int64_t kv_dim() const { return int64_t{num_kv_heads} * head_dim; }
  int64_t NumParameters() const;
  // The positions a request may use: max_position_embeddings, extended by
  // linear, dynamic and yarn rope scaling (RopeContextLength).
  int64_t ContextLength() const;
  // Whether the config uses anything model format v1 cannot express (biases,
  // a sliding window, rope scaling): such a file is format version 2.
  bool NeedsFormatV2() const;

  // Consistency of the numbers (positive sizes within the limits above,
  // heads divisible by KV heads, rms_norm_eps in (0, 1], rope_theta finite
  // and positive, ...). The message names the field.
  Status Validate() const;

  bool operator==(const ModelConfig&) const = default;
};

// Hugging Face config.json: `model_type` picks the family (llama when absent;
// model_family.h), then the keys every family shares: hidden_size,
// intermediate_size, num_hidden_layers, num_attention_heads,
// num_key_value_heads (default: the head count), vocab_size, rms_norm_eps,
// rope_theta (default 10000), max_position_embeddings, tie_word_embeddings
// (default false), head_dim (optional), bos_token_id, eos_token_id
// (optional), rope_scaling (rope_scaling.h); then the family's own
// (qkv_bias, sliding_window). Settings that would change the computation and
// that lockstep does not implement are refused with one line naming the field
// and its value: hidden_act other than silu, attention_bias or mlp_bias true,
// partial_rotary_factor other than 1, an unknown rope scaling type, Qwen2's
// use_sliding_window. `source` names the file in error messages.
Result<ModelConfig> ModelConfigFromHfJson(const nlohmann::json& json, std::string_view source);
// A config without "_name_or_path" is named after its file
// (ModelNameFromPath), so that plans and model files made from it have a name.
Result<ModelConfig> LoadHfConfigFile(const std::string& path);
// "small-llama" for "small-llama.json" or "small-llama.h5"; the folder's name
// for ".../Llama-2-7b-hf/config.json".
std::string ModelNameFromPath(std::string_view path);
nlohmann::json ModelConfigToHfJson(const ModelConfig& config);

// Presets: the published configs of "llama-110m", "tinyllama-1.1b",
// "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b",
// "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-3.2-1b",
// "llama-3.2-3b", "qwen2.5-7b", "qwen2.5-72b", "mistral-7b" (v0.1, sliding
// window), "mistral-7b-v0.3", "phi-3-mini" (4k); and for tests "tiny" and
// one small model of each family's shape: "tiny-llama3" (llama3 rope
// scaling, tied), "tiny-qwen2" (biases, tied, yarn), "tiny-mistral" (a
// sliding window shorter than a KV page), "tiny-phi3" (longrope, a window).
Result<ModelConfig> ModelPreset(std::string_view name);
std::vector<std::string> ModelPresetNames();

// SHA-256-free stable fingerprint of the hyper-parameters (FNV-1a 64 over the
// canonical JSON), as 16 hex digits. Plans echo it to refuse a wrong model.
std::string ModelConfigFingerprint(const ModelConfig& config);

// ---------------------------------------------------------------------------
// Tensor inventory of model format v1.
// ---------------------------------------------------------------------------

// How a tensor is split under tensor parallelism.
enum class TensorRole {
  kEmbedding,      // tok_embeddings [vocab][hidden]: split by hidden columns
  kNorm,           // RMSNorm weight [hidden]: replicated, always f32
  kColumnParallel, // wq, wk, wv, w_gate, w_up: split by output rows
  kRowParallel,    // wo, w_down: split by input columns (canonical segments)
  kLmHead,         // lm_head [vocab][hidden]: split by vocabulary rows
  kColumnBias,     // bq, bk, bv [rows]: split like the rows of their matrix, always f32
};

struct TensorSpec {
  std::string path;      // HDF5 dataset path, e.g. "/layers/3/attn/wq"
  TensorRole role;
  int layer;             // -1 for tensors outside the layers
  std::vector<int64_t> shape;  // [rows][cols] (torch Linear: out x in) or [n]
};

// All tensors of a model in file order: tok_embeddings, then per layer
// attn_norm, attn/wq, attn/wk, attn/wv, (with qkv_bias: attn/bq, attn/bk,
// attn/bv,) attn/wo, ffn_norm, ffn/w_gate, ffn/w_up, ffn/w_down, then norm
// and (unless tied) lm_head.
std::vector<TensorSpec> ModelTensors(const ModelConfig& config);

// Tensors that are f32 whatever the weight dtype: norms and biases.
inline bool IsF32Tensor(TensorRole role) {
  return role == TensorRole::kNorm || role == TensorRole::kColumnBias;
}

// Dataset paths, for code that needs one tensor by name.
std::string LayerTensorPath(int layer, std::string_view name);  // "/layers/{layer}/{name}"
inline constexpr std::string_view kEmbeddingPath = "/tok_embeddings";
inline constexpr std::string_view kFinalNormPath = "/norm";
inline constexpr std::string_view kLmHeadPath = "/lm_head";

}  // namespace lockstep::partitioner
