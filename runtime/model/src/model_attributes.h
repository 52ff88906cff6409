// The model file's root attributes (docs/model-format.md, "Root
// attributes"): the config read from and written to them, shared by the
// reader (model_file.cc) and the writer (model_writer.cc).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "lockstep/base/dtype.h"
#include "lockstep/base/status.h"
#include "lockstep/partitioner/model_config.h"

namespace lockstep::runtime {

// The root attribute `format` of every model file, and `rope_layout`.
inline constexpr std::string_view kFormatName = "lockstep-model";
inline constexpr std::string_view kRopeLayout = "half";

// "[a, b]", for messages.
std::string ShapeString(std::span<const int64_t> shape);

// The format version a file of this config has: 1 when version 1 expresses
// it, 2 when it has q/k/v biases, a sliding window or rope scaling (a
// version-1 reader would ignore them and compute something else).
int ModelFormatVersionFor(const partitioner::ModelConfig& c);

// The config from the root attributes; errors name `file` and the
// attribute.
Result<partitioner::ModelConfig> ReadConfig(hid_t root, std::string_view file);

// Writes the config, the weight dtype and the rope layout as root
// attributes, in a fixed order (the file's bytes depend only on the inputs).
Status WriteConfig(hid_t root, std::string_view file, const partitioner::ModelConfig& c,
                   DType dtype);

}  // namespace lockstep::runtime
