#include "lockstep/base/quant_block.h"

#include <cmath>
#include <cstring>

#include "lockstep/base/check.h"

namespace lockstep {
namespace {

// ggml's reference quantisers (quant_block.h). The build uses
// -ffp-contract=off, so x * id + 8.5f stays a multiply and an add.
void QuantizeBlockQ8_0(const float* x, BlockQ8_0* y) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) {
    const float a = std::fabs(x[j]);
    amax = amax > a ? amax : a;
  }
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y->d = F32ToF16(d);
  for (int j = 0; j < 32; ++j) {
    const float v = std::round(x[j] * id);  // half away from zero, like roundf
    // Finite inputs give |v| <= 127; clamp so that a non-finite input cannot
    // reach an undefined conversion.
    y->qs[j] = static_cast<int8_t>(v >= -128.0f && v <= 127.0f ? v : 0.0f);
  }
}

void QuantizeBlockQ4_0(const float* x, BlockQ4_0* y) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    const float a = std::fabs(x[j]);
    if (amax < a) {
      amax = a;
      max = x[j];
    }
  }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y->d = F32ToF16(d);
  auto nibble = [&](float v) -> uint8_t {
    const float t = v * id + 8.5f;
    // Finite inputs give t in [0.5, 16.5]; ggml converts with (int8_t) and
    // caps at 15.
    const int i = t >= 0.0f && t < 128.0f ? static_cast<int>(t) : 0;
    return static_cast<uint8_t>(i < 15 ? i : 15);
  };
  for (int j = 0; j < 16; ++j) {
    y->qs[j] = static_cast<uint8_t>(nibble(x[j]) | nibble(x[j + 16]) << 4);
  }
}

bool IsFiniteF16(uint16_t bits) {
  return (bits & 0x7c00u) != 0x7c00u;
}

}  // namespace

void QuantizeRow(DType dtype, const float* x, int64_t n, void* blocks) {
  LOCKSTEP_CHECK(DTypeIsQuantized(dtype) && n % kQuantBlockSize == 0, "QuantizeRow({}, {})",
                 DTypeName(dtype), n);
  const int64_t nb = n / kQuantBlockSize;
  if (dtype == DType::kQ8_0) {
    auto* y = static_cast<BlockQ8_0*>(blocks);
    for (int64_t b = 0; b < nb; ++b) QuantizeBlockQ8_0(x + b * 32, y + b);
  } else {
    auto* y = static_cast<BlockQ4_0*>(blocks);
    for (int64_t b = 0; b < nb; ++b) QuantizeBlockQ4_0(x + b * 32, y + b);
  }
}

void DequantizeRow(DType dtype, const void* blocks, int64_t n, float* y) {
  LOCKSTEP_CHECK(DTypeIsQuantized(dtype) && n % kQuantBlockSize == 0, "DequantizeRow({}, {})",
                 DTypeName(dtype), n);
  const int64_t nb = n / kQuantBlockSize;
  if (dtype == DType::kQ8_0) {
    const auto* x = static_cast<const BlockQ8_0*>(blocks);
    for (int64_t b = 0; b < nb; ++b) {
      const float d = F16ToF32(x[b].d);
      for (int j = 0; j < 32; ++j) y[b * 32 + j] = d * static_cast<float>(x[b].qs[j]);
    }
  } else {
    const auto* x = static_cast<const BlockQ4_0*>(blocks);
    for (int64_t b = 0; b < nb; ++b) {
      const float d = F16ToF32(x[b].d);
      for (int j = 0; j < 16; ++j) {
        y[b * 32 + j] = d * static_cast<float>((x[b].qs[j] & 15) - 8);
        y[b * 32 + j + 16] = d * static_cast<float>((x[b].qs[j] >> 4) - 8);
      }
    }
  }
}

void WidenQ4_0ToQ8_0(const void* q4_blocks, int64_t num_blocks, void* q8_blocks) {
  const auto* x = static_cast<const BlockQ4_0*>(q4_blocks);
  auto* y = static_cast<BlockQ8_0*>(q8_blocks);
  for (int64_t b = 0; b < num_blocks; ++b) {
    BlockQ8_0 out;
    out.d = x[b].d;
    for (int j = 0; j < 16; ++j) {
      out.qs[j] = static_cast<int8_t>((x[b].qs[j] & 15) - 8);
      out.qs[j + 16] = static_cast<int8_t>((x[b].qs[j] >> 4) - 8);
    }
    std::memcpy(&y[b], &out, sizeof(out));
  }
}

uint16_t QuantBlockScaleBits(DType dtype, const void* blocks, int64_t index) {
  const auto* p = static_cast<const uint8_t*>(blocks) + index * DTypeBlockBytes(dtype);
  uint16_t d;
  std::memcpy(&d, p, 2);
  return d;
}

int QuantBlockValue(DType dtype, const void* blocks, int64_t index, int j) {
  const auto* p = static_cast<const uint8_t*>(blocks) + index * DTypeBlockBytes(dtype) + 2;
  if (dtype == DType::kQ8_0) return static_cast<int8_t>(p[j]);
  return j < 16 ? (p[j] & 15) - 8 : (p[j - 16] >> 4) - 8;
}

int64_t FirstNonFiniteScale(DType dtype, const void* blocks, int64_t num_blocks) {
  for (int64_t b = 0; b < num_blocks; ++b) {
    if (!IsFiniteF16(QuantBlockScaleBits(dtype, blocks, b))) return b;
  }
  return -1;
}

int64_t FirstNonFinite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return i;
  }
  return -1;
}

}  // namespace lockstep
