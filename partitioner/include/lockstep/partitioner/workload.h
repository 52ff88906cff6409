// What a plan is made to run: how many sequences at once, how long their
// prompts and outputs are, and the element types of weights and activations.
//
// The workload sizes the KV cache and activation buffers of every rank (memory
// limits) and is what the cost model times. It is the worst case a plan
// admits: the runtime may run shorter requests under it, never longer ones.
#pragma once

#include <algorithm>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string_view>

#include "lockstep/base/status.h"
#include "lockstep/partitioner/element_type.h"
#include "lockstep/partitioner/model_config.h"

namespace lockstep::partitioner {

// The arithmetic of the matmuls (kernels/matmul.h, Compute): kFloat (f32
// FMAs on weights widened to f32) or kBf16 (bf16 weights only: activations
// rounded to bf16, the AVX512_BF16 dot product; kernels/bf16_matmul.h).
enum class MatmulCompute { kFloat = 0, kBf16 = 1 };
std::string_view MatmulComputeName(MatmulCompute c);  // "float", "bf16"
Result<MatmulCompute> ParseMatmulCompute(std::string_view name);

struct Workload {
  static constexpr int kMaxBatchSize = 1 << 20;
  static constexpr int64_t kMaxLength = int64_t{1} << 24;  // prompt or generated tokens
  static constexpr int kMaxMicroBatches = 4096;
  static constexpr int kMaxPrefillChunks = 4096;

  int batch_size = 1;                               // sequences decoded together
  int64_t prompt_length = 128;                      // tokens of each prompt (prefill)
  int64_t generated_length = 128;                   // tokens generated per sequence (>= 1)
  ElementType weight_type = ElementType::kBF16;     // storage type of the matrices
  ElementType activation_type = ElementType::kF32;  // activations, KV cache, messages
  // The matmuls' arithmetic; kBf16 needs weight_type bf16. In JSON as
  // "compute", written only when not "float" (plans made before it existed
  // read as float compute).
  MatmulCompute compute = MatmulCompute::kFloat;
  // Micro-batches the batch is cut into for the pipeline; 0 lets the planner
  // choose. Sizes differ by at most one sequence (the first ones get the extra).
  int micro_batches = 0;
  // Prefill in chunks of this many prompt tokens (0: the whole prompt in one
  // pass). Chunks bound the activation memory and pipeline like micro-batches;
  // a runtime that executes the plan must prefill in the same chunks.
  int64_t prefill_chunk = 0;

  int64_t context_length() const { return prompt_length + generated_length; }
  // Tokens of the largest prefill chunk, the number of chunks, and where
  // chunk k starts (chunk k is [PrefillChunkBegin(k), PrefillChunkBegin(k + 1))).
  int64_t PrefillChunkTokens() const {
    return prefill_chunk > 0 && prefill_chunk < prompt_length ? prefill_chunk : prompt_length;
  }
  int NumPrefillChunks() const {
    return static_cast<int>((prompt_length + PrefillChunkTokens() - 1) / PrefillChunkTokens());
  }
  int64_t PrefillChunkBegin(int k) const {
    return std::min(prompt_length, k * PrefillChunkTokens());
  }

  // Sizes in range (the kMax limits above), micro_batches <= batch_size.
  // Messages name the field.
  Status Validate() const;
  // Validate() plus: the context fits the model's max_position_embeddings.
  Status ValidateFor(const ModelConfig& model) const;

  bool operator==(const Workload&) const = default;
};

// Size of micro-batch `index` when `batch` sequences are cut into `count`.
int MicroBatchSize(int batch, int count, int index);

Result<Workload> WorkloadFromJson(const nlohmann::json& json, std::string_view source);
nlohmann::json WorkloadToJson(const Workload& workload);

}  // namespace lockstep::partitioner
