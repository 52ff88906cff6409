#include "lockstep/formats/safetensors.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "lockstep/base/json_nesting.h"

namespace lockstep::runtime {
namespace {

// Larger headers are not produced by any real checkpoint; refusing them
// keeps a corrupt length from becoming a huge allocation.
constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;

}  // namespace

int SafetensorsDTypeSize(std::string_view dtype) {
  struct Entry {
    std::string_view name;
    int size;
  };
  static constexpr Entry kTable[] = {{"BOOL", 1},    {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1},
                                     {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
                                     {"BF16", 2},    {"I32", 4}, {"U32", 4}, {"F32", 4},
                                     {"F64", 8},     {"I64", 8}, {"U64", 8}};
  for (const Entry& e : kTable) {
    if (e.name == dtype) return e.size;
  }
  return 0;
}

const SafetensorsTensor* SafetensorsHeader::Find(const std::string& name) const {
  for (const SafetensorsTensor& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Result<SafetensorsHeader> ReadSafetensorsHeader(const InputFile& file) {
  const std::string& path = file.path();
  if (file.size() < 8) {
    return DataLoss("{}: truncated: {} bytes, too short for a safetensors header", path,
                    file.size());
  }
  uint64_t header_bytes = 0;
  LOCKSTEP_RETURN_IF_ERROR(file.ReadAt(0, 8, &header_bytes, "the header length"));
  if (header_bytes > file.size() - 8) {
    return DataLoss(
        "{}: truncated or not a safetensors file: the header length field says {} bytes but "
        "only {} follow",
        path, header_bytes, file.size() - 8);
  }
  if (header_bytes > kMaxHeaderBytes) {
    return InvalidArgument("{}: not a safetensors file: header length {} exceeds {} bytes", path,
                           header_bytes, kMaxHeaderBytes);
  }
  std::string text(header_bytes, '\0');
  LOCKSTEP_RETURN_IF_ERROR(file.ReadAt(8, header_bytes, text.data(), "the JSON header"));
  if (text.empty() || text[0] != '{') {
    return InvalidArgument("{}: not a safetensors file (the header does not start with '{{')",
                           path);
  }
  nlohmann::json json;
  LOCKSTEP_RETURN_IF_ERROR(CheckJsonNesting(text, path + ": the safetensors header"));
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // syntax, a number beyond a double
    return InvalidArgument("{}: the safetensors header is not valid JSON: {}", path, e.what());
  }
  if (!json.is_object()) {
    return InvalidArgument("{}: the safetensors header is not a JSON object", path);
  }
  const uint64_t data_begin = 8 + header_bytes;
  const uint64_t data_size = file.size() - data_begin;

  SafetensorsHeader header;
  for (auto it = json.begin(); it != json.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) {
        return InvalidArgument("{}: '__metadata__' is not an object", path);
      }
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (m.value().is_string()) header.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](std::string_view what) {
      return InvalidArgument("{}: tensor '{}': {} in the safetensors header", path, name, what);
    };
    if (!entry.is_object()) return bad("entry is not an object");
    auto dtype = entry.find("dtype");
    auto shape = entry.find("shape");
    auto offsets = entry.find("data_offsets");
    if (dtype == entry.end() || !dtype->is_string()) return bad("'dtype' missing or not a string");
    if (shape == entry.end() || !shape->is_array()) return bad("'shape' missing or not a list");
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
      return bad("'data_offsets' is not a list of two non-negative integers");
    }
    SafetensorsTensor t;
    t.name = name;
    t.dtype = dtype->get<std::string>();
    const int element_size = SafetensorsDTypeSize(t.dtype);
    if (element_size == 0) {
      return InvalidArgument("{}: tensor '{}' has unknown dtype '{}' in the safetensors header",
                             path, name, t.dtype);
    }
    uint64_t elements = 1;
    for (const nlohmann::json& d : *shape) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 40)) {
        return bad("a dimension of 'shape' is not a non-negative integer");
      }
      t.shape.push_back(d.get<int64_t>());
      if (__builtin_mul_overflow(elements, d.get<uint64_t>(), &elements)) {
        return bad("'shape' overflows");
      }
    }
    const uint64_t begin = (*offsets)[0].get<uint64_t>();
    const uint64_t end = (*offsets)[1].get<uint64_t>();
    if (begin > end) return bad("'data_offsets' has begin > end");
    uint64_t expected = 0;
    if (__builtin_mul_overflow(elements, static_cast<uint64_t>(element_size), &expected) ||
        expected != end - begin) {
      return InvalidArgument(
          "{}: tensor '{}': the safetensors header lies: shape and dtype {} make {} bytes but "
          "data_offsets [{}, {}] span {}",
          path, name, t.dtype, expected, begin, end, end - begin);
    }
    if (end > data_size) {
      return DataLoss(
          "{}: truncated: tensor '{}' needs bytes [{}, {}) of the data section, which has {} "
          "bytes",
          path, name, begin, end, data_size);
    }
    t.offset = data_begin + begin;
    t.size = end - begin;
    header.tensors.push_back(std::move(t));
  }
  std::sort(header.tensors.begin(), header.tensors.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
              return a.offset != b.offset ? a.offset < b.offset : a.name < b.name;
            });
  for (size_t i = 1; i < header.tensors.size(); ++i) {
    const SafetensorsTensor& a = header.tensors[i - 1];
    const SafetensorsTensor& b = header.tensors[i];
    if (a.size > 0 && b.size > 0 && b.offset < a.offset + a.size) {
      return InvalidArgument("{}: tensors '{}' and '{}' overlap in the safetensors data section",
                             path, a.name, b.name);
    }
  }
  return header;
}

}  // namespace lockstep::runtime
