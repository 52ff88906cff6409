// GGUF files (ggml's docs/gguf.md; the reader is formats/gguf.h) of the
// architectures a family of partitioner/model_family.h names: llama, qwen2,
// phi3. The config comes from the "<arch>." metadata, rope scaling from the
// metadata and the small f32 tensors llama.cpp's converter adds for it
// (rope_freqs for Llama 3.1, rope_factors_long/short for Phi-3); the tensor
// names and fused tensors from the family's GGUF layout. Only the directory
// and metadata come from GgufFile; the tensor data are read with pread at
// data_offset() + offset, so that the conversion's resident memory does not
// grow with the file (GgufFile maps the file, and every touched page of a
// mapping counts as resident).
//
// llama.cpp's converter stores wq/wk of the llama architecture with rows
// permuted into the interleaved RoPE layout (its rope mode 0 rotates
// neighbours 2j, 2j+1), so that source is RopeLayout::kInterleaved; qwen2 and
// phi3 use rope mode NEOX (rotate-half) and are stored as Hugging Face has
// them.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "checkpoint.h"
#include "lockstep/formats/gguf.h"

namespace lockstep::runtime {
namespace {

// An integer key that must be present, as int.
Result<int> RequiredInt(const GgufFile& gguf, const std::string& key) {
  if (gguf.Find(key) == nullptr) {
    return NotFound("{}: GGUF key '{}' is missing", gguf.path(), key);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(int64_t value, gguf.GetInt(key));
  if (value <= 0 || value > INT32_MAX) {
    return InvalidArgument("{}: GGUF key '{}' is {}, expected a positive 32-bit count", gguf.path(),
                           key, value);
  }
  return static_cast<int>(value);
}

Result<int> OptionalInt(const GgufFile& gguf, const std::string& key, int fallback) {
  if (gguf.Find(key) == nullptr) return fallback;
  return RequiredInt(gguf, key);
}

// A small f32 tensor's values (the rope factor vectors), checked to hold
// `count` values.
Result<std::vector<double>> ReadF32Vector(const GgufFile& gguf, const GgufTensorInfo& t,
                                          int64_t count) {
  if (t.ggml_type != kGgmlTypeF32 || t.dims.size() != 1 || t.dims[0] != count) {
    std::optional<GgmlTypeInfo> info = FindGgmlType(t.ggml_type);
    return InvalidArgument(
        "{}: tensor '{}' must be F32 [{}] (head_dim / 2), got {} with {} dims", gguf.path(), t.name,
        count, info ? std::string(info->name) : fmt::format("#{}", t.ggml_type), t.dims.size());
  }
  const std::span<const uint8_t> bytes = gguf.TensorData(t);
  std::vector<double> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    float v;
    std::memcpy(&v, bytes.data() + 4 * i, 4);
    values[static_cast<size_t>(i)] = v;
  }
  return values;
}

// Rope scaling from the metadata and tensors llama.cpp writes:
//   <arch>.rope.scaling.type linear + .factor (or the old .rope.scale_linear)
//   <arch>.rope.scaling.type yarn + .factor, .original_context_length,
//       .attn_factor (llama.cpp multiplies cos/sin by it and by 0.1 ln(factor) + 1)
//   rope_freqs.weight: Llama 3.1's divisors (llama3)
//   rope_factors_short/long.weight + .original_context_length, .attn_factor:
//       Phi-3's longrope
// Refused: other types, a linear factor with rope_freqs, partial rotary.
Status ReadRopeScaling(const GgufFile& gguf, const std::string& arch, partitioner::ModelConfig* c) {
  const std::string& path = gguf.path();
  auto key = [&](const char* suffix) { return arch + suffix; };
  partitioner::RopeScaling& s = c->rope_scaling;
  std::string type = "none";
  if (gguf.Find(key(".rope.scaling.type")) != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(type, gguf.GetString(key(".rope.scaling.type")));
  }
  double factor = 0.0;
  for (const std::string& k : {key(".rope.scaling.factor"), key(".rope.scale_linear")}) {
    if (gguf.Find(k) != nullptr) {
      LOCKSTEP_ASSIGN_OR_RETURN(factor, gguf.GetFloat(k));
      break;
    }
  }
  int64_t original = 0;
  if (gguf.Find(key(".rope.scaling.original_context_length")) != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(original, gguf.GetInt(key(".rope.scaling.original_context_length")));
    if (original <= 0) {
      return InvalidArgument("{}: GGUF key '{}' is {}, expected a positive context length", path,
                             key(".rope.scaling.original_context_length"), original);
    }
  }
  double attn_factor = 1.0;
  if (gguf.Find(key(".rope.scaling.attn_factor")) != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(attn_factor, gguf.GetFloat(key(".rope.scaling.attn_factor")));
  }
  const int64_t half = c->head_dim / 2;
  const GgufTensorInfo* freqs = gguf.FindTensor("rope_freqs.weight");
  const GgufTensorInfo* long_factors = gguf.FindTensor("rope_factors_long.weight");
  const GgufTensorInfo* short_factors = gguf.FindTensor("rope_factors_short.weight");

  if (long_factors != nullptr || short_factors != nullptr) {
    if (long_factors == nullptr || short_factors == nullptr) {
      return InvalidArgument(
          "{}: tensor '{}' without '{}': longrope needs both rope_factors_long and "
          "rope_factors_short",
          path, long_factors != nullptr ? long_factors->name : short_factors->name,
          long_factors != nullptr ? "rope_factors_short.weight" : "rope_factors_long.weight");
    }
    s.type = partitioner::RopeScalingType::kLongRope;
    LOCKSTEP_ASSIGN_OR_RETURN(s.long_factor, ReadF32Vector(gguf, *long_factors, half));
    LOCKSTEP_ASSIGN_OR_RETURN(s.short_factor, ReadF32Vector(gguf, *short_factors, half));
    s.original_max_position_embeddings = original > 0 ? original : c->max_position_embeddings;
    s.factor = std::max(1.0, static_cast<double>(c->max_position_embeddings) /
                                 static_cast<double>(s.original_max_position_embeddings));
    s.attention_factor = attn_factor;
    return Status::Ok();
  }
  if (freqs != nullptr) {
    if (type != "none" && !(type == "linear" && (factor == 0.0 || factor == 1.0))) {
      return InvalidArgument(
          "{}: tensor 'rope_freqs.weight' together with GGUF key '{}' = \"{}\" is not supported",
          path, key(".rope.scaling.type"), type);
    }
    s.type = partitioner::RopeScalingType::kLlama3;
    LOCKSTEP_ASSIGN_OR_RETURN(s.frequency_factors, ReadF32Vector(gguf, *freqs, half));
    s.factor = *std::max_element(s.frequency_factors.begin(), s.frequency_factors.end());
    return Status::Ok();
  }
  if (type == "none" || ((type == "linear") && (factor == 0.0 || factor == 1.0))) {
    return Status::Ok();  // llama.cpp's default: linear with factor 1
  }
  if (type == "linear") {
    s.type = partitioner::RopeScalingType::kLinear;
    s.factor = factor;
    return Status::Ok();
  }
  if (type == "yarn") {
    if (factor <= 0.0) {
      return InvalidArgument("{}: GGUF key '{}' is missing or not positive (yarn needs it)", path,
                             key(".rope.scaling.factor"));
    }
    s.type = partitioner::RopeScalingType::kYarn;
    s.factor = factor;
    s.original_max_position_embeddings = original > 0 ? original : c->max_position_embeddings;
    s.attention_factor = attn_factor * (factor > 1.0 ? 0.1 * std::log(factor) + 1.0 : 1.0);
    return Status::Ok();
  }
  return InvalidArgument(
      "{}: GGUF key '{}' is \"{}\", not supported (supported: none, linear, yarn; llama3 and "
      "longrope come as rope_freqs / rope_factors tensors)",
      path, key(".rope.scaling.type"), type);
}

// Features of the metadata that no family of lockstep computes: refused.
Status CheckUnsupported(const GgufFile& gguf, const std::string& arch, int head_dim) {
  const std::string& path = gguf.path();
  const std::string experts = arch + ".expert_count";
  if (gguf.Find(experts) != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(int64_t count, gguf.GetInt(experts));
    if (count > 0) {
      return InvalidArgument("{}: GGUF key '{}' is {}: mixture-of-experts models are not supported",
                             path, experts, count);
    }
  }
  const std::string rotary = arch + ".rope.dimension_count";
  if (gguf.Find(rotary) != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(int64_t dims, gguf.GetInt(rotary));
    if (dims != head_dim) {
      return InvalidArgument(
          "{}: GGUF key '{}' is {} but the head size is {}: partial rotary embeddings are not "
          "supported",
          path, rotary, dims, head_dim);
    }
  }
  return Status::Ok();
}

Result<SourceEncoding> EncodingOf(const GgufFile& gguf, const GgufTensorInfo& t) {
  switch (t.ggml_type) {
    case kGgmlTypeF32:
      return SourceEncoding::kF32;
    case kGgmlTypeF16:
      return SourceEncoding::kF16;
    case kGgmlTypeBF16:
      return SourceEncoding::kBF16;
    case kGgmlTypeQ8_0:
      return SourceEncoding::kQ8_0;
    case kGgmlTypeQ4_0:
      return SourceEncoding::kQ4_0;
    default:
      break;
  }
  std::optional<GgmlTypeInfo> info = FindGgmlType(t.ggml_type);
  return InvalidArgument(
      "{}: tensor '{}' has type {}; only F32, F16, BF16, Q8_0 and Q4_0 are read (K-quants and "
      "the other ggml types are not: make the GGUF with llama-quantize --pure Q8_0 or Q4_0, or "
      "convert an F16/F32 GGUF with --dtype q8_0 or q4_0)",
      gguf.path(), t.name, info ? std::string(info->name) : fmt::format("#{}", t.ggml_type));
}

}  // namespace

Result<Checkpoint> OpenGgufCheckpoint(const std::string& path) {
  LOCKSTEP_ASSIGN_OR_RETURN(GgufFile gguf, GgufFile::Open(path));
  Checkpoint ckpt;
  ckpt.source = path;
  ckpt.config_source = fmt::format("the GGUF metadata of {}", path);

  if (gguf.Find("general.architecture") == nullptr) {
    return NotFound("{}: GGUF key 'general.architecture' is missing", path);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(std::string arch, gguf.GetString("general.architecture"));
  const partitioner::ModelFamily* family = partitioner::FindFamilyByGgufArchitecture(arch);
  if (family == nullptr) {
    return InvalidArgument("{}: general.architecture \"{}\" is not supported (supported: {})", path,
                           arch, partitioner::GgufArchitectureNames());
  }
  ckpt.rope_layout = family->gguf_interleaved_rope ? RopeLayout::kInterleaved : RopeLayout::kHalf;
  auto key = [&](const char* suffix) { return arch + suffix; };
  partitioner::ModelConfig& c = ckpt.config;
  c.architecture = std::string(family->name);
  c.qkv_bias = family->qkv_bias;
  if (gguf.Find("general.name") != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(c.name, gguf.GetString("general.name"));
  }
  LOCKSTEP_ASSIGN_OR_RETURN(int hidden, RequiredInt(gguf, key(".embedding_length")));
  c.hidden_size = hidden;
  LOCKSTEP_ASSIGN_OR_RETURN(int ffn, RequiredInt(gguf, key(".feed_forward_length")));
  c.intermediate_size = ffn;
  LOCKSTEP_ASSIGN_OR_RETURN(c.num_layers, RequiredInt(gguf, key(".block_count")));
  LOCKSTEP_ASSIGN_OR_RETURN(c.num_heads, RequiredInt(gguf, key(".attention.head_count")));
  LOCKSTEP_ASSIGN_OR_RETURN(c.num_kv_heads,
                            OptionalInt(gguf, key(".attention.head_count_kv"), c.num_heads));
  LOCKSTEP_ASSIGN_OR_RETURN(int context, RequiredInt(gguf, key(".context_length")));
  c.max_position_embeddings = context;
  if (gguf.Find(key(".attention.key_length")) == nullptr && hidden % c.num_heads != 0) {
    return InvalidArgument("{}: {} {} is not a multiple of {} {} and there is no {}", path,
                           key(".embedding_length"), hidden, key(".attention.head_count"),
                           c.num_heads, key(".attention.key_length"));
  }
  LOCKSTEP_ASSIGN_OR_RETURN(c.head_dim,
                            OptionalInt(gguf, key(".attention.key_length"), hidden / c.num_heads));
  LOCKSTEP_ASSIGN_OR_RETURN(int value_length,
                            OptionalInt(gguf, key(".attention.value_length"), c.head_dim));
  if (value_length != c.head_dim) {
    return InvalidArgument("{}: {} {} differs from key_length {}; not supported", path,
                           key(".attention.value_length"), value_length, c.head_dim);
  }
  if (gguf.Find(key(".attention.layer_norm_rms_epsilon")) == nullptr) {
    return NotFound("{}: GGUF key '{}' is missing", path, key(".attention.layer_norm_rms_epsilon"));
  }
  LOCKSTEP_ASSIGN_OR_RETURN(c.rms_norm_eps,
                            gguf.GetFloat(key(".attention.layer_norm_rms_epsilon")));
  if (gguf.Find(key(".rope.freq_base")) != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(c.rope_theta, gguf.GetFloat(key(".rope.freq_base")));
  }
  LOCKSTEP_RETURN_IF_ERROR(CheckUnsupported(gguf, arch, c.head_dim));
  if (c.head_dim > 0 && c.head_dim % 2 == 0) {
    LOCKSTEP_RETURN_IF_ERROR(ReadRopeScaling(gguf, arch, &c));
  }
  // The sliding window: llama.cpp reads <arch>.attention.sliding_window for
  // phi3 (0: none, as for Phi-4); Mistral v0.1 GGUFs (arch llama) carry none.
  if (family->sliding_window == partitioner::SlidingWindowKey::kSlidingWindow) {
    const std::string window_key = key(".attention.sliding_window");
    if (gguf.Find(window_key) == nullptr) {
      return NotFound(
          "{}: GGUF key '{}' is missing (files from llama.cpp before its PR 8931 lack it); "
          "convert from the Hugging Face folder instead",
          path, window_key);
    }
    LOCKSTEP_ASSIGN_OR_RETURN(c.sliding_window, gguf.GetInt(window_key));
  }
  for (const auto& [name, value] :
       {std::pair{key(".attention.layer_norm_rms_epsilon"), c.rms_norm_eps},
        std::pair{key(".rope.freq_base"), c.rope_theta}}) {
    if (!std::isfinite(value) || value <= 0) {
      return InvalidArgument("{}: GGUF key '{}' is {}; it must be a finite positive number", path,
                             name, value);
    }
  }

  const GgufTensorInfo* embedding = gguf.FindTensor(family->gguf.embedding);
  if (embedding == nullptr) {
    return NotFound("{}: tensor '{}' is missing", path, family->gguf.embedding);
  }
  if (gguf.Find(key(".vocab_size")) != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(int vocab, RequiredInt(gguf, key(".vocab_size")));
    c.vocab_size = vocab;
  } else if (embedding->dims.size() == 2) {
    c.vocab_size = embedding->dims[1];
  }
  c.tie_word_embeddings = gguf.FindTensor(family->gguf.lm_head) == nullptr;
  c.bos_token_id = -1;
  c.eos_token_id = -1;
  for (auto [key_name, field] : {std::pair{"tokenizer.ggml.bos_token_id", &c.bos_token_id},
                                 std::pair{"tokenizer.ggml.eos_token_id", &c.eos_token_id}}) {
    if (gguf.Find(key_name) == nullptr) continue;
    LOCKSTEP_ASSIGN_OR_RETURN(int64_t id, gguf.GetInt(key_name));
    if (id < INT32_MIN || id > INT32_MAX) {
      return InvalidArgument("{}: GGUF key '{}' is {}", path, key_name, id);
    }
    *field = static_cast<int32_t>(id);
  }
  if (Status valid = c.Validate(); !valid.ok()) return valid.WithContext(ckpt.config_source);

  LOCKSTEP_ASSIGN_OR_RETURN(InputFile file, InputFile::Open(path));
  ckpt.files.push_back(std::make_unique<InputFile>(std::move(file)));
  const InputFile* data = ckpt.files.back().get();
  std::map<std::string, SourceTensor> available;
  std::map<std::string, const GgufTensorInfo*> info_of;
  for (const GgufTensorInfo& t : gguf.tensors()) {
    SourceTensor source;
    source.name = t.name;
    source.file = data;
    source.shape.assign(t.dims.rbegin(), t.dims.rend());  // ggml ne[0] is the column count
    source.offset = gguf.data_offset() + t.offset;
    available[t.name] = std::move(source);
    info_of[t.name] = &t;
  }
  // The types first: slicing a fused tensor needs its encoding.
  for (auto& [name, source] : available) {
    Result<SourceEncoding> encoding = EncodingOf(gguf, *info_of.at(name));
    if (encoding.ok()) source.encoding = *encoding;
  }
  std::set<std::string> used;
  LOCKSTEP_RETURN_IF_ERROR(MapTensors(family->gguf, available, path, &ckpt, &used));
  for (const auto& [spec_path, source] : ckpt.tensors) {
    LOCKSTEP_RETURN_IF_ERROR(EncodingOf(gguf, *info_of.at(source.name)).status());
  }
  for (const GgufTensorInfo& t : gguf.tensors()) {
    if (used.contains(t.name)) continue;
    // The rope factor tensors became the config's rope scaling.
    if (t.name == "rope_freqs.weight" || t.name == "rope_factors_long.weight" ||
        t.name == "rope_factors_short.weight") {
      continue;
    }
    if (t.name.ends_with(".bias")) {
      return InvalidArgument(
          "{}: tensor '{}' is a bias, but architecture '{}' has none there; the file does not "
          "match its metadata",
          path, t.name, c.architecture);
    }
    ckpt.unused.push_back(t.name);
  }
  if (gguf.Find("tokenizer.ggml.model") != nullptr) ckpt.tokenizer_file = path;
  return ckpt;
}

}  // namespace lockstep::runtime
