// Scalar attributes on an HDF5 object, typed, with errors that name the file
// and the attribute.
//
// Writers produce what docs/model-format.md specifies: fixed-length ASCII
// strings (null-terminated), 64-bit little-endian signed integers, 64-bit
// IEEE floats, each with a scalar dataspace. Readers are lenient in what a
// converter may reasonably write: any integer type, fixed or variable-length
// strings, a float or an integer for a float field, an integer 0/1 or h5py's
// boolean enum for a flag; a scalar or a one-element dataspace.
//
// Call under Hdf5Lock. `file` is only used in error messages.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/base/status.h"

namespace lockstep::runtime {

Status WriteStringAttribute(hid_t object, std::string_view file, const char* name,
                            std::string_view value);
Status WriteIntAttribute(hid_t object, std::string_view file, const char* name, int64_t value);
Status WriteDoubleAttribute(hid_t object, std::string_view file, const char* name, double value);
// A one-dimensional H5T_IEEE_F64LE attribute of values.size() elements.
Status WriteDoubleArrayAttribute(hid_t object, std::string_view file, const char* name,
                                 const std::vector<double>& values);

// NotFound if absent; InvalidArgument if the type or shape is wrong.
Result<std::string> ReadStringAttribute(hid_t object, std::string_view file, const char* name);
Result<int64_t> ReadIntAttribute(hid_t object, std::string_view file, const char* name);
Result<double> ReadDoubleAttribute(hid_t object, std::string_view file, const char* name);
Result<bool> ReadBoolAttribute(hid_t object, std::string_view file, const char* name);
// A one-dimensional attribute of numbers (any float or integer type).
Result<std::vector<double>> ReadDoubleArrayAttribute(hid_t object, std::string_view file,
                                                     const char* name);

bool HasAttribute(hid_t object, const char* name);

}  // namespace lockstep::runtime
