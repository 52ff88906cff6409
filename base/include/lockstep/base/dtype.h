// Element types of weights and activations, and exact scalar conversions.
//
// Weights are stored as f32, f16 (IEEE binary16) or bf16 (bfloat16). All
// arithmetic is f32: f16 and bf16 values widen to f32 exactly. Narrowing
// (used when writing a model file) rounds to nearest, ties to even.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lockstep/base/status.h"

namespace lockstep {

enum class DType : uint8_t { kF32 = 0, kF16 = 1, kBF16 = 2 };

constexpr size_t DTypeSize(DType t) { return t == DType::kF32 ? 4 : 2; }
std::string_view DTypeName(DType t);         // "f32", "f16", "bf16"
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
