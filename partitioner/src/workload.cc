#include "lockstep/partitioner/workload.h"

#include <nlohmann/json.hpp>

#include "json_reader.h"

namespace lockstep::partitioner {

std::string_view MatmulComputeName(MatmulCompute c) {
  return c == MatmulCompute::kBf16 ? "bf16" : "float";
}

Result<MatmulCompute> ParseMatmulCompute(std::string_view name) {
  if (name == "float") return MatmulCompute::kFloat;
  if (name == "bf16") return MatmulCompute::kBf16;
  return InvalidArgument("unknown compute mode '{}' (expected float or bf16)", name);
}

Status Workload::Validate() const {
  // The upper limits keep every byte count inside int64 and the schedule small.
  if (batch_size < 1 || batch_size > kMaxBatchSize) {
    return InvalidArgument("field 'batch_size' must be between 1 and {}, got {}", kMaxBatchSize,
                           batch_size);
  }
  if (prompt_length < 1 || prompt_length > kMaxLength) {
    return InvalidArgument("field 'prompt_length' must be between 1 and {}, got {}", kMaxLength,
                           prompt_length);
  }
  if (generated_length < 1 || generated_length > kMaxLength) {
    return InvalidArgument("field 'generated_length' must be between 1 and {}, got {}", kMaxLength,
                           generated_length);
  }
  if (micro_batches > kMaxMicroBatches) {
    return InvalidArgument("field 'micro_batches' must be at most {}, got {}", kMaxMicroBatches,
                           micro_batches);
  }
  if (micro_batches < 0 || micro_batches > batch_size) {
    return InvalidArgument(
        "field 'micro_batches' must be between 1 and batch_size {} (or 0: chosen by the planner), "
        "got {}",
        batch_size, micro_batches);
  }
  if (prefill_chunk < 0) {
    return InvalidArgument("field 'prefill_chunk' must be zero (whole prompt) or positive, got {}",
                           prefill_chunk);
  }
  if (NumPrefillChunks() > kMaxPrefillChunks) {
    return InvalidArgument(
        "field 'prefill_chunk' {} cuts the {}-token prompt into {} chunks, more than {}; use a "
        "chunk of at least {} tokens",
        prefill_chunk, prompt_length, NumPrefillChunks(), kMaxPrefillChunks,
        (prompt_length + kMaxPrefillChunks - 1) / kMaxPrefillChunks);
  }
  if (activation_type == ElementType::kInt8 || IsQuantized(activation_type)) {
    return InvalidArgument("field 'activation_type' must be f32, f16 or bf16, got {}",
                           ElementTypeName(activation_type));
  }
  if (compute == MatmulCompute::kBf16 && weight_type != ElementType::kBF16) {
    return InvalidArgument(
        "field 'compute' bf16 needs bf16 weights (weight_type bf16), got weight_type {}",
        ElementTypeName(weight_type));
  }
  return Status::Ok();
}

Status Workload::ValidateFor(const ModelConfig& model) const {
  LOCKSTEP_RETURN_IF_ERROR(Validate());
  if (context_length() > model.ContextLength()) {
    return InvalidArgument(
        "prompt_length {} + generated_length {} = {} exceeds the context length {} of model '{}'; "
        "shorten the prompt or the output",
        prompt_length, generated_length, context_length(), model.ContextLength(), model.name);
  }
  return Status::Ok();
}

int MicroBatchSize(int batch, int count, int index) {
  return batch / count + (index < batch % count ? 1 : 0);
}

Result<Workload> WorkloadFromJson(const nlohmann::json& json, std::string_view source) {
  Workload w;
  internal::JsonReader r(json, source);
  r.Int("batch_size", &w.batch_size);
  r.Int("prompt_length", &w.prompt_length);
  r.Int("generated_length", &w.generated_length);
  std::string weight = std::string(ElementTypeName(w.weight_type));
  std::string activation = std::string(ElementTypeName(w.activation_type));
  r.String("weight_type", &weight, /*required=*/false);
  r.String("activation_type", &activation, /*required=*/false);
  r.Int("micro_batches", &w.micro_batches, /*required=*/false);
  r.Int("prefill_chunk", &w.prefill_chunk, /*required=*/false);
  std::string compute = std::string(MatmulComputeName(w.compute));
  r.String("compute", &compute, /*required=*/false);
  LOCKSTEP_RETURN_IF_ERROR(r.Finish());
  Result<MatmulCompute> mc = ParseMatmulCompute(compute);
  if (!mc.ok()) return mc.status().WithContext(fmt::format("{}: field 'compute'", source));
  w.compute = *mc;
  Result<ElementType> wt = ParseElementType(weight);
  if (!wt.ok()) return wt.status().WithContext(fmt::format("{}: field 'weight_type'", source));
  Result<ElementType> at = ParseElementType(activation);
  if (!at.ok()) return at.status().WithContext(fmt::format("{}: field 'activation_type'", source));
  w.weight_type = *wt;
  w.activation_type = *at;
  Status valid = w.Validate();
  if (!valid.ok()) return valid.WithContext(source);
  return w;
}

nlohmann::json WorkloadToJson(const Workload& w) {
  nlohmann::json j = {{"batch_size", w.batch_size},
          {"prompt_length", w.prompt_length},
          {"generated_length", w.generated_length},
          {"weight_type", ElementTypeName(w.weight_type)},
          {"activation_type", ElementTypeName(w.activation_type)},
          {"micro_batches", w.micro_batches},
          {"prefill_chunk", w.prefill_chunk}};
  if (w.compute != MatmulCompute::kFloat) j["compute"] = MatmulComputeName(w.compute);
  return j;
}

}  // namespace lockstep::partitioner
