#include "hdf5_attribute.h"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "hdf5_dtype.h"
#include "hdf5_error.h"
#include "hdf5_handle.h"

namespace lockstep::runtime {
namespace {

Status WriteScalar(hid_t object, std::string_view file, const char* name, hid_t file_type,
                   hid_t memory_type, const void* value) {
  H5Dataspace space(H5Screate(H5S_SCALAR));
  H5Attribute attribute(H5Acreate2(object, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attribute.valid()) {
    return Hdf5Error(StatusCode::kIo, fmt::format("{}: cannot create attribute '{}'", file, name));
  }
  if (H5Awrite(attribute.get(), memory_type, value) < 0) {
    return Hdf5Error(StatusCode::kIo, fmt::format("{}: cannot write attribute '{}'", file, name));
  }
  return Status::Ok();
}

// An open attribute with its type, after checking it exists and holds one value.
struct OpenAttribute {
  H5Attribute attribute;
  H5Datatype type;
};

Result<OpenAttribute> Open(hid_t object, std::string_view file, const char* name) {
  if (!HasAttribute(object, name)) {
    return NotFound("{}: attribute '{}' is missing from the root group", file, name);
  }
  OpenAttribute open;
  open.attribute = H5Attribute(H5Aopen(object, name, H5P_DEFAULT));
  if (!open.attribute.valid()) {
    return Hdf5Error(StatusCode::kDataLoss,
                     fmt::format("{}: cannot open attribute '{}'", file, name));
  }
  open.type = H5Datatype(H5Aget_type(open.attribute.get()));
  H5Dataspace space(H5Aget_space(open.attribute.get()));
  if (!open.type.valid() || !space.valid()) {
    return Hdf5Error(StatusCode::kDataLoss,
                     fmt::format("{}: cannot read attribute '{}'", file, name));
  }
  if (H5Sget_simple_extent_npoints(space.get()) != 1) {
    return InvalidArgument("{}: attribute '{}' must hold a single value, it holds {}", file, name,
                           H5Sget_simple_extent_npoints(space.get()));
  }
  return open;
}

Status WrongType(std::string_view file, const char* name, const char* expected, hid_t type) {
  return InvalidArgument("{}: attribute '{}' must be {}, found {}", file, name, expected,
                         DescribeHdf5Type(type));
}

Status ReadFailed(std::string_view file, const char* name) {
  return Hdf5Error(StatusCode::kDataLoss,
                   fmt::format("{}: cannot read attribute '{}'", file, name));
}

}  // namespace

bool HasAttribute(hid_t object, const char* name) {
  return H5Aexists(object, name) > 0;
}

Status WriteStringAttribute(hid_t object, std::string_view file, const char* name,
                            std::string_view value) {
  H5Datatype type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), value.size() + 1);  // + the terminating NUL
  H5Tset_strpad(type.get(), H5T_STR_NULLTERM);
  H5Tset_cset(type.get(), H5T_CSET_ASCII);
  std::string buffer(value);  // NUL-terminated by std::string
  return WriteScalar(object, file, name, type.get(), type.get(), buffer.c_str());
}

Status WriteIntAttribute(hid_t object, std::string_view file, const char* name, int64_t value) {
  return WriteScalar(object, file, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

Status WriteDoubleAttribute(hid_t object, std::string_view file, const char* name, double value) {
  return WriteScalar(object, file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

Status WriteDoubleArrayAttribute(hid_t object, std::string_view file, const char* name,
                                 const std::vector<double>& values) {
  const hsize_t n = values.size();
  H5Dataspace space(H5Screate_simple(1, &n, nullptr));
  H5Attribute attribute(
      H5Acreate2(object, name, H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attribute.valid()) {
    return Hdf5Error(StatusCode::kIo, fmt::format("{}: cannot create attribute '{}'", file, name));
  }
  if (H5Awrite(attribute.get(), H5T_NATIVE_DOUBLE, values.data()) < 0) {
    return Hdf5Error(StatusCode::kIo, fmt::format("{}: cannot write attribute '{}'", file, name));
  }
  return Status::Ok();
}

Result<std::vector<double>> ReadDoubleArrayAttribute(hid_t object, std::string_view file,
                                                     const char* name) {
  if (!HasAttribute(object, name)) {
    return NotFound("{}: attribute '{}' is missing from the root group", file, name);
  }
  H5Attribute attribute(H5Aopen(object, name, H5P_DEFAULT));
  if (!attribute.valid()) {
    return Hdf5Error(StatusCode::kDataLoss,
                     fmt::format("{}: cannot open attribute '{}'", file, name));
  }
  H5Datatype type(H5Aget_type(attribute.get()));
  H5Dataspace space(H5Aget_space(attribute.get()));
  if (!type.valid() || !space.valid()) return ReadFailed(file, name);
  const H5T_class_t type_class = H5Tget_class(type.get());
  if (type_class != H5T_FLOAT && type_class != H5T_INTEGER) {
    return WrongType(file, name, "a list of numbers", type.get());
  }
  if (H5Sget_simple_extent_ndims(space.get()) > 1) {
    return InvalidArgument("{}: attribute '{}' must be one-dimensional", file, name);
  }
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0 || n > (1 << 20)) return ReadFailed(file, name);
  std::vector<double> values(static_cast<size_t>(n));
  if (n > 0 && H5Aread(attribute.get(), H5T_NATIVE_DOUBLE, values.data()) < 0) {
    return ReadFailed(file, name);
  }
  return values;
}

Result<std::string> ReadStringAttribute(hid_t object, std::string_view file, const char* name) {
  LOCKSTEP_ASSIGN_OR_RETURN(OpenAttribute open, Open(object, file, name));
  hid_t type = open.type.get();
  if (H5Tget_class(type) != H5T_STRING) return WrongType(file, name, "a string", type);
  if (H5Tis_variable_str(type) > 0) {
    H5Datatype memory(H5Tcopy(H5T_C_S1));
    H5Tset_size(memory.get(), H5T_VARIABLE);
    H5Tset_cset(memory.get(), H5Tget_cset(type));
    char* text = nullptr;
    if (H5Aread(open.attribute.get(), memory.get(), &text) < 0) return ReadFailed(file, name);
    std::string value = text != nullptr ? text : "";
    H5free_memory(text);
    return value;
  }
  const size_t size = H5Tget_size(type);
  std::vector<char> buffer(size + 1, '\0');
  if (H5Aread(open.attribute.get(), type, buffer.data()) < 0) return ReadFailed(file, name);
  // Fixed-length: NUL-terminated, NUL-padded or space-padded.
  std::string value(buffer.data(), strnlen(buffer.data(), size));
  if (H5Tget_strpad(type) == H5T_STR_SPACEPAD) {
    while (!value.empty() && value.back() == ' ') value.pop_back();
  }
  return value;
}

Result<int64_t> ReadIntAttribute(hid_t object, std::string_view file, const char* name) {
  LOCKSTEP_ASSIGN_OR_RETURN(OpenAttribute open, Open(object, file, name));
  if (H5Tget_class(open.type.get()) != H5T_INTEGER) {
    return WrongType(file, name, "an integer", open.type.get());
  }
  int64_t value = 0;
  if (H5Aread(open.attribute.get(), H5T_NATIVE_INT64, &value) < 0) return ReadFailed(file, name);
  return value;
}

Result<double> ReadDoubleAttribute(hid_t object, std::string_view file, const char* name) {
  LOCKSTEP_ASSIGN_OR_RETURN(OpenAttribute open, Open(object, file, name));
  H5T_class_t type_class = H5Tget_class(open.type.get());
  if (type_class != H5T_FLOAT && type_class != H5T_INTEGER) {
    return WrongType(file, name, "a number", open.type.get());
  }
  double value = 0;
  if (H5Aread(open.attribute.get(), H5T_NATIVE_DOUBLE, &value) < 0) return ReadFailed(file, name);
  return value;
}

Result<bool> ReadBoolAttribute(hid_t object, std::string_view file, const char* name) {
  LOCKSTEP_ASSIGN_OR_RETURN(OpenAttribute open, Open(object, file, name));
  hid_t type = open.type.get();
  if (H5Tget_class(type) == H5T_ENUM) {
    // h5py writes numpy.bool_ as an enum {FALSE = 0, TRUE = 1} over int8.
    H5Datatype native(H5Tget_native_type(type, H5T_DIR_ASCEND));
    const size_t size = H5Tget_size(native.get());
    if (size > 8) return WrongType(file, name, "0 or 1", type);
    unsigned char raw[8] = {};
    if (H5Aread(open.attribute.get(), native.get(), raw) < 0) return ReadFailed(file, name);
    char label[16] = {};
    if (H5Tenum_nameof(native.get(), raw, label, sizeof(label)) < 0) {
      H5Eclear2(H5E_DEFAULT);
      return WrongType(file, name, "0 or 1", type);
    }
    if (std::strcmp(label, "TRUE") == 0) return true;
    if (std::strcmp(label, "FALSE") == 0) return false;
    return InvalidArgument("{}: attribute '{}' must be 0 or 1, found enum value '{}'", file, name,
                           label);
  }
  if (H5Tget_class(type) != H5T_INTEGER) return WrongType(file, name, "an integer 0 or 1", type);
  int64_t value = 0;
  if (H5Aread(open.attribute.get(), H5T_NATIVE_INT64, &value) < 0) return ReadFailed(file, name);
  if (value != 0 && value != 1) {
    return InvalidArgument("{}: attribute '{}' must be 0 or 1, found {}", file, name, value);
  }
  return value == 1;
}

}  // namespace lockstep::runtime
