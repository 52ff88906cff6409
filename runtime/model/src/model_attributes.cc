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

}  // namespace

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
  return Status::Ok();
}

}  // namespace lockstep::runtime
