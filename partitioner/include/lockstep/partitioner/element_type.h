// Element types the planner accounts for: the storage type of weights and the
// type of activations, KV cache and messages.
//
// f32, f16 and bf16 are the types lockstep executes (base/dtype.h). int8 exists
// for cost studies only (e.g. how an 8-bit-weight deployment on SRAM chips would
// fit): a plan with int8 weights is valid to print and serialise, but the runtime
// cannot execute it (Plan::executable() says so).
#pragma once

#include <cstdint>
#include <string_view>

#include "lockstep/base/dtype.h"
#include "lockstep/base/status.h"

namespace lockstep::partitioner {

enum class ElementType : uint8_t { kF32 = 0, kF16 = 1, kBF16 = 2, kInt8 = 3 };
inline constexpr int kNumElementTypes = 4;

constexpr int64_t ElementSize(ElementType t) {
  switch (t) {
    case ElementType::kF32:
      return 4;
    case ElementType::kF16:
    case ElementType::kBF16:
      return 2;
    case ElementType::kInt8:
      return 1;
  }
  return 0;
}

// "f32", "f16", "bf16", "int8".
std::string_view ElementTypeName(ElementType t);
// Accepts the names above. The error lists them.
Result<ElementType> ParseElementType(std::string_view name);

// The corresponding runtime dtype, or an error for int8 (not executable).
Result<DType> ToDType(ElementType t);
ElementType FromDType(DType t);

}  // namespace lockstep::partitioner
