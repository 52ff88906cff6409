// Element types of weights and activations, and exact scalar conversions.
//
// Weights are stored as f32, f16 (IEEE binary16), bf16 (bfloat16), or in
// blocks of 32 quantized values with one f16 scale each: q8_0 (int8) and q4_0
// (4-bit), the GGUF Q8_0 / Q4_0 blocks (base/quant_block.h has the layouts).
// All arithmetic on weights is f32 or exact integer: f16 and bf16 values
// widen to f32 exactly, and so does a quantized value (scale x integer needs
// at most 19 significant bits). Narrowing (used when writing a model file)
// rounds to nearest, ties to even.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lockstep/base/check.h"
#include "lockstep/base/status.h"

namespace lockstep {

enum class DType : uint8_t { kF32 = 0, kF16 = 1, kBF16 = 2, kQ8_0 = 3, kQ4_0 = 4 };

// q8_0 and q4_0: values come in blocks of kQuantBlockSize along a row.
constexpr bool DTypeIsQuantized(DType t) { return t == DType::kQ8_0 || t == DType::kQ4_0; }
inline constexpr int64_t kQuantBlockSize = 32;

// Elements per storage unit (1, or 32 for a quantized block) and the bytes of
// one unit: f32 4, f16/bf16 2, q8_0 34 (f16 scale + 32 int8), q4_0 18 (f16
// scale + 16 bytes of 4-bit values).
constexpr int64_t DTypeBlockElements(DType t) { return DTypeIsQuantized(t) ? kQuantBlockSize : 1; }
constexpr int64_t DTypeBlockBytes(DType t) {
  switch (t) {
    case DType::kF32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
      return 2;
    case DType::kQ8_0:
      return 34;
    case DType::kQ4_0:
      return 18;
  }
  return 0;
}
// Bytes of `elements` values; for a quantized type `elements` must be a
// multiple of the block size (rows of whole blocks).
inline int64_t DTypeBytes(DType t, int64_t elements) {
  LOCKSTEP_CHECK(elements % DTypeBlockElements(t) == 0, "{} values of a {}-element block type",
                 elements, DTypeBlockElements(t));
  return elements / DTypeBlockElements(t) * DTypeBlockBytes(t);
}
// Bytes per element of a non-quantized type (f32 4, f16/bf16 2). Quantized
// types have no per-element size: use DTypeBytes.
inline size_t DTypeSize(DType t) {
  LOCKSTEP_CHECK(!DTypeIsQuantized(t), "DTypeSize of a quantized dtype: use DTypeBytes");
  return static_cast<size_t>(DTypeBlockBytes(t));
}

std::string_view DTypeName(DType t);              // "f32", "f16", "bf16", "q8_0", "q4_0"
Result<DType> ParseDType(std::string_view name);  // accepts the names above

// bf16 <-> f32. Widening is exact; narrowing rounds to nearest even (NaN stays NaN).
inline float Bf16ToF32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }
uint16_t F32ToBf16(float f);

// IEEE binary16 <-> f32 in portable code (no F16C needed). Widening is exact,
// subnormals included; narrowing rounds to nearest even, overflow gives inf.
// NaNs convert as F16C converts them, bit for bit: quieted (a signalling NaN
// becomes quiet), the payload kept (widening) or its top bits kept
// (narrowing). So scalar code and the F16C/AVX-512 kernels give the same bits
// for every one of the 65,536 f16 patterns (tests/base/dtype_test.cc,
// tests/kernels/matmul_test.cc).
float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);

}  // namespace lockstep
