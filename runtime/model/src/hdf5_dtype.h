// The HDF5 datatypes of model format v1 (docs/model-format.md, "dtypes").
//
//   f32   H5T_IEEE_F32LE
//   f16   IEEE binary16, little-endian: a copy of F32 with sign bit 15, a
//         5-bit exponent at bit 10 (bias 15) and a 10-bit mantissa, size 2 --
//         the type h5py writes for numpy.float16.
//   bf16  bfloat16, little-endian: a copy of F32 with sign bit 15, an 8-bit
//         exponent at bit 7 (bias 127) and a 7-bit mantissa, size 2 -- the
//         upper half of an f32. HDF5 knows it as a float, so h5dump prints
//         values and h5py converts it (ds.astype('f4')).
//
// Call under Hdf5Lock.
#pragma once

#include <optional>
#include <string>

#include "hdf5_handle.h"
#include "lockstep/base/dtype.h"

namespace lockstep::runtime {

// A new (owned) HDF5 type for `dtype`.
H5Datatype MakeHdf5Type(DType dtype);

// Which of the three a file's datatype is, or nullopt for anything else
// (integers, f64, big-endian, other float layouts).
std::optional<DType> ClassifyHdf5Type(hid_t type);

// A short description for error messages: "integer (4 bytes)",
// "float (8 bytes)", "float (2 bytes, exponent 5 bits, mantissa 10 bits)".
std::string DescribeHdf5Type(hid_t type);

}  // namespace lockstep::runtime
