// GGUF metadata values and the ggml tensor type table (gguf.h); the file
// reader is gguf.cc.
#include "lockstep/formats/gguf.h"

#include <fmt/format.h>

#include <array>
#include <limits>
#include <type_traits>

namespace lockstep::runtime {

std::string_view GgufTypeName(GgufType type) {
  static constexpr std::array<std::string_view, 13> kNames = {
      "uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
      "bool",  "string", "array",  "uint64", "int64",  "float64"};
  const auto code = static_cast<uint32_t>(type);
  return code < kNames.size() ? kNames[code] : "unknown";
}

bool GgufValue::is_integer() const {
  switch (type()) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kUint16:
    case GgufType::kInt16:
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kUint64:
    case GgufType::kInt64:
      return true;
    default:
      return false;
  }
}

std::optional<int64_t> GgufValue::ToInt64() const {
  return std::visit(
      [](const auto& v) -> std::optional<int64_t> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool> || std::is_floating_point_v<T> ||
                      !std::is_arithmetic_v<T>) {
          return std::nullopt;
        } else if constexpr (std::is_same_v<T, uint64_t>) {
          if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
          return static_cast<int64_t>(v);
        } else {
          return static_cast<int64_t>(v);
        }
      },
      storage_);
}

std::optional<double> GgufValue::ToDouble() const {
  return std::visit(
      [](const auto& v) -> std::optional<double> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool> || !std::is_arithmetic_v<T>) {
          return std::nullopt;
        } else {
          return static_cast<double>(v);
        }
      },
      storage_);
}

std::optional<bool> GgufValue::ToBool() const {
  if (const bool* b = std::get_if<bool>(&storage_)) return *b;
  return std::nullopt;
}

const std::string* GgufValue::string() const {
  return std::get_if<std::string>(&storage_);
}

const GgufArray* GgufValue::array() const {
  return std::get_if<GgufArray>(&storage_);
}

std::string GgufValue::Describe() const {
  if (const GgufArray* a = array()) {
    return fmt::format("array of {} {}", a->values.size(), GgufTypeName(a->element_type));
  }
  return std::string(GgufTypeName(type()));
}

std::optional<GgmlTypeInfo> FindGgmlType(uint32_t ggml_type) {
  // ggml.h enum ggml_type: {name, block size, bytes per block}. Codes 4, 5
  // (Q4_2, Q4_3), 31-33 and 36-38 were removed from ggml.
  static constexpr std::array<GgmlTypeInfo, 40> kTypes = {{
      {"F32", 1, 4},        {"F16", 1, 2},       {"Q4_0", 32, 18},     {"Q4_1", 32, 20},
      {"", 0, 0},           {"", 0, 0},          {"Q5_0", 32, 22},     {"Q5_1", 32, 24},
      {"Q8_0", 32, 34},     {"Q8_1", 32, 36},    {"Q2_K", 256, 84},    {"Q3_K", 256, 110},
      {"Q4_K", 256, 144},   {"Q5_K", 256, 176},  {"Q6_K", 256, 210},   {"Q8_K", 256, 292},
      {"IQ2_XXS", 256, 66}, {"IQ2_XS", 256, 74}, {"IQ3_XXS", 256, 98}, {"IQ1_S", 256, 50},
      {"IQ4_NL", 32, 18},   {"IQ3_S", 256, 110}, {"IQ2_S", 256, 82},   {"IQ4_XS", 256, 136},
      {"I8", 1, 1},         {"I16", 1, 2},       {"I32", 1, 4},        {"I64", 1, 8},
      {"F64", 1, 8},        {"IQ1_M", 256, 56},  {"BF16", 1, 2},       {"", 0, 0},
      {"", 0, 0},           {"", 0, 0},          {"TQ1_0", 256, 54},   {"TQ2_0", 256, 66},
      {"", 0, 0},           {"", 0, 0},          {"", 0, 0},           {"MXFP4", 32, 17},
  }};
  if (ggml_type >= kTypes.size() || kTypes[ggml_type].block_size == 0) return std::nullopt;
  return kTypes[ggml_type];
}

int64_t GgufTensorInfo::elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

}  // namespace lockstep::runtime
