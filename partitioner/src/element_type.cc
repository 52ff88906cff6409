#include "lockstep/partitioner/element_type.h"

namespace lockstep::partitioner {

std::string_view ElementTypeName(ElementType t) {
  switch (t) {
    case ElementType::kF32:
      return "f32";
    case ElementType::kF16:
      return "f16";
    case ElementType::kBF16:
      return "bf16";
    case ElementType::kInt8:
      return "int8";
  }
  return "?";
}

Result<ElementType> ParseElementType(std::string_view name) {
  for (int i = 0; i < kNumElementTypes; ++i) {
    auto t = static_cast<ElementType>(i);
    if (ElementTypeName(t) == name) return t;
  }
  return InvalidArgument("unknown element type '{}' (known: f32, f16, bf16, int8)", name);
}

Result<DType> ToDType(ElementType t) {
  switch (t) {
    case ElementType::kF32:
      return DType::kF32;
    case ElementType::kF16:
      return DType::kF16;
    case ElementType::kBF16:
      return DType::kBF16;
    case ElementType::kInt8:
      break;
  }
  return Unimplemented("int8 weights are for cost studies only; lockstep executes f32, f16, bf16");
}

ElementType FromDType(DType t) {
  switch (t) {
    case DType::kF32:
      return ElementType::kF32;
    case DType::kF16:
      return ElementType::kF16;
    case DType::kBF16:
      return ElementType::kBF16;
  }
  return ElementType::kF32;
}

}  // namespace lockstep::partitioner
