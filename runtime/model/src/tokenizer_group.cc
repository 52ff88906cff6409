#include "tokenizer_group.h"

#include <fmt/format.h>

#include <climits>
#include <vector>

#include "hdf5_attribute.h"
#include "hdf5_error.h"
#include "hdf5_handle.h"
#include "model_integrity.h"

namespace lockstep::runtime {

namespace {

// A 1-D uint8 dataset holding `bytes`, with their SHA-256 as its `sha256`
// attribute (verified on read). Returns the digest.
Result<std::string> WriteBytesDataset(hid_t file, std::string_view file_name, const char* name,
                                      std::string_view bytes) {
  const hsize_t size = bytes.size();
  H5Dataspace space(H5Screate_simple(1, &size, nullptr));
  H5PropertyList dcpl(H5Pcreate(H5P_DATASET_CREATE));
  H5Pset_obj_track_times(dcpl.get(), 0);
  H5Dataset dataset(
      H5Dcreate2(file, name, H5T_STD_U8LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
  if (!dataset.valid()) {
    return Hdf5Error(StatusCode::kIo,
                     fmt::format("{}: cannot create dataset '{}'", file_name, name));
  }
  if (size > 0 &&
      H5Dwrite(dataset.get(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()) < 0) {
    return Hdf5Error(StatusCode::kIo,
                     fmt::format("{}: cannot write dataset '{}'", file_name, name));
  }
  std::string digest = DigestHex(bytes.data(), bytes.size());
  LOCKSTEP_RETURN_IF_ERROR(WriteStringAttribute(
      dataset.get(), fmt::format("{}: '{}'", file_name, name), kSha256Attribute, digest));
  return digest;
}

}  // namespace

Result<std::string> WriteTokenizerGroup(hid_t file, std::string_view file_name,
                                        const TokenizerData& t) {
  H5PropertyList gcpl(H5Pcreate(H5P_GROUP_CREATE));
  H5Pset_obj_track_times(gcpl.get(), 0);
  H5Group group(H5Gcreate2(file, kTokenizerGroup, H5P_DEFAULT, gcpl.get(), H5P_DEFAULT));
  if (!group.valid()) {
    return Hdf5Error(StatusCode::kIo,
                     fmt::format("{}: cannot create group '{}'", file_name, kTokenizerGroup));
  }
  LOCKSTEP_RETURN_IF_ERROR(
      WriteStringAttribute(group.get(), file_name, "kind", TokenizerKindName(t.kind)));
  LOCKSTEP_RETURN_IF_ERROR(
      WriteIntAttribute(group.get(), file_name, "bos_token_id", t.bos_token_id));
  LOCKSTEP_RETURN_IF_ERROR(
      WriteIntAttribute(group.get(), file_name, "eos_token_id", t.eos_token_id));
  LOCKSTEP_RETURN_IF_ERROR(
      WriteIntAttribute(group.get(), file_name, "add_bos_token", t.add_bos_token ? 1 : 0));
  LOCKSTEP_RETURN_IF_ERROR(WriteStringAttribute(group.get(), file_name, "source", t.source));

  LOCKSTEP_ASSIGN_OR_RETURN(std::string digest,
                            WriteBytesDataset(file, file_name, kTokenizerDataset, t.data));
  if (!t.chat_template.empty()) {
    LOCKSTEP_RETURN_IF_ERROR(
        WriteBytesDataset(file, file_name, kChatTemplateDataset, t.chat_template).status());
  }
  return digest;
}

namespace {

// The data dataset, checked: 1-D, an 8-bit unsigned integer type, not empty.
Result<std::pair<H5Dataset, hsize_t>> OpenDataDataset(hid_t file, std::string_view file_name) {
  if (H5Lexists(file, kTokenizerDataset, H5P_DEFAULT) <= 0) {
    return InvalidArgument("{}: the tokenizer group has no dataset '{}'", file_name,
                           kTokenizerDataset);
  }
  H5Dataset dataset(H5Dopen2(file, kTokenizerDataset, H5P_DEFAULT));
  if (!dataset.valid()) {
    return Hdf5Error(StatusCode::kDataLoss,
                     fmt::format("{}: cannot open dataset '{}'", file_name, kTokenizerDataset));
  }
  H5Datatype type(H5Dget_type(dataset.get()));
  H5Dataspace space(H5Dget_space(dataset.get()));
  hsize_t size = 0;
  const bool bytes = H5Tget_class(type.get()) == H5T_INTEGER && H5Tget_size(type.get()) == 1 &&
                     H5Tget_sign(type.get()) == H5T_SGN_NONE;
  if (!bytes || H5Sget_simple_extent_ndims(space.get()) != 1 ||
      H5Sget_simple_extent_dims(space.get(), &size, nullptr) != 1 || size == 0) {
    return InvalidArgument("{}: dataset '{}' must be a non-empty 1-D array of uint8", file_name,
                           kTokenizerDataset);
  }
  return std::make_pair(std::move(dataset), size);
}

}  // namespace

Result<TokenizerData> ReadTokenizerAttributes(hid_t file, std::string_view file_name,
                                              std::optional<std::string>* digest) {
  H5Group group(H5Gopen2(file, kTokenizerGroup, H5P_DEFAULT));
  if (!group.valid()) {
    return Hdf5Error(StatusCode::kInvalidArgument,
                     fmt::format("{}: '{}' is not a group", file_name, kTokenizerGroup));
  }
  const std::string where = fmt::format("{} (group {})", file_name, kTokenizerGroup);
  TokenizerData t;
  LOCKSTEP_ASSIGN_OR_RETURN(std::string kind, ReadStringAttribute(group.get(), where, "kind"));
  Result<TokenizerKind> parsed = ParseTokenizerKind(kind);
  if (!parsed.ok()) return parsed.status().WithContext(where + ": attribute 'kind'");
  t.kind = *parsed;
  auto read_id = [&](const char* name, int32_t* out) -> Status {
    LOCKSTEP_ASSIGN_OR_RETURN(int64_t v, ReadIntAttribute(group.get(), where, name));
    if (v < -1 || v > INT32_MAX) {
      return InvalidArgument("{}: attribute '{}' is {}, not a token id or -1", where, name, v);
    }
    *out = static_cast<int32_t>(v);
    return Status::Ok();
  };
  LOCKSTEP_RETURN_IF_ERROR(read_id("bos_token_id", &t.bos_token_id));
  LOCKSTEP_RETURN_IF_ERROR(read_id("eos_token_id", &t.eos_token_id));
  LOCKSTEP_ASSIGN_OR_RETURN(t.add_bos_token,
                            ReadBoolAttribute(group.get(), where, "add_bos_token"));
  if (HasAttribute(group.get(), "source")) {
    LOCKSTEP_ASSIGN_OR_RETURN(t.source, ReadStringAttribute(group.get(), where, "source"));
  }
  t.source = t.source.empty() ? where : fmt::format("{} (from {})", where, t.source);
  LOCKSTEP_ASSIGN_OR_RETURN(auto dataset, OpenDataDataset(file, file_name));
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<std::string> data_digest,
                            ReadDigestAttribute(dataset.first.get(), file_name, kTokenizerDataset));
  if (digest != nullptr) *digest = std::move(data_digest);
  return t;
}

Result<TokenizerData> ReadTokenizerGroup(hid_t file, std::string_view file_name) {
  std::optional<std::string> digest;
  LOCKSTEP_ASSIGN_OR_RETURN(TokenizerData t, ReadTokenizerAttributes(file, file_name, &digest));
  LOCKSTEP_ASSIGN_OR_RETURN(auto dataset, OpenDataDataset(file, file_name));
  t.data.resize(dataset.second);
  if (H5Dread(dataset.first.get(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data.data()) <
      0) {
    return Hdf5Error(StatusCode::kDataLoss,
                     fmt::format("{}: cannot read dataset '{}'", file_name, kTokenizerDataset));
  }
  if (digest && DigestHex(t.data.data(), t.data.size()) != *digest) {
    return DataLoss(
        "{}: dataset '{}' does not match its sha256 attribute: the file is damaged (`lockstep "
        "verify {}` checks every tensor)",
        file_name, kTokenizerDataset, file_name);
  }
  if (H5Lexists(file, kChatTemplateDataset, H5P_DEFAULT) > 0) {
    H5Dataset chat(H5Dopen2(file, kChatTemplateDataset, H5P_DEFAULT));
    H5Datatype type(H5Dget_type(chat.get()));
    H5Dataspace space(H5Dget_space(chat.get()));
    hsize_t size = 0;
    const bool bytes = chat.valid() && H5Tget_class(type.get()) == H5T_INTEGER &&
                       H5Tget_size(type.get()) == 1 && H5Tget_sign(type.get()) == H5T_SGN_NONE;
    if (!bytes || H5Sget_simple_extent_ndims(space.get()) != 1 ||
        H5Sget_simple_extent_dims(space.get(), &size, nullptr) != 1) {
      return InvalidArgument("{}: dataset '{}' must be a 1-D array of uint8 (UTF-8 text)",
                             file_name, kChatTemplateDataset);
    }
    LOCKSTEP_ASSIGN_OR_RETURN(std::optional<std::string> chat_digest,
                              ReadDigestAttribute(chat.get(), file_name, kChatTemplateDataset));
    t.chat_template.resize(size);
    if (size > 0 && H5Dread(chat.get(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                            t.chat_template.data()) < 0) {
      return Hdf5Error(StatusCode::kDataLoss, fmt::format("{}: cannot read dataset '{}'", file_name,
                                                          kChatTemplateDataset));
    }
    if (chat_digest &&
        DigestHex(t.chat_template.data(), t.chat_template.size()) != *chat_digest) {
      return DataLoss(
          "{}: dataset '{}' does not match its sha256 attribute: the file is damaged (`lockstep "
          "verify {}` checks every tensor)",
          file_name, kChatTemplateDataset, file_name);
    }
  }
  return t;
}

}  // namespace lockstep::runtime
