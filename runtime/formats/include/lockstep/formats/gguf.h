// GGUF files (the container of ggml / llama.cpp): header, metadata and tensor
// directory, read with every count, length and offset checked against the
// file, so a damaged or lying file gives a one-line error and never an
// out-of-bounds read.
//
// Layout (GGUF specification, ggml's docs/gguf.md; versions 2 and 3; every
// number little-endian):
//
//   "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
//   metadata_kv_count x { string key | u32 value_type | value }
//   tensor_count x { string name | u32 n_dims | n_dims x u64 ne | u32 ggml_type | u64 offset }
//   zero padding up to a multiple of the alignment
//   tensor data: tensor t at data_offset() + t.offset
//
//   string = u64 byte length + UTF-8 bytes (no terminator)
//   array  = u32 element type + u64 count + count values (arrays may nest)
//
// The alignment is the metadata value `general.alignment` (u32, a power of
// two), 32 when absent. Version 1 (32-bit counts, 2023) and big-endian files
// are refused with a message saying so.
//
// Checks made by Open/Parse, each a kDataLoss or kInvalidArgument Status
// naming the file and the key or tensor at fault: magic and version; every
// length and count fits in the bytes that remain (so a header claiming 2^60
// strings fails at once instead of allocating); value types known; keys and
// tensor names unique; arrays nest at most 4 deep; alignment a power of two;
// each tensor has 1 to 4 dimensions, a known ggml type, ne[0] a multiple of
// the type's block size, no size overflow, an aligned offset, and its bytes
// inside the file.
//
// Thread safety: an opened GgufFile is immutable; any number of threads may
// read it at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "lockstep/base/status.h"

namespace lockstep::runtime {

// Metadata value types; the numbers are the file's codes.
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
std::string_view GgufTypeName(GgufType type);  // "uint32", "string", ...

class GgufValue;

// An array value: its element type and the elements, in file order.
struct GgufArray {
  GgufType element_type = GgufType::kUint8;
  std::vector<GgufValue> values;
};

// One metadata value.
class GgufValue {
 public:
  // The alternatives are in the order of the type codes: index() == code.
  using Storage = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                               std::string, GgufArray, uint64_t, int64_t, double>;

  GgufValue() = default;
  explicit GgufValue(Storage storage) : storage_(std::move(storage)) {}

  GgufType type() const { return static_cast<GgufType>(storage_.index()); }
  const Storage& storage() const { return storage_; }

  bool is_integer() const;  // any of the 8 integer types (not bool)
  // The value of an integer type, when it fits in int64 (a uint64 above
  // INT64_MAX does not); nullopt for other types.
  std::optional<int64_t> ToInt64() const;
  // float32, float64 or an integer type, as double; nullopt otherwise.
  std::optional<double> ToDouble() const;
  std::optional<bool> ToBool() const;  // bool only
  const std::string* string() const;   // kString only, else nullptr
  const GgufArray* array() const;      // kArray only, else nullptr

  // For messages: "uint32", "string", "array of 32000 float32".
  std::string Describe() const;

 private:
  Storage storage_;
};

// What ggml needs to size a tensor of a given type: elements come in blocks
// of block_size (1 for plain types) stored in type_size bytes.
struct GgmlTypeInfo {
  std::string_view name;  // "F32", "Q8_0", ...
  int64_t block_size = 1;
  int64_t type_size = 4;
};
// The ggml types known to this reader (ggml.h `enum ggml_type`, through
// MXFP4 = 39); nullopt for a code that is unknown or was removed from ggml.
std::optional<GgmlTypeInfo> FindGgmlType(uint32_t ggml_type);
inline constexpr uint32_t kGgmlTypeF32 = 0;
inline constexpr uint32_t kGgmlTypeF16 = 1;
inline constexpr uint32_t kGgmlTypeQ4_0 = 2;
inline constexpr uint32_t kGgmlTypeQ8_0 = 8;
inline constexpr uint32_t kGgmlTypeBF16 = 30;

struct GgufTensorInfo {
  std::string name;
  // ggml order: dims[0] (ne[0]) is the contiguous, fastest-varying
  // dimension. A torch tensor of shape [rows, cols] has dims {cols, rows}.
  std::vector<int64_t> dims;
  uint32_t ggml_type = 0;
  uint64_t offset = 0;  // from GgufFile::data_offset(), a multiple of the alignment
  uint64_t bytes = 0;   // size of the data
  int64_t elements() const;
};

class GgufFile {
 public:
  ~GgufFile();
  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;

  // Maps `path` read-only (mmap) and parses and checks the header, metadata
  // and tensor directory (not the tensor data). NotFound for a missing file,
  // InvalidArgument for a file that is not GGUF or of an unsupported version,
  // DataLoss for a truncated or inconsistent one.
  static Result<GgufFile> Open(const std::string& path);
  // The same checks on bytes in memory (tests, fuzzing). `name` stands for
  // the file in messages.
  static Result<GgufFile> Parse(std::vector<uint8_t> bytes, std::string name);

  const std::string& path() const;
  uint32_t version() const;
  uint64_t alignment() const;
  uint64_t data_offset() const;  // where tensor data starts, aligned
  uint64_t file_size() const;

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const;
  const GgufValue* Find(std::string_view key) const;  // nullptr if absent

  // Typed access with messages that name the file and key. NotFound if the
  // key is absent; InvalidArgument if it has another type. GetInt accepts
  // any integer type whose value fits in int64; GetFloat any number; the
  // array getters want an array of that kind of element (any integer type
  // for GetIntArray, float32 or float64 for GetFloatArray).
  Result<std::string> GetString(std::string_view key) const;
  Result<int64_t> GetInt(std::string_view key) const;
  Result<double> GetFloat(std::string_view key) const;
  Result<bool> GetBool(std::string_view key) const;
  Result<std::vector<std::string>> GetStringArray(std::string_view key) const;
  Result<std::vector<int64_t>> GetIntArray(std::string_view key) const;
  Result<std::vector<float>> GetFloatArray(std::string_view key) const;

  // Tensor directory in file order.
  const std::vector<GgufTensorInfo>& tensors() const;
  const GgufTensorInfo* FindTensor(std::string_view name) const;  // nullptr if absent
  // The bytes of a tensor (checked to lie inside the file at Open). Valid
  // while this GgufFile lives; pages are read from disk on first touch.
  std::span<const uint8_t> TensorData(const GgufTensorInfo& tensor) const;

 private:
  struct Impl;
  explicit GgufFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep::runtime
