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
//   q8_0  one element per block of 32 values: a compound of size 34,
//         member "d" (the f16 above) at offset 0 and member "qs" (an array of
//         32 H5T_STD_I8LE) at offset 2 -- GGUF's block_q8_0 byte for byte;
//         numpy dtype [('d', '<f2'), ('qs', 'i1', (32,))].
//   q4_0  a compound of size 18: "d" (f16) at 0, "qs" (an array of 16
//         H5T_STD_U8LE) at 2 -- GGUF's block_q4_0; numpy dtype
//         [('d', '<f2'), ('qs', 'u1', (16,))].
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

// Which of these a file's datatype is, or nullopt for anything else
// (integers, f64, big-endian, other float layouts, other compounds).
std::optional<DType> ClassifyHdf5Type(hid_t type);

// A short description for error messages: "integer (4 bytes)",
// "float (8 bytes)", "float (2 bytes, exponent 5 bits, mantissa 10 bits)".
std::string DescribeHdf5Type(hid_t type);

}  // namespace lockstep::runtime
