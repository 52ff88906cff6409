// A GGUF writer for tests, following the GGUF specification (ggml's
// docs/gguf.md) byte by byte, so that tests can make valid files and then
// damage them in precise ways. Little-endian, version 3 by default.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace lockstep::runtime::testing {

class GgufTestWriter {
 public:
  // Raw little-endian appends, for building values by hand.
  template <typename T>
  static void Put(std::vector<uint8_t>* out, T value) {
    uint8_t bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));
    out->insert(out->end(), bytes, bytes + sizeof(T));
  }
  static void PutString(std::vector<uint8_t>* out, std::string_view s) {
    Put<uint64_t>(out, s.size());
    out->insert(out->end(), s.begin(), s.end());
  }

  // A key with a value already encoded (type code + bytes).
  void AddRaw(std::string_view key, uint32_t type, const std::vector<uint8_t>& value) {
    PutString(&kv_, key);
    Put<uint32_t>(&kv_, type);
    kv_.insert(kv_.end(), value.begin(), value.end());
    ++kv_count_;
  }
  template <typename T>
  void AddScalar(std::string_view key, uint32_t type, T value) {
    std::vector<uint8_t> v;
    Put<T>(&v, value);
    AddRaw(key, type, v);
  }
  void AddString(std::string_view key, std::string_view value) {
    std::vector<uint8_t> v;
    PutString(&v, value);
    AddRaw(key, 8, v);
  }
  void AddStringArray(std::string_view key, const std::vector<std::string>& values) {
    std::vector<uint8_t> v;
    Put<uint32_t>(&v, 8);
    Put<uint64_t>(&v, values.size());
    for (const std::string& s : values) PutString(&v, s);
    AddRaw(key, 9, v);
  }
  template <typename T>
  void AddArray(std::string_view key, uint32_t element_type, const std::vector<T>& values) {
    std::vector<uint8_t> v;
    Put<uint32_t>(&v, element_type);
    Put<uint64_t>(&v, values.size());
    for (const T& x : values) Put<T>(&v, x);
    AddRaw(key, 9, v);
  }

  // A tensor: ggml dims (ne[0] first), type, and its data bytes. Offsets
  // are assigned in order, each aligned.
  void AddTensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type,
                 std::vector<uint8_t> data) {
    tensors_.push_back({std::string(name), std::move(dims), type, std::move(data)});
  }

  // Makes the header claim `offset` for tensor `index` (a forged header:
  // the data stays where it was).
  void SetOffset(size_t index, uint64_t offset) {
    if (forced_offsets_.size() <= index) forced_offsets_.resize(index + 1, kNoOffset);
    forced_offsets_[index] = offset;
  }

  std::vector<uint8_t> Bytes(uint32_t version = 3, uint64_t alignment = 32) const {
    std::vector<uint8_t> out = {'G', 'G', 'U', 'F'};
    Put<uint32_t>(&out, version);
    Put<uint64_t>(&out, tensors_.size());
    Put<uint64_t>(&out, kv_count_);
    out.insert(out.end(), kv_.begin(), kv_.end());
    uint64_t offset = 0;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const Tensor& t = tensors_[i];
      PutString(&out, t.name);
      Put<uint32_t>(&out, static_cast<uint32_t>(t.dims.size()));
      for (uint64_t d : t.dims) Put<uint64_t>(&out, d);
      Put<uint32_t>(&out, t.type);
      const bool forced = i < forced_offsets_.size() && forced_offsets_[i] != kNoOffset;
      Put<uint64_t>(&out, forced ? forced_offsets_[i] : offset);
      offset += (t.data.size() + alignment - 1) / alignment * alignment;
    }
    while (out.size() % alignment != 0) out.push_back(0);
    for (const Tensor& t : tensors_) {
      out.insert(out.end(), t.data.begin(), t.data.end());
      while (out.size() % alignment != 0) out.push_back(0);
    }
    return out;
  }

 private:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;
    uint32_t type;
    std::vector<uint8_t> data;
  };
  static constexpr uint64_t kNoOffset = ~uint64_t{0};
  std::vector<uint8_t> kv_;
  uint64_t kv_count_ = 0;
  std::vector<Tensor> tensors_;
  std::vector<uint64_t> forced_offsets_;
};

}  // namespace lockstep::runtime::testing
