// The integrity layer of model files (docs/model-format.md, "Checksums"):
// what the writer adds so that a reader can tell a damaged or different
// file from the one that was written, and the checks readers make.
//
//   * every chunked dataset is written with HDF5's Fletcher32 filter: one
//     checksum per chunk, verified by HDF5 on every chunk it reads;
//   * the file uses the HDF5 1.10 object format (H5F_LIBVER_V110), whose
//     superblock, object headers and chunk indexes carry checksums of their
//     own, so damaged metadata is refused at open rather than misread;
//   * every tensor (and /tokenizer/data) has a string attribute `sha256`:
//     the SHA-256 of its stored bytes, row-major, as 64 lowercase hex digits;
//   * the root attribute `manifest_sha256` is the SHA-256 of the manifest,
//     the text "<sha256>  <path>\n" per tensor in inventory order, then the
//     tokenizer data's line (the format of `sha256sum`).
//
// Everything here runs under Hdf5Lock (the callers hold it).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hdf5_handle.h"
#include "lockstep/base/dtype.h"
#include "lockstep/base/status.h"

namespace lockstep::runtime {

inline constexpr char kSha256Attribute[] = "sha256";
inline constexpr char kManifestAttribute[] = "manifest_sha256";
inline constexpr size_t kSha256HexDigits = 64;

// A streaming SHA-256 (OpenSSL's EVP). Not thread-safe. (Named apart from
// job's Sha256Hex: both libraries are linked into one program.)
class Sha256Digest {
 public:
  Sha256Digest();
  ~Sha256Digest();
  Sha256Digest(Sha256Digest&&) noexcept;
  Sha256Digest& operator=(Sha256Digest&&) noexcept;
  void Update(const void* data, size_t bytes);
  // The digest as 64 lowercase hex digits; the object then starts over.
  std::string FinishHex();

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

// SHA-256 of a byte string, as 64 lowercase hex digits.
std::string DigestHex(const void* data, size_t bytes);

// One manifest line per (path, digest), in the order given.
std::string ManifestText(const std::vector<std::pair<std::string, std::string>>& entries);

// The creation properties of every tensor dataset the writer makes: chunked
// as given, Fletcher32, all chunks allocated at creation and never filled
// (the bytes then depend only on what is written, docs/model-format.md
// "Reproducible files"), no timestamps.
H5PropertyList TensorCreationProperties(const std::vector<hsize_t>& chunk);

// The file access properties of files the writer creates: the HDF5 1.10
// object format (checksummed metadata).
H5PropertyList WriterFileAccess();

// The transfer properties of the writer's H5Dwrite calls: checksum
// verification off, because a partly written chunk may be read back (to
// merge the next rows into it) before its checksum was ever computed.
H5PropertyList WriterTransfer();

// Whether a dataset's creation property list has the Fletcher32 filter.
bool HasFletcher32(hid_t dcpl);

// The index of the first NaN or infinity among `count` values of `dtype`
// at `data`, or -1 when every value is finite.
int64_t FindNonFinite(DType dtype, const void* data, int64_t count);

// Whether an HDF5 read failure (the error stack, inspected before
// Hdf5Error clears it) was a failed Fletcher32 checksum.
bool Hdf5StackHasChecksumError();

// The `sha256` attribute of a dataset: nullopt when absent, InvalidArgument
// when present but not 64 hex digits.
Result<std::optional<std::string>> ReadDigestAttribute(hid_t dataset, std::string_view file,
                                                       std::string_view path);

// Creates (with a placeholder value) or overwrites the `sha256` attribute.
// The attribute is created when the dataset is, so that writing its value at
// the end does not change the object header's layout.
Status CreateDigestAttribute(hid_t object, std::string_view file, std::string_view path);
Status WriteDigestAttribute(hid_t object, std::string_view file, std::string_view path,
                            std::string_view hex);

}  // namespace lockstep::runtime
