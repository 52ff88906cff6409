#include "hdf5_dtype.h"

#include <fmt/format.h>

#include "lockstep/base/check.h"

namespace lockstep::runtime {
namespace {

// A 16-bit float with the given exponent/mantissa widths, built the way h5py
// builds float16: copy F32LE, move the fields, shrink, set the bias.
H5Datatype MakeHalfWidthFloat(size_t exponent_bits, size_t mantissa_bits, size_t bias) {
  H5Datatype type(H5Tcopy(H5T_IEEE_F32LE));
  LOCKSTEP_CHECK(type.valid());
  // H5Tset_fields(type, sign position, exponent position, exponent size,
  //               mantissa position, mantissa size)
  LOCKSTEP_CHECK(H5Tset_fields(type.get(), 15, mantissa_bits, exponent_bits, 0, mantissa_bits) >=
                 0);
  LOCKSTEP_CHECK(H5Tset_size(type.get(), 2) >= 0);
  LOCKSTEP_CHECK(H5Tset_ebias(type.get(), bias) >= 0);
  return type;
}

}  // namespace

H5Datatype MakeHdf5Type(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return H5Datatype(H5Tcopy(H5T_IEEE_F32LE));
    case DType::kF16:
      return MakeHalfWidthFloat(5, 10, 15);
    case DType::kBF16:
      return MakeHalfWidthFloat(8, 7, 127);
    case DType::kQ8_0:
    case DType::kQ4_0: {
      const bool q8 = dtype == DType::kQ8_0;
      H5Datatype type(H5Tcreate(H5T_COMPOUND, static_cast<size_t>(DTypeBlockBytes(dtype))));
      LOCKSTEP_CHECK(type.valid());
      H5Datatype scale = MakeHalfWidthFloat(5, 10, 15);
      const hsize_t count = q8 ? 32 : 16;
      H5Datatype values(H5Tarray_create2(q8 ? H5T_STD_I8LE : H5T_STD_U8LE, 1, &count));
      LOCKSTEP_CHECK(values.valid());
      LOCKSTEP_CHECK(H5Tinsert(type.get(), "d", 0, scale.get()) >= 0);
      LOCKSTEP_CHECK(H5Tinsert(type.get(), "qs", 2, values.get()) >= 0);
      return type;
    }
  }
  LOCKSTEP_CHECK(false, "unknown dtype");
  return H5Datatype();
}

std::optional<DType> ClassifyHdf5Type(hid_t type) {
  const H5T_class_t type_class = H5Tget_class(type);
  if (type_class != H5T_FLOAT && type_class != H5T_COMPOUND) return std::nullopt;
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0}) {
    if (DTypeIsQuantized(dtype) != (type_class == H5T_COMPOUND)) continue;
    H5Datatype expected = MakeHdf5Type(dtype);
    if (H5Tequal(type, expected.get()) > 0) return dtype;
  }
  return std::nullopt;
}

std::string DescribeHdf5Type(hid_t type) {
  const size_t size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return fmt::format("integer ({} bytes)", size);
    case H5T_FLOAT: {
      size_t sign = 0, exponent_pos = 0, exponent_bits = 0, mantissa_pos = 0, mantissa_bits = 0;
      H5Tget_fields(type, &sign, &exponent_pos, &exponent_bits, &mantissa_pos, &mantissa_bits);
      const char* order = H5Tget_order(type) == H5T_ORDER_BE ? ", big-endian" : "";
      return fmt::format("float ({} bytes, exponent {} bits, mantissa {} bits, bias {}{})", size,
                         exponent_bits, mantissa_bits, H5Tget_ebias(type), order);
    }
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return fmt::format("compound ({} bytes, {} members)", size, H5Tget_nmembers(type));
    case H5T_ENUM:
      return "enum";
    case H5T_ARRAY:
      return "array";
    case H5T_VLEN:
      return "variable-length sequence";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_REFERENCE:
      return "reference";
    case H5T_TIME:
      return "time";
    default:
      return "unknown datatype";
  }
}

}  // namespace lockstep::runtime
