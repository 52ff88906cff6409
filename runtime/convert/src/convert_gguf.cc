// GGUF files of architecture "llama" (ggml's docs/gguf.md; the reader is
// runtime/gguf.h). Only the directory and metadata come from GgufFile; the
// tensor data are read with pread at data_offset() + offset, so that the
// conversion's resident memory does not grow with the file (GgufFile maps
// the file, and every touched page of a mapping counts as resident).
//
// llama.cpp's converter stores wq/wk with rows permuted into the
// interleaved RoPE layout (its rope mode 0 rotates neighbours 2j, 2j+1), so
// this source is RopeLayout::kInterleaved.
#include <fmt/format.h>

#include <cmath>
#include <map>
#include <set>

#include "checkpoint.h"
#include "lockstep/formats/gguf.h"

namespace lockstep::runtime {
namespace {

using partitioner::TensorSpec;

std::string GgufName(const TensorSpec& spec) {
  if (spec.path == partitioner::kEmbeddingPath) return "token_embd.weight";
  if (spec.path == partitioner::kFinalNormPath) return "output_norm.weight";
  if (spec.path == partitioner::kLmHeadPath) return "output.weight";
  static const std::map<std::string, std::string> kLayerNames = {
      {"attn_norm", "attn_norm"}, {"attn/wq", "attn_q"},      {"attn/wk", "attn_k"},
      {"attn/wv", "attn_v"},      {"attn/wo", "attn_output"}, {"ffn_norm", "ffn_norm"},
      {"ffn/w_gate", "ffn_gate"}, {"ffn/w_up", "ffn_up"},     {"ffn/w_down", "ffn_down"}};
  const std::string prefix = fmt::format("/layers/{}/", spec.layer);
  return fmt::format("blk.{}.{}.weight", spec.layer,
                     kLayerNames.at(spec.path.substr(prefix.size())));
}

// An integer key that must be present, as int.
Result<int> RequiredInt(const GgufFile& gguf, const std::string& key) {
  if (gguf.Find(key) == nullptr) {
    return NotFound("{}: GGUF key '{}' is missing (required for a llama model)", gguf.path(), key);
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

// Features of the metadata that lockstep's Llama does not compute: refused.
Status CheckUnsupported(const GgufFile& gguf, int head_dim) {
  const std::string& path = gguf.path();
  if (gguf.Find("llama.rope.scaling.type") != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::string type, gguf.GetString("llama.rope.scaling.type"));
    if (type != "none") {
      return InvalidArgument(
          "{}: GGUF key 'llama.rope.scaling.type' is '{}': rope scaling is not supported "
          "(lockstep implements plain RoPE)",
          path, type);
    }
  }
  for (const char* key : {"llama.rope.scale_linear", "llama.rope.scaling.factor"}) {
    if (gguf.Find(key) == nullptr) continue;
    LOCKSTEP_ASSIGN_OR_RETURN(double scale, gguf.GetFloat(key));
    if (scale != 1.0 && scale != 0.0) {
      return InvalidArgument("{}: GGUF key '{}' is {}: rope scaling is not supported", path, key,
                             scale);
    }
  }
  if (gguf.FindTensor("rope_freqs.weight") != nullptr) {
    return InvalidArgument(
        "{}: tensor 'rope_freqs.weight' (Llama 3.1 style rope scaling) is not supported: "
        "lockstep implements plain RoPE",
        path);
  }
  if (gguf.Find("llama.expert_count") != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(int64_t experts, gguf.GetInt("llama.expert_count"));
    if (experts > 0) {
      return InvalidArgument(
          "{}: GGUF key 'llama.expert_count' is {}: mixture-of-experts models "
          "are not supported",
          path, experts);
    }
  }
  if (gguf.Find("llama.rope.dimension_count") != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(int64_t rotary, gguf.GetInt("llama.rope.dimension_count"));
    if (rotary != head_dim) {
      return InvalidArgument(
          "{}: GGUF key 'llama.rope.dimension_count' is {} but the head size is {}: partial "
          "rotary embeddings are not supported",
          path, rotary, head_dim);
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
  ckpt.rope_layout = RopeLayout::kInterleaved;

  if (gguf.Find("general.architecture") == nullptr) {
    return NotFound("{}: GGUF key 'general.architecture' is missing", path);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(std::string arch, gguf.GetString("general.architecture"));
  if (arch != "llama") {
    return InvalidArgument("{}: general.architecture is '{}', only 'llama' is supported", path,
                           arch);
  }
  partitioner::ModelConfig& c = ckpt.config;
  if (gguf.Find("general.name") != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(c.name, gguf.GetString("general.name"));
  }
  LOCKSTEP_ASSIGN_OR_RETURN(int hidden, RequiredInt(gguf, "llama.embedding_length"));
  c.hidden_size = hidden;
  LOCKSTEP_ASSIGN_OR_RETURN(int ffn, RequiredInt(gguf, "llama.feed_forward_length"));
  c.intermediate_size = ffn;
  LOCKSTEP_ASSIGN_OR_RETURN(c.num_layers, RequiredInt(gguf, "llama.block_count"));
  LOCKSTEP_ASSIGN_OR_RETURN(c.num_heads, RequiredInt(gguf, "llama.attention.head_count"));
  LOCKSTEP_ASSIGN_OR_RETURN(c.num_kv_heads,
                            OptionalInt(gguf, "llama.attention.head_count_kv", c.num_heads));
  LOCKSTEP_ASSIGN_OR_RETURN(int context, RequiredInt(gguf, "llama.context_length"));
  c.max_position_embeddings = context;
  if (gguf.Find("llama.attention.key_length") == nullptr && hidden % c.num_heads != 0) {
    return InvalidArgument(
        "{}: llama.embedding_length {} is not a multiple of llama.attention.head_count {} and "
        "there is no llama.attention.key_length",
        path, hidden, c.num_heads);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(c.head_dim,
                            OptionalInt(gguf, "llama.attention.key_length", hidden / c.num_heads));
  LOCKSTEP_ASSIGN_OR_RETURN(int value_length,
                            OptionalInt(gguf, "llama.attention.value_length", c.head_dim));
  if (value_length != c.head_dim) {
    return InvalidArgument(
        "{}: llama.attention.value_length {} differs from key_length {}; not supported", path,
        value_length, c.head_dim);
  }
  if (gguf.Find("llama.attention.layer_norm_rms_epsilon") == nullptr) {
    return NotFound("{}: GGUF key 'llama.attention.layer_norm_rms_epsilon' is missing", path);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(c.rms_norm_eps,
                            gguf.GetFloat("llama.attention.layer_norm_rms_epsilon"));
  if (gguf.Find("llama.rope.freq_base") != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(c.rope_theta, gguf.GetFloat("llama.rope.freq_base"));
  }
  for (auto [key, value] : {std::pair{"llama.attention.layer_norm_rms_epsilon", c.rms_norm_eps},
                            std::pair{"llama.rope.freq_base", c.rope_theta}}) {
    if (!std::isfinite(value) || value <= 0) {
      return InvalidArgument("{}: GGUF key '{}' is {}; it must be a finite positive number", path,
                             key, value);
    }
  }
  LOCKSTEP_RETURN_IF_ERROR(CheckUnsupported(gguf, c.head_dim));

  const GgufTensorInfo* embedding = gguf.FindTensor("token_embd.weight");
  if (embedding == nullptr) {
    return NotFound("{}: tensor 'token_embd.weight' is missing", path);
  }
  if (gguf.Find("llama.vocab_size") != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(int vocab, RequiredInt(gguf, "llama.vocab_size"));
    c.vocab_size = vocab;
  } else if (embedding->dims.size() == 2) {
    c.vocab_size = embedding->dims[1];
  }
  c.tie_word_embeddings = gguf.FindTensor("output.weight") == nullptr;
  c.bos_token_id = -1;
  c.eos_token_id = -1;
  for (auto [key, field] : {std::pair{"tokenizer.ggml.bos_token_id", &c.bos_token_id},
                            std::pair{"tokenizer.ggml.eos_token_id", &c.eos_token_id}}) {
    if (gguf.Find(key) == nullptr) continue;
    LOCKSTEP_ASSIGN_OR_RETURN(int64_t id, gguf.GetInt(key));
    if (id < INT32_MIN || id > INT32_MAX) {
      return InvalidArgument("{}: GGUF key '{}' is {}", path, key, id);
    }
    *field = static_cast<int32_t>(id);
  }
  if (Status valid = c.Validate(); !valid.ok()) return valid.WithContext(ckpt.config_source);

  LOCKSTEP_ASSIGN_OR_RETURN(InputFile file, InputFile::Open(path));
  ckpt.files.push_back(std::make_unique<InputFile>(std::move(file)));
  const InputFile* data = ckpt.files.back().get();
  std::set<std::string> used;
  for (const TensorSpec& spec : partitioner::ModelTensors(c)) {
    const std::string name = GgufName(spec);
    const GgufTensorInfo* t = gguf.FindTensor(name);
    if (t == nullptr) {
      return NotFound("{}: tensor '{}' is missing (needed for {})", path, name, spec.path);
    }
    SourceTensor source;
    source.name = name;
    source.file = data;
    LOCKSTEP_ASSIGN_OR_RETURN(source.encoding, EncodingOf(gguf, *t));
    source.shape.assign(t->dims.rbegin(), t->dims.rend());  // ggml ne[0] is the column count
    source.offset = gguf.data_offset() + t->offset;
    ckpt.tensors[spec.path] = std::move(source);
    used.insert(name);
  }
  for (const GgufTensorInfo& t : gguf.tensors()) {
    if (!used.contains(t.name)) ckpt.unused.push_back(t.name);
  }
  if (gguf.Find("tokenizer.ggml.model") != nullptr) ckpt.tokenizer_file = path;
  return ckpt;
}

}  // namespace lockstep::runtime
