// The model families (model_family.h) through the config reader: each
// family's published config.json gives its preset, the presets match the
// published parameter counts, and what no family computes is refused with
// one line naming the file, the field and the value.
#include "lockstep/partitioner/model_family.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "lockstep/partitioner/model_config.h"
#include "lockstep/partitioner/sharding.h"

namespace lockstep::partitioner {
namespace {

using nlohmann::json;

ModelConfig Preset(std::string_view name) {
  Result<ModelConfig> config = ModelPreset(name);
  EXPECT_TRUE(config.ok()) << name << ": " << config.status().message();
  return config.ok() ? *config : ModelConfig{};
}

ModelConfig Parse(const json& j) {
  Result<ModelConfig> config = ModelConfigFromHfJson(j, "config.json");
  EXPECT_TRUE(config.ok()) << config.status().message();
  ModelConfig c = config.ok() ? *config : ModelConfig{};
  c.name = "";
  return c;
}

ModelConfig Unnamed(ModelConfig c) {
  c.name = "";
  return c;
}

// meta-llama/Llama-3.1-8B config.json, as published.
const char* kLlama31_8B = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
  "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072,
  "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
  "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256})";

// meta-llama/Llama-3.2-1B: tied embeddings, factor 32, head_dim given.
const char* kLlama32_1B = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu",
  "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
  "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": 128256})";

// Qwen/Qwen2.5-7B-Instruct.
const char* kQwen25_7B = R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 3584, "initializer_range": 0.02,
  "intermediate_size": 18944, "max_position_embeddings": 32768, "max_window_layers": 28,
  "model_type": "qwen2", "num_attention_heads": 28, "num_hidden_layers": 28,
  "num_key_value_heads": 4, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
  "sliding_window": 131072, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.1", "use_cache": true, "use_sliding_window": false,
  "vocab_size": 152064})";

// mistralai/Mistral-7B-v0.1 (sliding window) and -v0.3 (none).
const char* kMistral7B = R"({
  "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
  "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.34.0.dev0",
  "use_cache": true, "vocab_size": 32000})";
const char* kMistral7B_v03 = R"({
  "architectures": ["MistralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1,
  "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
  "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "sliding_window": null,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.42.0.dev0",
  "use_cache": true, "vocab_size": 32768})";

// microsoft/Phi-3-mini-4k-instruct (auto_map left out).
const char* kPhi3Mini = R"({
  "_name_or_path": "Phi-3-mini-4k-instruct", "architectures": ["Phi3ForCausalLM"],
  "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 1, "embd_pdrop": 0.0,
  "eos_token_id": 32000, "hidden_act": "silu", "hidden_size": 3072, "initializer_range": 0.02,
  "intermediate_size": 8192, "max_position_embeddings": 4096, "model_type": "phi3",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
  "original_max_position_embeddings": 4096, "pad_token_id": 32000, "resid_pdrop": 0.0,
  "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 10000.0, "sliding_window": 2047,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.40.2",
  "use_cache": true, "vocab_size": 32064})";

TEST(ModelFamilyTest, PublishedConfigsGiveThePresets) {
  EXPECT_EQ(Parse(json::parse(kLlama31_8B)), Unnamed(Preset("llama-3.1-8b")));
  EXPECT_EQ(Parse(json::parse(kLlama32_1B)), Unnamed(Preset("llama-3.2-1b")));
  EXPECT_EQ(Parse(json::parse(kQwen25_7B)), Unnamed(Preset("qwen2.5-7b")));
  EXPECT_EQ(Parse(json::parse(kMistral7B)), Unnamed(Preset("mistral-7b")));
  EXPECT_EQ(Parse(json::parse(kMistral7B_v03)), Unnamed(Preset("mistral-7b-v0.3")));
  EXPECT_EQ(Parse(json::parse(kPhi3Mini)), Unnamed(Preset("phi-3-mini")));

  const ModelConfig llama = Parse(json::parse(kLlama31_8B));
  EXPECT_EQ(llama.architecture, "llama");
  EXPECT_EQ(llama.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_EQ(llama.rope_scaling.factor, 8.0);
  EXPECT_EQ(llama.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(llama.ContextLength(), 131072);
  const ModelConfig qwen = Parse(json::parse(kQwen25_7B));
  EXPECT_EQ(qwen.architecture, "qwen2");
  EXPECT_TRUE(qwen.qkv_bias);
  EXPECT_EQ(qwen.sliding_window, 0);  // use_sliding_window false
  EXPECT_EQ(Parse(json::parse(kMistral7B)).sliding_window, 4096);
  EXPECT_EQ(Parse(json::parse(kMistral7B_v03)).sliding_window, 0);
  EXPECT_EQ(Parse(json::parse(kPhi3Mini)).sliding_window, 2047);
  EXPECT_TRUE(Parse(json::parse(kLlama32_1B)).tie_word_embeddings);
}

// Phi-3.5-mini's shape of config: longrope with 48-entry factor lists and
// the pretrained context at the top level (factor values made up here).
TEST(ModelFamilyTest, Phi35LongRope) {
  json j = json::parse(kPhi3Mini);
  std::vector<double> short_factor(48), long_factor(48);
  for (int i = 0; i < 48; ++i) {
    short_factor[i] = 1.0 + i * 0.01;
    long_factor[i] = 1.0 + i * 0.5;
  }
  j["max_position_embeddings"] = 131072;
  j["sliding_window"] = 262144;
  j["rope_scaling"] = {
      {"long_factor", long_factor}, {"short_factor", short_factor}, {"type", "longrope"}};
  const ModelConfig c = Parse(j);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLongRope);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_EQ(c.rope_scaling.factor, 32.0);
  // transformers: sqrt(1 + ln(131072 / 4096) / ln(4096)).
  EXPECT_DOUBLE_EQ(c.rope_scaling.attention_factor,
                   std::sqrt(1.0 + std::log(32.0) / std::log(4096.0)));
  EXPECT_EQ(c.rope_scaling.long_factor, long_factor);
  EXPECT_EQ(c.ContextLength(), 131072);
  j["rope_scaling"]["type"] = "su";  // the older name
  EXPECT_EQ(Parse(j), c);
}

// The figures published for the models (safetensors metadata / model cards).
TEST(ModelFamilyTest, PresetsMatchThePublishedParameterCounts) {
  EXPECT_EQ(Preset("llama-3.1-8b").NumParameters(), 8'030'261'248);
  EXPECT_EQ(Preset("llama-3.1-70b").NumParameters(), 70'553'706'496);
  EXPECT_EQ(Preset("llama-3.2-1b").NumParameters(), 1'235'814'400);  // tied
  EXPECT_EQ(Preset("llama-3.2-3b").NumParameters(), 3'212'749'824);  // tied
  EXPECT_EQ(Preset("qwen2.5-7b").NumParameters(), 7'615'616'512);    // with q/k/v biases
  EXPECT_EQ(Preset("qwen2.5-72b").NumParameters(), 72'706'203'648);
  EXPECT_EQ(Preset("mistral-7b").NumParameters(), 7'241'732'096);
  EXPECT_EQ(Preset("phi-3-mini").NumParameters(), 3'821'079'552);
}

TEST(ModelFamilyTest, EveryFamilyPresetSplitsAndRoundTrips) {
  for (const char* name :
       {"llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "qwen2.5-7b", "qwen2.5-72b",
        "mistral-7b", "phi-3-mini", "tiny-llama3", "tiny-qwen2", "tiny-mistral", "tiny-phi3"}) {
    const ModelConfig c = Preset(name);
    EXPECT_TRUE(c.Validate().ok()) << name << ": " << c.Validate().message();
    EXPECT_TRUE(c.NeedsFormatV2()) << name;
    EXPECT_GE(ValidTensorParallelSizes(c).size(), 2u) << name;
    Result<ModelConfig> back = ModelConfigFromHfJson(ModelConfigToHfJson(c), "x");
    ASSERT_TRUE(back.ok()) << name << ": " << back.status().message();
    EXPECT_EQ(*back, c) << name;
  }
  // Plain Llama's JSON, and so every existing plan's fingerprint, is unchanged.
  EXPECT_FALSE(Preset("tinyllama-1.1b").NeedsFormatV2());
  EXPECT_EQ(ModelConfigFingerprint(Preset("tinyllama-1.1b")), "094e080ad00664fa");
}

TEST(ModelFamilyTest, BiasesAreInTheInventoryAndSplitLikeTheirMatrices) {
  const ModelConfig c = Preset("tiny-qwen2");
  std::set<std::string> paths;
  int64_t total = 0;
  for (const TensorSpec& t : ModelTensors(c)) {
    paths.insert(t.path);
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    total += n;
    if (t.role == TensorRole::kColumnBias) {
      EXPECT_TRUE(IsF32Tensor(t.role));
      EXPECT_EQ(t.shape.size(), 1u);
    }
  }
  EXPECT_TRUE(paths.contains("/layers/3/attn/bq"));
  EXPECT_TRUE(paths.contains("/layers/3/attn/bk"));
  EXPECT_TRUE(paths.contains("/layers/3/attn/bv"));
  EXPECT_EQ(total, c.NumParameters());
  for (int tp : {2, 4, 8}) {
    for (int r = 0; r < tp; ++r) {
      const TpSlice slice = MakeTpSlice(c, tp, r);
      for (const TensorSpec& t : ModelTensors(c)) {
        if (t.role != TensorRole::kColumnBias) continue;
        const std::string matrix = t.path.substr(0, t.path.size() - 2) + "w" + t.path.back();
        const TensorSpec m{matrix, TensorRole::kColumnParallel, t.layer, {t.shape[0], 128}};
        const TensorShard bias = ShardTensor(c, t, slice, ElementType::kBF16);
        const TensorShard rows = ShardTensor(c, m, slice, ElementType::kBF16);
        EXPECT_EQ(bias.rows(), rows.rows()) << t.path << " tp " << tp << " rank " << r;
        EXPECT_EQ(bias.type, ElementType::kF32);
        EXPECT_EQ(bias.replicated, rows.replicated);
        EXPECT_EQ(bias.bytes, bias.count[0] * 4);
      }
    }
  }
}

TEST(ModelFamilyTest, FamilyTableIsConsistent) {
  for (const ModelFamily* f : ModelFamilies()) {
    EXPECT_EQ(FindFamily(f->name), f);
    for (std::string_view t : f->hf_model_types) EXPECT_EQ(FindFamilyByHfModelType(t), f);
    if (!f->gguf_architecture.empty()) {
      EXPECT_EQ(FindFamilyByGgufArchitecture(f->gguf_architecture), f);
    }
    // Every layer tensor of the family's models has a checkpoint name, in
    // Hugging Face's layout and in GGUF's.
    ModelConfig c = Preset("tiny");
    c.architecture = std::string(f->name);
    c.qkv_bias = f->qkv_bias;
    for (const CheckpointLayout* layout : {&f->hf, &f->gguf}) {
      if (layout->layer_prefix.empty()) continue;  // no GGUF architecture of its own
      for (const TensorSpec& t : ModelTensors(c)) {
        if (t.layer < 0) continue;
        const std::string local = t.path.substr(std::string("/layers/0/").size());
        bool found = false;
        for (const CheckpointTensor& ct : layout->layer_tensors) {
          for (std::string_view part : ct.parts) found |= part == local;
        }
        EXPECT_TRUE(found) << f->name << ": " << local;
      }
    }
  }
  EXPECT_EQ(FindFamilyByHfModelType("gemma"), nullptr);
  EXPECT_EQ(CheckpointLayerTensorName(FindFamily("phi3")->hf, 7, "self_attn.qkv_proj.weight"),
            "model.layers.7.self_attn.qkv_proj.weight");
}

struct Refused {
  const char* what;
  const char* base;
  json patch;  // merged; null deletes
  const char* mentions;
};

TEST(ModelFamilyTest, WhatNoFamilyComputesIsRefusedWithOneLine) {
  const std::vector<Refused> cases = {
      {"model_type",
       kLlama31_8B,
       {{"model_type", "gemma"}},
       "model_type \"gemma\" is not supported (supported: llama, qwen2, mistral, phi3)"},
      {"activation", kLlama31_8B, {{"hidden_act", "gelu"}}, "hidden_act \"gelu\" is not supported"},
      {"attention_bias", kLlama31_8B, {{"attention_bias", true}}, "attention_bias true"},
      {"mlp_bias", kLlama31_8B, {{"mlp_bias", true}}, "mlp_bias true"},
      {"partial_rotary",
       kPhi3Mini,
       {{"partial_rotary_factor", 0.75}},
       "partial_rotary_factor 0.75"},
      {"rope_type",
       kLlama31_8B,
       {{"rope_scaling", {{"rope_type", "foo"}}}},
       "rope_scaling.type \"foo\" is not supported (supported: default, linear, dynamic, yarn, "
       "llama3, longrope (or su))"},
      {"rope_type_old_key",
       kLlama31_8B,
       {{"rope_scaling", {{"rope_type", nullptr}, {"type", "mrope"}}}},
       "rope_scaling.type \"mrope\" is not supported"},
      {"llama3_field",
       kLlama31_8B,
       {{"rope_scaling", {{"low_freq_factor", nullptr}}}},
       "rope_scaling.low_freq_factor is missing (rope_scaling.type \"llama3\" needs it)"},
      {"llama3_order",
       kLlama31_8B,
       {{"rope_scaling", {{"low_freq_factor", 4.0}}}},
       "high_freq_factor (4) must be greater than low_freq_factor (4)"},
      {"factor_type",
       kLlama31_8B,
       {{"rope_scaling", {{"factor", "eight"}}}},
       "rope_scaling.factor must be a number, got \"eight\""},
      {"negative_factor",
       kLlama31_8B,
       {{"rope_scaling", {{"rope_type", "linear"}, {"factor", -2.0}}}},
       "rope_scaling.factor"},
      {"longrope_length",
       kPhi3Mini,
       {{"rope_scaling",
         {{"type", "longrope"}, {"short_factor", {1.0, 1.0}}, {"long_factor", {1.0}}}}},
       "rope_scaling.short_factor has 2 entries, expected head_dim/2 = 48"},
      {"rope_scaling_string",
       kLlama31_8B,
       {{"rope_scaling", "llama3"}},
       "rope_scaling must be an object or null"},
      {"qwen2_windows", kQwen25_7B, {{"use_sliding_window", true}}, "use_sliding_window true"},
      {"window_type",
       kMistral7B,
       {{"sliding_window", "4k"}},
       "sliding_window must be a positive integer or null, got \"4k\""},
  };
  for (const Refused& c : cases) {
    json j = json::parse(c.base);
    j.merge_patch(c.patch);
    Result<ModelConfig> config = ModelConfigFromHfJson(j, "dir/config.json");
    ASSERT_FALSE(config.ok()) << c.what;
    const std::string& message = config.status().message();
    EXPECT_EQ(message.rfind("dir/config.json: ", 0), 0u) << c.what << ": " << message;
    EXPECT_NE(message.find(c.mentions), std::string::npos) << c.what << ": " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << c.what << ": " << message;
  }
}

// The family fixes what a config may say, whatever wrote it.
TEST(ModelFamilyTest, ValidateHoldsTheFamilyToItsFeatures) {
  ModelConfig c = Preset("tiny");
  c.qkv_bias = true;
  EXPECT_NE(c.Validate().message().find("has no q/k/v biases"), std::string::npos);
  c = Preset("tiny");
  c.sliding_window = 64;
  EXPECT_NE(c.Validate().message().find("no sliding-window attention"), std::string::npos);
  c.architecture = "mistral";
  EXPECT_TRUE(c.Validate().ok());
  c.architecture = "gemma";
  EXPECT_NE(c.Validate().message().find("architecture 'gemma' is not supported"),
            std::string::npos);
}

}  // namespace
}  // namespace lockstep::partitioner
