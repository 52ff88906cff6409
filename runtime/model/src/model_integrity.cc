#include "model_integrity.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <cstring>

#include "hdf5_attribute.h"
#include "hdf5_error.h"
#include "lockstep/base/check.h"

namespace lockstep::runtime {

struct Sha256Digest::Context {
  struct Free {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx;
};

Sha256Digest::Sha256Digest() : context_(std::make_unique<Context>()) {
  context_->ctx.reset(EVP_MD_CTX_new());
  LOCKSTEP_CHECK(context_->ctx != nullptr, "EVP_MD_CTX_new failed (out of memory)");
  LOCKSTEP_CHECK(EVP_DigestInit_ex(context_->ctx.get(), EVP_sha256(), nullptr) == 1,
                 "EVP_DigestInit_ex(sha256) failed");
}
Sha256Digest::~Sha256Digest() = default;
Sha256Digest::Sha256Digest(Sha256Digest&&) noexcept = default;
Sha256Digest& Sha256Digest::operator=(Sha256Digest&&) noexcept = default;

void Sha256Digest::Update(const void* data, size_t bytes) {
  if (bytes == 0) return;
  LOCKSTEP_CHECK(EVP_DigestUpdate(context_->ctx.get(), data, bytes) == 1, "EVP_DigestUpdate");
}

std::string Sha256Digest::FinishHex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned size = 0;
  LOCKSTEP_CHECK(EVP_DigestFinal_ex(context_->ctx.get(), digest, &size) == 1, "EVP_DigestFinal");
  LOCKSTEP_CHECK(EVP_DigestInit_ex(context_->ctx.get(), EVP_sha256(), nullptr) == 1,
                 "EVP_DigestInit_ex(sha256) failed");
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(2 * size, '0');
  for (unsigned i = 0; i < size; ++i) {
    hex[2 * i] = kDigits[digest[i] >> 4];
    hex[2 * i + 1] = kDigits[digest[i] & 15];
  }
  return hex;
}

std::string DigestHex(const void* data, size_t bytes) {
  Sha256Digest hash;
  hash.Update(data, bytes);
  return hash.FinishHex();
}

std::string ManifestText(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string text;
  for (const auto& [path, digest] : entries) text += fmt::format("{}  {}\n", digest, path);
  return text;
}

H5PropertyList TensorCreationProperties(const std::vector<hsize_t>& chunk) {
  H5PropertyList dcpl(H5Pcreate(H5P_DATASET_CREATE));
  LOCKSTEP_CHECK(dcpl.valid());
  LOCKSTEP_CHECK(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()) >= 0);
  LOCKSTEP_CHECK(H5Pset_fletcher32(dcpl.get()) >= 0, "HDF5 without the Fletcher32 filter");
  LOCKSTEP_CHECK(H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY) >= 0);
  LOCKSTEP_CHECK(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER) >= 0);
  LOCKSTEP_CHECK(H5Pset_obj_track_times(dcpl.get(), 0) >= 0);
  return dcpl;
}

H5PropertyList WriterFileAccess() {
  H5PropertyList fapl(H5Pcreate(H5P_FILE_ACCESS));
  LOCKSTEP_CHECK(fapl.valid());
  LOCKSTEP_CHECK(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_V110) >= 0);
  return fapl;
}

H5PropertyList WriterTransfer() {
  H5PropertyList dxpl(H5Pcreate(H5P_DATASET_XFER));
  LOCKSTEP_CHECK(dxpl.valid());
  LOCKSTEP_CHECK(H5Pset_edc_check(dxpl.get(), H5Z_DISABLE_EDC) >= 0);
  return dxpl;
}

bool HasFletcher32(hid_t dcpl) {
  const int filters = H5Pget_nfilters(dcpl);
  for (int i = 0; i < filters; ++i) {
    unsigned flags = 0;
    size_t elements = 0;
    unsigned config = 0;
    if (H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &elements, nullptr, 0, nullptr,
                       &config) == H5Z_FILTER_FLETCHER32) {
      return true;
    }
  }
  H5Eclear2(H5E_DEFAULT);
  return false;
}

namespace {

template <typename Word>
int64_t FindExponentAllOnes(const void* data, int64_t count, Word mask) {
  // Branch-free blocks (vectorised by the compiler), then the exact index.
  const Word* words = static_cast<const Word*>(data);
  constexpr int64_t kBlock = 1024;
  for (int64_t begin = 0; begin < count; begin += kBlock) {
    const int64_t end = std::min(count, begin + kBlock);
    Word any = 0;
    for (int64_t i = begin; i < end; ++i) {
      Word w;
      std::memcpy(&w, words + i, sizeof(w));
      any |= static_cast<Word>((w & mask) == mask);
    }
    if (any == 0) continue;
    for (int64_t i = begin; i < end; ++i) {
      Word w;
      std::memcpy(&w, words + i, sizeof(w));
      if ((w & mask) == mask) return i;
    }
  }
  return -1;
}

}  // namespace

int64_t FindNonFinite(DType dtype, const void* data, int64_t count) {
  switch (dtype) {
    case DType::kF32:
      return FindExponentAllOnes<uint32_t>(data, count, 0x7f800000u);
    case DType::kF16:
      return FindExponentAllOnes<uint16_t>(data, count, 0x7c00u);
    case DType::kBF16:
      return FindExponentAllOnes<uint16_t>(data, count, 0x7f80u);
    case DType::kQ8_0:
    case DType::kQ4_0:
      break;  // their scales: FirstNonFiniteScale (base/quant_block.h)
  }
  return -1;
}

namespace {

herr_t FindChecksumError(unsigned /*n*/, const H5E_error2_t* error, void* client_data) {
  auto* found = static_cast<bool*>(client_data);
  if (error->desc != nullptr && std::strstr(error->desc, "Fletcher32") != nullptr) *found = true;
  if (error->maj_num == H5E_STORAGE && error->min_num == H5E_READERROR && error->desc != nullptr &&
      std::strstr(error->desc, "filter") != nullptr) {
    *found = true;
  }
  return 0;
}

bool IsHexDigest(std::string_view text) {
  if (text.size() != kSha256HexDigits) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

bool Hdf5StackHasChecksumError() {
  bool found = false;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, FindChecksumError, &found);
  return found;
}

Result<std::optional<std::string>> ReadDigestAttribute(hid_t dataset, std::string_view file,
                                                       std::string_view path) {
  if (!HasAttribute(dataset, kSha256Attribute)) return std::optional<std::string>();
  const std::string where = fmt::format("{}: tensor '{}'", file, path);
  Result<std::string> text = ReadStringAttribute(dataset, where, kSha256Attribute);
  if (!text.ok()) return text.status();
  if (!IsHexDigest(*text)) {
    return InvalidArgument("{}: attribute '{}' is not 64 lowercase hex digits: the file is damaged",
                           where, kSha256Attribute);
  }
  return std::optional<std::string>(std::move(text).value());
}

Status CreateDigestAttribute(hid_t object, std::string_view file, std::string_view path) {
  return WriteStringAttribute(object, fmt::format("{}: '{}'", file, path), kSha256Attribute,
                              std::string(kSha256HexDigits, '0'));
}

Status WriteDigestAttribute(hid_t object, std::string_view file, std::string_view path,
                            std::string_view hex) {
  LOCKSTEP_CHECK(hex.size() == kSha256HexDigits);
  H5Attribute attribute(H5Aopen(object, kSha256Attribute, H5P_DEFAULT));
  H5Datatype type(attribute.valid() ? H5Aget_type(attribute.get()) : H5I_INVALID_HID);
  std::string buffer(hex);
  if (!attribute.valid() || !type.valid() || H5Awrite(attribute.get(), type.get(), buffer.c_str()) < 0) {
    return Hdf5Error(StatusCode::kIo,
                     fmt::format("{}: cannot write the digest of '{}'", file, path));
  }
  return Status::Ok();
}

}  // namespace lockstep::runtime
