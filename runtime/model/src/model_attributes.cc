// The model file's root attributes (model_attributes.h).
#include "model_attributes.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <climits>

#include "hdf5_attribute.h"

namespace lockstep::runtime {
namespace {

using partitioner::ModelConfig;

Result<int> ToInt(int64_t value, std::string_view file, const char* name) {
  if (value < INT_MIN || value > INT_MAX) {
    return InvalidArgument("{}: attribute '{}' is out of range: {}", file, name, value);
  }
  return static_cast<int>(value);
}

Result<int32_t> ReadTokenId(hid_t root, std::string_view file, const char* name) {
  LOCKSTEP_ASSIGN_OR_RETURN(int64_t value, ReadIntAttribute(root, file, name));
  return ToInt(value, file, name);
}

// The optional attributes of format version 2 (docs/model-format.md): absent
// means the version-1 meaning (no biases, no window, plain RoPE).
Status ReadVersion2Config(hid_t root, std::string_view file, partitioner::ModelConfig* c) {
  if (HasAttribute(root, "qkv_bias")) {
    LOCKSTEP_ASSIGN_OR_RETURN(c->qkv_bias, ReadBoolAttribute(root, file, "qkv_bias"));
  }
  if (HasAttribute(root, "sliding_window")) {
    LOCKSTEP_ASSIGN_OR_RETURN(c->sliding_window, ReadIntAttribute(root, file, "sliding_window"));
  }
  if (!HasAttribute(root, "rope_scaling_type")) return Status::Ok();
  partitioner::RopeScaling& s = c->rope_scaling;
  LOCKSTEP_ASSIGN_OR_RETURN(std::string type, ReadStringAttribute(root, file, "rope_scaling_type"));
  Result<partitioner::RopeScalingType> parsed = partitioner::ParseRopeScalingType(type);
  if (!parsed.ok()) {
    return InvalidArgument(
        "{}: attribute 'rope_scaling_type' is '{}' (known: none, linear, "
        "dynamic, yarn, llama3, longrope)",
        file, type);
  }
  s.type = *parsed;
  auto number = [&](const char* name, double* out) -> Status {
    if (!HasAttribute(root, name)) return Status::Ok();
    LOCKSTEP_ASSIGN_OR_RETURN(*out, ReadDoubleAttribute(root, file, name));
    return Status::Ok();
  };
  auto vector = [&](const char* name, std::vector<double>* out) -> Status {
    if (!HasAttribute(root, name)) return Status::Ok();
    LOCKSTEP_ASSIGN_OR_RETURN(*out, ReadDoubleArrayAttribute(root, file, name));
    return Status::Ok();
  };
  LOCKSTEP_RETURN_IF_ERROR(number("rope_scaling_factor", &s.factor));
  if (HasAttribute(root, "rope_scaling_original_max_position_embeddings")) {
    LOCKSTEP_ASSIGN_OR_RETURN(
        s.original_max_position_embeddings,
        ReadIntAttribute(root, file, "rope_scaling_original_max_position_embeddings"));
  }
  LOCKSTEP_RETURN_IF_ERROR(number("rope_scaling_low_freq_factor", &s.low_freq_factor));
  LOCKSTEP_RETURN_IF_ERROR(number("rope_scaling_high_freq_factor", &s.high_freq_factor));
  LOCKSTEP_RETURN_IF_ERROR(number("rope_scaling_beta_fast", &s.beta_fast));
  LOCKSTEP_RETURN_IF_ERROR(number("rope_scaling_beta_slow", &s.beta_slow));
  if (HasAttribute(root, "rope_scaling_truncate")) {
    LOCKSTEP_ASSIGN_OR_RETURN(s.truncate, ReadBoolAttribute(root, file, "rope_scaling_truncate"));
  }
  LOCKSTEP_RETURN_IF_ERROR(number("rope_scaling_attention_factor", &s.attention_factor));
  LOCKSTEP_RETURN_IF_ERROR(vector("rope_scaling_short_factor", &s.short_factor));
  LOCKSTEP_RETURN_IF_ERROR(vector("rope_scaling_long_factor", &s.long_factor));
  LOCKSTEP_RETURN_IF_ERROR(vector("rope_scaling_frequency_factors", &s.frequency_factors));
  return Status::Ok();
}

// Writes what ReadVersion2Config reads, each attribute only when it says
// something: a model without these features has exactly the version-1
// attributes.
Status WriteVersion2Config(hid_t root, std::string_view file, const partitioner::ModelConfig& c) {
  if (c.qkv_bias) LOCKSTEP_RETURN_IF_ERROR(WriteIntAttribute(root, file, "qkv_bias", 1));
  if (c.sliding_window > 0) {
    LOCKSTEP_RETURN_IF_ERROR(WriteIntAttribute(root, file, "sliding_window", c.sliding_window));
  }
  const partitioner::RopeScaling& s = c.rope_scaling;
  if (!s.active()) return Status::Ok();
  using partitioner::RopeScalingType;
  LOCKSTEP_RETURN_IF_ERROR(WriteStringAttribute(root, file, "rope_scaling_type",
                                                partitioner::RopeScalingTypeName(s.type)));
  LOCKSTEP_RETURN_IF_ERROR(WriteDoubleAttribute(root, file, "rope_scaling_factor", s.factor));
  if (s.original_max_position_embeddings > 0) {
    LOCKSTEP_RETURN_IF_ERROR(WriteIntAttribute(root, file,
                                               "rope_scaling_original_max_position_embeddings",
                                               s.original_max_position_embeddings));
  }
  if (s.type == RopeScalingType::kLlama3) {
    if (!s.frequency_factors.empty()) {
      LOCKSTEP_RETURN_IF_ERROR(WriteDoubleArrayAttribute(
          root, file, "rope_scaling_frequency_factors", s.frequency_factors));
    } else {
      LOCKSTEP_RETURN_IF_ERROR(
          WriteDoubleAttribute(root, file, "rope_scaling_low_freq_factor", s.low_freq_factor));
      LOCKSTEP_RETURN_IF_ERROR(
          WriteDoubleAttribute(root, file, "rope_scaling_high_freq_factor", s.high_freq_factor));
    }
  }
  if (s.type == RopeScalingType::kYarn) {
    LOCKSTEP_RETURN_IF_ERROR(
        WriteDoubleAttribute(root, file, "rope_scaling_beta_fast", s.beta_fast));
    LOCKSTEP_RETURN_IF_ERROR(
        WriteDoubleAttribute(root, file, "rope_scaling_beta_slow", s.beta_slow));
    LOCKSTEP_RETURN_IF_ERROR(
        WriteIntAttribute(root, file, "rope_scaling_truncate", s.truncate ? 1 : 0));
  }
  if (s.type == RopeScalingType::kYarn || s.type == RopeScalingType::kLongRope) {
    LOCKSTEP_RETURN_IF_ERROR(
        WriteDoubleAttribute(root, file, "rope_scaling_attention_factor", s.attention_factor));
  }
  if (s.type == RopeScalingType::kLongRope) {
    LOCKSTEP_RETURN_IF_ERROR(
        WriteDoubleArrayAttribute(root, file, "rope_scaling_short_factor", s.short_factor));
    LOCKSTEP_RETURN_IF_ERROR(
        WriteDoubleArrayAttribute(root, file, "rope_scaling_long_factor", s.long_factor));
  }
  return Status::Ok();
}

}  // namespace

int ModelFormatVersionFor(const partitioner::ModelConfig& c) {
  return c.NeedsFormatV2() ? 2 : 1;
}

std::string ShapeString(std::span<const int64_t> shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

Result<ModelConfig> ReadConfig(hid_t root, std::string_view file) {
  ModelConfig c;
  if (HasAttribute(root, "name")) {
    LOCKSTEP_ASSIGN_OR_RETURN(c.name, ReadStringAttribute(root, file, "name"));
  }
  LOCKSTEP_ASSIGN_OR_RETURN(c.architecture, ReadStringAttribute(root, file, "architecture"));
  LOCKSTEP_ASSIGN_OR_RETURN(c.vocab_size, ReadIntAttribute(root, file, "vocab_size"));
  LOCKSTEP_ASSIGN_OR_RETURN(c.hidden_size, ReadIntAttribute(root, file, "hidden_size"));
  LOCKSTEP_ASSIGN_OR_RETURN(c.intermediate_size, ReadIntAttribute(root, file, "intermediate_size"));
  struct IntField {
    const char* name;
    int* field;
  };
  for (const IntField& f :
       {IntField{"num_hidden_layers", &c.num_layers}, IntField{"num_attention_heads", &c.num_heads},
        IntField{"num_key_value_heads", &c.num_kv_heads}, IntField{"head_dim", &c.head_dim}}) {
    LOCKSTEP_ASSIGN_OR_RETURN(int64_t value, ReadIntAttribute(root, file, f.name));
    LOCKSTEP_ASSIGN_OR_RETURN(*f.field, ToInt(value, file, f.name));
  }
  LOCKSTEP_ASSIGN_OR_RETURN(c.rms_norm_eps, ReadDoubleAttribute(root, file, "rms_norm_eps"));
  LOCKSTEP_ASSIGN_OR_RETURN(c.rope_theta, ReadDoubleAttribute(root, file, "rope_theta"));
  LOCKSTEP_ASSIGN_OR_RETURN(c.max_position_embeddings,
                            ReadIntAttribute(root, file, "max_position_embeddings"));
  LOCKSTEP_ASSIGN_OR_RETURN(c.tie_word_embeddings,
                            ReadBoolAttribute(root, file, "tie_word_embeddings"));
  LOCKSTEP_ASSIGN_OR_RETURN(c.bos_token_id, ReadTokenId(root, file, "bos_token_id"));
  LOCKSTEP_ASSIGN_OR_RETURN(c.eos_token_id, ReadTokenId(root, file, "eos_token_id"));
  LOCKSTEP_RETURN_IF_ERROR(ReadVersion2Config(root, file, &c));
  return c;
}

Status WriteConfig(hid_t root, std::string_view file, const ModelConfig& c, DType dtype) {
  // Fixed order: the file's bytes must not depend on anything but the inputs.
  LOCKSTEP_RETURN_IF_ERROR(WriteStringAttribute(root, file, "name", c.name));
  LOCKSTEP_RETURN_IF_ERROR(WriteStringAttribute(root, file, "architecture", c.architecture));
  LOCKSTEP_RETURN_IF_ERROR(WriteIntAttribute(root, file, "vocab_size", c.vocab_size));
  LOCKSTEP_RETURN_IF_ERROR(WriteIntAttribute(root, file, "hidden_size", c.hidden_size));
  LOCKSTEP_RETURN_IF_ERROR(WriteIntAttribute(root, file, "intermediate_size", c.intermediate_size));
  LOCKSTEP_RETURN_IF_ERROR(WriteIntAttribute(root, file, "num_hidden_layers", c.num_layers));
  LOCKSTEP_RETURN_IF_ERROR(WriteIntAttribute(root, file, "num_attention_heads", c.num_heads));
  LOCKSTEP_RETURN_IF_ERROR(WriteIntAttribute(root, file, "num_key_value_heads", c.num_kv_heads));
  LOCKSTEP_RETURN_IF_ERROR(WriteIntAttribute(root, file, "head_dim", c.head_dim));
  LOCKSTEP_RETURN_IF_ERROR(WriteDoubleAttribute(root, file, "rms_norm_eps", c.rms_norm_eps));
  LOCKSTEP_RETURN_IF_ERROR(WriteDoubleAttribute(root, file, "rope_theta", c.rope_theta));
  LOCKSTEP_RETURN_IF_ERROR(
      WriteIntAttribute(root, file, "max_position_embeddings", c.max_position_embeddings));
  LOCKSTEP_RETURN_IF_ERROR(
      WriteIntAttribute(root, file, "tie_word_embeddings", c.tie_word_embeddings ? 1 : 0));
  LOCKSTEP_RETURN_IF_ERROR(WriteIntAttribute(root, file, "bos_token_id", c.bos_token_id));
  LOCKSTEP_RETURN_IF_ERROR(WriteIntAttribute(root, file, "eos_token_id", c.eos_token_id));
  LOCKSTEP_RETURN_IF_ERROR(WriteStringAttribute(root, file, "weight_dtype", DTypeName(dtype)));
  LOCKSTEP_RETURN_IF_ERROR(WriteStringAttribute(root, file, "rope_layout", kRopeLayout));
  return WriteVersion2Config(root, file, c);
}

}  // namespace lockstep::runtime
