// Where this host's calibrated chip spec lives: `lockstep calibrate` writes it
// and `lockstep plan --chip host` reads it.
#pragma once

#include <string>
#include <string_view>

#include "lockstep/base/status.h"
#include "lockstep/partitioner/cluster_spec.h"

namespace lockstep::launch {

// $LOCKSTEP_HOST_SPEC if set, else $HOME/.config/lockstep/host.json.
std::string DefaultHostSpecPath();

// The `host` chip for `num_chips` ranks on this machine (chips_per_node =
// num_chips): the calibrated spec at DefaultHostSpecPath() when it exists
// (*calibrated = true), else the built-in uncalibrated preset.
Result<partitioner::ClusterSpec> HostClusterSpec(int num_chips, bool* calibrated);

// Warns (as `component`) that this host is not calibrated and plans use the
// `host` preset's figures -- once: the warning leaves a marker beside the
// spec's path (DefaultHostSpecPath() + ".warned"), and later commands stay
// quiet until `lockstep calibrate` writes the spec (which removes the
// marker). Where the marker cannot be written, it warns every time.
void WarnUncalibratedOnce(std::string_view component);
// The marker's path (for calibrate to remove).
std::string UncalibratedMarkerPath();

}  // namespace lockstep::launch
