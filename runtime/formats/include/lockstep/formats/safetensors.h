// The header of a safetensors file (Hugging Face's tensor container).
//
// Layout: an 8-byte little-endian unsigned header length N; N bytes of JSON
// (an object: tensor name -> {"dtype", "shape", "data_offsets": [begin,
// end]}, plus an optional "__metadata__" object of strings); then the data
// section. Offsets are relative to the data section, which starts at byte
// 8 + N.
//
// ReadSafetensorsHeader checks everything a reader relies on before any
// tensor byte is read: N fits the file and a sane limit (100 MiB), the JSON
// is an object of well-formed entries, every dtype is one of the format's
// names, each entry's byte count equals its shape times the dtype size, the
// range lies inside the data section and no two ranges overlap. Errors name
// the file and the tensor: kDataLoss for a truncated file or ranges outside
// it, kInvalidArgument for a header that is not valid or lies.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/formats/input_file.h"

namespace lockstep::runtime {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // as written: "F32", "BF16", "I64", ...
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // absolute file offset of the first byte
  uint64_t size = 0;    // bytes
};

struct SafetensorsHeader {
  std::vector<SafetensorsTensor> tensors;       // in file (offset) order
  std::map<std::string, std::string> metadata;  // "__metadata__", if any
  const SafetensorsTensor* Find(const std::string& name) const;
};

// Bytes per element of a safetensors dtype name, or 0 if unknown.
int SafetensorsDTypeSize(std::string_view dtype);

Result<SafetensorsHeader> ReadSafetensorsHeader(const InputFile& file);

}  // namespace lockstep::runtime
