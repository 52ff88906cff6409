// GGUF reader. Every read goes through Cursor, which checks the bytes are
// there before touching them; counts are checked against the bytes left
// before anything is allocated for them.
#include "lockstep/formats/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>

namespace lockstep::runtime {
namespace {

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes little-endian");

constexpr uint32_t kMinVersion = 2;
constexpr uint32_t kMaxVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;
constexpr int kMaxArrayDepth = 4;
constexpr int kMaxDims = 4;  // GGML_MAX_DIMS

// The fewest bytes a value of each type occupies, to bound counts.
uint64_t MinValueBytes(GgufType type) {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool:
      return 1;
    case GgufType::kUint16:
    case GgufType::kInt16:
      return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32:
      return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64:
    case GgufType::kString:  // its u64 length
      return 8;
    case GgufType::kArray:  // u32 type + u64 count
      return 12;
  }
  return 1;
}

// A key or tensor name as it goes into a one-line message: control bytes
// and bytes >= 0x7F escaped (a damaged file can hold anything), at most 80
// bytes shown.
std::string Shown(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size() && i < 80; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c >= 0x7F || c == '\\') {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (name.size() > 80) out += "...";
  return out;
}

bool KnownType(uint32_t code) {
  return code <= static_cast<uint32_t>(GgufType::kFloat64);
}

class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, std::string_view file) : bytes_(bytes), file_(file) {}

  uint64_t position() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }

  Status Need(uint64_t n, std::string_view what) const {
    if (n > remaining()) {
      return DataLoss(
          "{}: truncated or corrupt GGUF: {} needs {} bytes at offset {}, but only {} remain",
          file_, what, n, pos_, remaining());
    }
    return Status::Ok();
  }

  template <typename T>
  Result<T> Read(std::string_view what) {
    LOCKSTEP_RETURN_IF_ERROR(Need(sizeof(T), what));
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  Result<std::string> ReadString(std::string_view what) {
    LOCKSTEP_ASSIGN_OR_RETURN(uint64_t length, Read<uint64_t>(what));
    if (length > remaining()) {
      return DataLoss(
          "{}: truncated or corrupt GGUF: {} claims a length of {} bytes at offset {}, but only "
          "{} remain",
          file_, what, length, pos_ - 8, remaining());
    }
    std::string text(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
    pos_ += length;
    return text;
  }

 private:
  std::span<const uint8_t> bytes_;
  std::string_view file_;
  uint64_t pos_ = 0;
};

// Reads one value of `type` (arrays recursively, `depth` levels deep).
Result<GgufValue> ReadValue(Cursor& in, std::string_view file, std::string_view key, GgufType type,
                            int depth) {
  const std::string what = fmt::format("the value of key '{}'", key);
  switch (type) {
    case GgufType::kUint8: {
      LOCKSTEP_ASSIGN_OR_RETURN(uint8_t v, in.Read<uint8_t>(what));
      return GgufValue(v);
    }
    case GgufType::kInt8: {
      LOCKSTEP_ASSIGN_OR_RETURN(int8_t v, in.Read<int8_t>(what));
      return GgufValue(v);
    }
    case GgufType::kUint16: {
      LOCKSTEP_ASSIGN_OR_RETURN(uint16_t v, in.Read<uint16_t>(what));
      return GgufValue(v);
    }
    case GgufType::kInt16: {
      LOCKSTEP_ASSIGN_OR_RETURN(int16_t v, in.Read<int16_t>(what));
      return GgufValue(v);
    }
    case GgufType::kUint32: {
      LOCKSTEP_ASSIGN_OR_RETURN(uint32_t v, in.Read<uint32_t>(what));
      return GgufValue(v);
    }
    case GgufType::kInt32: {
      LOCKSTEP_ASSIGN_OR_RETURN(int32_t v, in.Read<int32_t>(what));
      return GgufValue(v);
    }
    case GgufType::kFloat32: {
      LOCKSTEP_ASSIGN_OR_RETURN(float v, in.Read<float>(what));
      return GgufValue(v);
    }
    case GgufType::kBool: {
      LOCKSTEP_ASSIGN_OR_RETURN(uint8_t v, in.Read<uint8_t>(what));
      if (v > 1) {
        return DataLoss("{}: key '{}' is a bool with byte value {} (must be 0 or 1)", file, key, v);
      }
      return GgufValue(GgufValue::Storage(std::in_place_index<7>, v == 1));
    }
    case GgufType::kString: {
      LOCKSTEP_ASSIGN_OR_RETURN(std::string v, in.ReadString(what));
      return GgufValue(std::move(v));
    }
    case GgufType::kUint64: {
      LOCKSTEP_ASSIGN_OR_RETURN(uint64_t v, in.Read<uint64_t>(what));
      return GgufValue(v);
    }
    case GgufType::kInt64: {
      LOCKSTEP_ASSIGN_OR_RETURN(int64_t v, in.Read<int64_t>(what));
      return GgufValue(v);
    }
    case GgufType::kFloat64: {
      LOCKSTEP_ASSIGN_OR_RETURN(double v, in.Read<double>(what));
      return GgufValue(v);
    }
    case GgufType::kArray: {
      if (depth >= kMaxArrayDepth) {
        return DataLoss("{}: key '{}' nests arrays more than {} deep", file, key, kMaxArrayDepth);
      }
      LOCKSTEP_ASSIGN_OR_RETURN(uint32_t element_code, in.Read<uint32_t>(what));
      if (!KnownType(element_code)) {
        return DataLoss("{}: key '{}' is an array of unknown value type {}", file, key,
                        element_code);
      }
      const GgufType element = static_cast<GgufType>(element_code);
      LOCKSTEP_ASSIGN_OR_RETURN(uint64_t count, in.Read<uint64_t>(what));
      if (count > in.remaining() / MinValueBytes(element)) {
        return DataLoss(
            "{}: truncated or corrupt GGUF: key '{}' claims {} {} elements, more than the {} "
            "bytes left can hold",
            file, key, count, GgufTypeName(element), in.remaining());
      }
      GgufArray array;
      array.element_type = element;
      array.values.reserve(count);
      for (uint64_t i = 0; i < count; ++i) {
        LOCKSTEP_ASSIGN_OR_RETURN(GgufValue v, ReadValue(in, file, key, element, depth + 1));
        array.values.push_back(std::move(v));
      }
      return GgufValue(GgufValue::Storage(std::move(array)));
    }
  }
  return DataLoss("{}: key '{}' has unknown value type {}", file, key, static_cast<uint32_t>(type));
}

struct Mapping {
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (address != nullptr) munmap(address, length);
  }
  void* address = nullptr;
  size_t length = 0;
};

}  // namespace

struct GgufFile::Impl {
  std::string path;
  std::unique_ptr<Mapping> mapping;  // when opened from a file
  std::vector<uint8_t> owned;        // when parsed from memory
  std::span<const uint8_t> bytes;
  uint32_t version = 0;
  uint64_t alignment = kDefaultAlignment;
  uint64_t data_offset = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata;
  std::map<std::string, size_t, std::less<>> metadata_index;
  std::vector<GgufTensorInfo> tensors;
  std::map<std::string, size_t, std::less<>> tensor_index;

  Status ParseAll();
  Result<const GgufValue*> Get(std::string_view key) const;
  Status WrongType(std::string_view key, const GgufValue& value, std::string_view wanted) const {
    return InvalidArgument("{}: GGUF key '{}' is {}, expected {}", path, Shown(key),
                           value.Describe(), wanted);
  }
};

Status GgufFile::Impl::ParseAll() {
  Cursor in(bytes, path);
  if (bytes.size() < 4 || std::memcmp(bytes.data(), "GGUF", 4) != 0) {
    return InvalidArgument("{}: not a GGUF file (the first 4 bytes are not \"GGUF\")", path);
  }
  LOCKSTEP_RETURN_IF_ERROR(in.Read<uint32_t>("the magic").status());
  LOCKSTEP_ASSIGN_OR_RETURN(version, in.Read<uint32_t>("the version"));
  if (version < kMinVersion || version > kMaxVersion) {
    if ((version & 0xffff) == 0 && version != 0) {
      return InvalidArgument(
          "{}: GGUF version field reads {}: a big-endian GGUF file, which this reader does not "
          "support",
          path, version);
    }
    return InvalidArgument(
        "{}: GGUF version {} is not supported (versions {} to {}); convert it again with a recent "
        "llama.cpp",
        path, version, kMinVersion, kMaxVersion);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(uint64_t tensor_count, in.Read<uint64_t>("the tensor count"));
  LOCKSTEP_ASSIGN_OR_RETURN(uint64_t kv_count, in.Read<uint64_t>("the metadata count"));
  // Each key-value takes at least 8 (key length) + 4 (type) + 1 bytes; each
  // tensor info at least 8 + 4 + 8 + 4 + 8.
  if (kv_count > in.remaining() / 13) {
    return DataLoss(
        "{}: truncated or corrupt GGUF: the header claims {} metadata entries, more than the {} "
        "bytes of the file can hold",
        path, kv_count, bytes.size());
  }
  if (tensor_count > in.remaining() / 32) {
    return DataLoss(
        "{}: truncated or corrupt GGUF: the header claims {} tensors, more than the {} bytes of "
        "the file can hold",
        path, tensor_count, bytes.size());
  }

  metadata.reserve(kv_count);
  for (uint64_t i = 0; i < kv_count; ++i) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::string key, in.ReadString(fmt::format("metadata key #{}", i)));
    LOCKSTEP_ASSIGN_OR_RETURN(uint32_t type_code,
                              in.Read<uint32_t>(fmt::format("the type of key '{}'", Shown(key))));
    if (!KnownType(type_code)) {
      return DataLoss("{}: GGUF key '{}' has unknown value type {} (known: 0 to 12)", path,
                      Shown(key), type_code);
    }
    LOCKSTEP_ASSIGN_OR_RETURN(GgufValue value,
                              ReadValue(in, path, Shown(key), static_cast<GgufType>(type_code), 0));
    if (!metadata_index.emplace(key, metadata.size()).second) {
      return DataLoss("{}: GGUF key '{}' appears twice", path, Shown(key));
    }
    metadata.emplace_back(std::move(key), std::move(value));
  }

  if (auto it = metadata_index.find("general.alignment"); it != metadata_index.end()) {
    const GgufValue* a = &metadata[it->second].second;
    const auto* value = std::get_if<uint32_t>(&a->storage());
    if (value == nullptr) return WrongType("general.alignment", *a, "uint32");
    if (*value == 0 || (*value & (*value - 1)) != 0) {
      return DataLoss("{}: GGUF key 'general.alignment' is {}, not a power of two", path, *value);
    }
    alignment = *value;
  }

  tensors.reserve(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo t;
    LOCKSTEP_ASSIGN_OR_RETURN(t.name, in.ReadString(fmt::format("the name of tensor #{}", i)));
    const std::string what = fmt::format("tensor '{}'", Shown(t.name));
    LOCKSTEP_ASSIGN_OR_RETURN(uint32_t n_dims, in.Read<uint32_t>(what));
    if (n_dims < 1 || n_dims > kMaxDims) {
      return DataLoss("{}: GGUF tensor '{}' has {} dimensions (1 to {} allowed)", path,
                      Shown(t.name), n_dims, kMaxDims);
    }
    for (uint32_t d = 0; d < n_dims; ++d) {
      LOCKSTEP_ASSIGN_OR_RETURN(uint64_t ne, in.Read<uint64_t>(what));
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return DataLoss("{}: GGUF tensor '{}' dimension {} is {}, too large", path, Shown(t.name),
                        d, ne);
      }
      t.dims.push_back(static_cast<int64_t>(ne));
    }
    LOCKSTEP_ASSIGN_OR_RETURN(t.ggml_type, in.Read<uint32_t>(what));
    LOCKSTEP_ASSIGN_OR_RETURN(t.offset, in.Read<uint64_t>(what));
    std::optional<GgmlTypeInfo> type = FindGgmlType(t.ggml_type);
    if (!type) {
      return InvalidArgument("{}: GGUF tensor '{}' has ggml type {}, unknown to this reader", path,
                             Shown(t.name), t.ggml_type);
    }
    if (t.dims[0] % type->block_size != 0) {
      return DataLoss("{}: GGUF tensor '{}' of type {} has ne[0] = {}, not a multiple of {}", path,
                      Shown(t.name), type->name, t.dims[0], type->block_size);
    }
    // elements / block_size * type_size without overflow.
    uint64_t blocks = static_cast<uint64_t>(t.dims[0] / type->block_size);
    for (size_t d = 1; d < t.dims.size(); ++d) {
      const uint64_t ne = static_cast<uint64_t>(t.dims[d]);
      if (ne != 0 && blocks > std::numeric_limits<uint64_t>::max() / ne) {
        return DataLoss("{}: GGUF tensor '{}' has a size that overflows 64 bits", path,
                        Shown(t.name));
      }
      blocks *= ne;
    }
    if (blocks > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(type->type_size)) {
      return DataLoss("{}: GGUF tensor '{}' has a size that overflows 64 bits", path,
                      Shown(t.name));
    }
    t.bytes = blocks * static_cast<uint64_t>(type->type_size);
    if (t.offset % alignment != 0) {
      return DataLoss("{}: GGUF tensor '{}' has offset {}, not a multiple of the alignment {}",
                      path, Shown(t.name), t.offset, alignment);
    }
    if (!tensor_index.emplace(t.name, tensors.size()).second) {
      return DataLoss("{}: GGUF tensor '{}' appears twice", path, Shown(t.name));
    }
    tensors.push_back(std::move(t));
  }

  // Data starts at the next multiple of the alignment.
  const uint64_t header_end = in.position();
  data_offset = (header_end + alignment - 1) / alignment * alignment;
  if (tensors.empty()) return Status::Ok();
  if (data_offset > bytes.size()) {
    return DataLoss(
        "{}: truncated GGUF: the tensor data should start at offset {}, but the file has {} bytes",
        path, data_offset, bytes.size());
  }
  const uint64_t data_size = bytes.size() - data_offset;
  for (const GgufTensorInfo& t : tensors) {
    if (t.offset > data_size || t.bytes > data_size - t.offset) {
      return DataLoss(
          "{}: truncated or corrupt GGUF: tensor '{}' ({} bytes at data offset {}) extends past "
          "the end of the file ({} bytes of tensor data)",
          path, Shown(t.name), t.bytes, t.offset, data_size);
    }
  }
  // No two tensors may share bytes: a header that points two tensors at the
  // same data is damaged or forged, and converting it would silently
  // duplicate weights.
  std::vector<const GgufTensorInfo*> by_offset;
  for (const GgufTensorInfo& t : tensors) {
    if (t.bytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo& a = *by_offset[i - 1];
    const GgufTensorInfo& b = *by_offset[i];
    if (a.offset + a.bytes > b.offset) {
      return DataLoss(
          "{}: corrupt GGUF: tensors '{}' (data offset {}, {} bytes) and '{}' (data offset {}) "
          "overlap",
          path, Shown(a.name), a.offset, a.bytes, Shown(b.name), b.offset);
    }
  }
  return Status::Ok();
}

Result<const GgufValue*> GgufFile::Impl::Get(std::string_view key) const {
  auto it = metadata_index.find(key);
  if (it == metadata_index.end()) return NotFound("{}: GGUF key '{}' is missing", path, Shown(key));
  return &metadata[it->second].second;
}

GgufFile::GgufFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GgufFile::~GgufFile() = default;
GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;

Result<GgufFile> GgufFile::Open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    if (error == ENOENT) return NotFound("{}: file not found", path);
    return IoError("{}: cannot open: {}", path, std::strerror(error));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument("{}: not a regular file", path);
  }
  impl->mapping = std::make_unique<Mapping>();
  if (st.st_size > 0) {
    void* address = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    const int error = errno;
    ::close(fd);
    if (address == MAP_FAILED) return IoError("{}: cannot map: {}", path, std::strerror(error));
    impl->mapping->address = address;
    impl->mapping->length = static_cast<size_t>(st.st_size);
    impl->bytes = {static_cast<const uint8_t*>(address), static_cast<size_t>(st.st_size)};
  } else {
    ::close(fd);
  }
  LOCKSTEP_RETURN_IF_ERROR(impl->ParseAll());
  return GgufFile(std::move(impl));
}

Result<GgufFile> GgufFile::Parse(std::vector<uint8_t> bytes, std::string name) {
  auto impl = std::make_unique<Impl>();
  impl->path = std::move(name);
  impl->owned = std::move(bytes);
  impl->bytes = impl->owned;
  LOCKSTEP_RETURN_IF_ERROR(impl->ParseAll());
  return GgufFile(std::move(impl));
}

const std::string& GgufFile::path() const {
  return impl_->path;
}
uint32_t GgufFile::version() const {
  return impl_->version;
}
uint64_t GgufFile::alignment() const {
  return impl_->alignment;
}
uint64_t GgufFile::data_offset() const {
  return impl_->data_offset;
}
uint64_t GgufFile::file_size() const {
  return impl_->bytes.size();
}
const std::vector<std::pair<std::string, GgufValue>>& GgufFile::metadata() const {
  return impl_->metadata;
}
const std::vector<GgufTensorInfo>& GgufFile::tensors() const {
  return impl_->tensors;
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = impl_->metadata_index.find(key);
  return it == impl_->metadata_index.end() ? nullptr : &impl_->metadata[it->second].second;
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = impl_->tensor_index.find(name);
  return it == impl_->tensor_index.end() ? nullptr : &impl_->tensors[it->second];
}

std::span<const uint8_t> GgufFile::TensorData(const GgufTensorInfo& tensor) const {
  return impl_->bytes.subspan(impl_->data_offset + tensor.offset, tensor.bytes);
}

Result<std::string> GgufFile::GetString(std::string_view key) const {
  LOCKSTEP_ASSIGN_OR_RETURN(const GgufValue* v, impl_->Get(key));
  if (const std::string* s = v->string()) return *s;
  return impl_->WrongType(key, *v, "a string");
}

Result<int64_t> GgufFile::GetInt(std::string_view key) const {
  LOCKSTEP_ASSIGN_OR_RETURN(const GgufValue* v, impl_->Get(key));
  if (std::optional<int64_t> i = v->ToInt64()) return *i;
  return impl_->WrongType(key, *v, "an integer");
}

Result<double> GgufFile::GetFloat(std::string_view key) const {
  LOCKSTEP_ASSIGN_OR_RETURN(const GgufValue* v, impl_->Get(key));
  if (std::optional<double> d = v->ToDouble()) return *d;
  return impl_->WrongType(key, *v, "a number");
}

Result<bool> GgufFile::GetBool(std::string_view key) const {
  LOCKSTEP_ASSIGN_OR_RETURN(const GgufValue* v, impl_->Get(key));
  if (std::optional<bool> b = v->ToBool()) return *b;
  return impl_->WrongType(key, *v, "a bool");
}

Result<std::vector<std::string>> GgufFile::GetStringArray(std::string_view key) const {
  LOCKSTEP_ASSIGN_OR_RETURN(const GgufValue* v, impl_->Get(key));
  const GgufArray* a = v->array();
  if (a == nullptr || a->element_type != GgufType::kString) {
    return impl_->WrongType(key, *v, "an array of strings");
  }
  std::vector<std::string> out;
  out.reserve(a->values.size());
  for (const GgufValue& e : a->values) out.push_back(*e.string());
  return out;
}

Result<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  LOCKSTEP_ASSIGN_OR_RETURN(const GgufValue* v, impl_->Get(key));
  const GgufArray* a = v->array();
  if (a == nullptr) return impl_->WrongType(key, *v, "an array of integers");
  std::vector<int64_t> out;
  out.reserve(a->values.size());
  for (size_t i = 0; i < a->values.size(); ++i) {
    std::optional<int64_t> e = a->values[i].ToInt64();
    if (!e) {
      return InvalidArgument("{}: GGUF key '{}' element {} is {}, expected an integer", impl_->path,
                             Shown(key), i, a->values[i].Describe());
    }
    out.push_back(*e);
  }
  return out;
}

Result<std::vector<float>> GgufFile::GetFloatArray(std::string_view key) const {
  LOCKSTEP_ASSIGN_OR_RETURN(const GgufValue* v, impl_->Get(key));
  const GgufArray* a = v->array();
  if (a == nullptr ||
      (a->element_type != GgufType::kFloat32 && a->element_type != GgufType::kFloat64)) {
    return impl_->WrongType(key, *v, "an array of float32");
  }
  std::vector<float> out;
  out.reserve(a->values.size());
  for (const GgufValue& e : a->values) out.push_back(static_cast<float>(*e.ToDouble()));
  return out;
}

}  // namespace lockstep::runtime
