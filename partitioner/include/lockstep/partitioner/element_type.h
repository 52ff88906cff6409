// Element types the planner accounts for: the storage type of weights and the
// type of activations, KV cache and messages.
//
// f32, f16, bf16, q8_0 and q4_0 are weight types lockstep executes
// (base/dtype.h): q8_0 and q4_0 are blocks of 32 values with one f16 scale
// (34 and 18 bytes per block: 1.0625 and 0.5625 bytes per weight), whose
// matmuls run on int8 dot products (activations quantized per block). int8
// (exactly one byte per weight) exists for cost studies only: a plan with int8
// weights is valid to print and serialise, but the runtime cannot execute it
// (Plan::executable() says so); q8_0 is the executable 8-bit type.
//
// Activations, KV cache and messages are f32, f16 or bf16. The compute types
// (the keys of a chip's peak_flops) are f32, f16, bf16 and int8.
#pragma once

#include <cstdint>
#include <string_view>

#include "lockstep/base/dtype.h"
#include "lockstep/base/status.h"

namespace lockstep::partitioner {

enum class ElementType : uint8_t {
  kF32 = 0,
  kF16 = 1,
  kBF16 = 2,
  kInt8 = 3,
  kQ8_0 = 4,
  kQ4_0 = 5,
};
inline constexpr int kNumElementTypes = 6;
// The first kNumComputeTypes types (f32, f16, bf16, int8) are the ones a chip
// has a peak rate for.
inline constexpr int kNumComputeTypes = 4;

constexpr bool IsQuantized(ElementType t) {
  return t == ElementType::kQ8_0 || t == ElementType::kQ4_0;
}

// Bytes of one element of a non-quantized type (f32 4, f16/bf16 2, int8 1);
// 0 for a quantized type, whose size is per block: use ElementBytes.
constexpr int64_t ElementSize(ElementType t) {
  switch (t) {
    case ElementType::kF32:
      return 4;
    case ElementType::kF16:
    case ElementType::kBF16:
      return 2;
    case ElementType::kInt8:
      return 1;
    case ElementType::kQ8_0:
    case ElementType::kQ4_0:
      return 0;
  }
  return 0;
}

// Bytes of `elements` values (for q8_0 / q4_0, whole blocks of 32: a partial
// block counts whole), and the average bytes per value.
int64_t ElementBytes(ElementType t, int64_t elements);
double BytesPerElement(ElementType t);

// The type a matmul of `weight` weights and `activation` activations
// multiplies in: int8 for quantized weights (integer dot products), else the
// wider of the two (on a tie the activation type).
ElementType MatmulComputeType(ElementType weight, ElementType activation);

// "f32", "f16", "bf16", "int8", "q8_0", "q4_0".
std::string_view ElementTypeName(ElementType t);
// Accepts the names above. The error lists them.
Result<ElementType> ParseElementType(std::string_view name);

// The corresponding runtime dtype, or an error for int8 (not executable).
Result<DType> ToDType(ElementType t);
ElementType FromDType(DType t);

}  // namespace lockstep::partitioner
