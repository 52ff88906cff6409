#include "lockstep/partitioner/element_type.h"

namespace lockstep::partitioner {

int64_t ElementBytes(ElementType t, int64_t elements) {
  switch (t) {
    case ElementType::kQ8_0:
      return (elements + kQuantBlockSize - 1) / kQuantBlockSize * DTypeBlockBytes(DType::kQ8_0);
    case ElementType::kQ4_0:
      return (elements + kQuantBlockSize - 1) / kQuantBlockSize * DTypeBlockBytes(DType::kQ4_0);
    default:
      return elements * ElementSize(t);
  }
}

double BytesPerElement(ElementType t) {
  if (IsQuantized(t)) {
    return static_cast<double>(ElementBytes(t, kQuantBlockSize)) / kQuantBlockSize;
  }
  return static_cast<double>(ElementSize(t));
}

ElementType MatmulComputeType(ElementType weight, ElementType activation) {
  if (IsQuantized(weight)) return ElementType::kInt8;
  return ElementSize(weight) > ElementSize(activation) ? weight : activation;
}

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
    case ElementType::kQ8_0:
      return "q8_0";
    case ElementType::kQ4_0:
      return "q4_0";
  }
  return "?";
}

Result<ElementType> ParseElementType(std::string_view name) {
  for (int i = 0; i < kNumElementTypes; ++i) {
    auto t = static_cast<ElementType>(i);
    if (ElementTypeName(t) == name) return t;
  }
  return InvalidArgument(
      "unknown element type '{}' (known: f32, f16, bf16, int8, q8_0, q4_0)", name);
}

Result<DType> ToDType(ElementType t) {
  switch (t) {
    case ElementType::kF32:
      return DType::kF32;
    case ElementType::kF16:
      return DType::kF16;
    case ElementType::kBF16:
      return DType::kBF16;
    case ElementType::kQ8_0:
      return DType::kQ8_0;
    case ElementType::kQ4_0:
      return DType::kQ4_0;
    case ElementType::kInt8:
      break;
  }
  return Unimplemented(
      "int8 weights are for cost studies only; lockstep executes f32, f16, bf16, q8_0 and q4_0 "
      "(q8_0 is the executable 8-bit type)");
}

ElementType FromDType(DType t) {
  switch (t) {
    case DType::kF32:
      return ElementType::kF32;
    case DType::kF16:
      return ElementType::kF16;
    case DType::kBF16:
      return ElementType::kBF16;
    case DType::kQ8_0:
      return ElementType::kQ8_0;
    case DType::kQ4_0:
      return ElementType::kQ4_0;
  }
  return ElementType::kF32;
}

}  // namespace lockstep::partitioner
