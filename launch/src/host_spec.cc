#include "host_spec.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "lockstep/base/log.h"
#include "lockstep/partitioner/chip_presets.h"

namespace lockstep::launch {

std::string DefaultHostSpecPath() {
  if (const char* path = std::getenv("LOCKSTEP_HOST_SPEC"); path != nullptr && *path != '\0') {
    return path;
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.config/lockstep/host.json";
}

Result<partitioner::ClusterSpec> HostClusterSpec(int num_chips, bool* calibrated) {
  const std::string path = DefaultHostSpecPath();
  std::error_code ec;
  *calibrated = std::filesystem::exists(path, ec);
  if (!*calibrated) return partitioner::ChipPreset("host", num_chips);
  LOCKSTEP_ASSIGN_OR_RETURN(partitioner::ClusterSpec spec, partitioner::LoadClusterSpecFile(path));
  spec.num_chips = num_chips;
  spec.chips_per_node = std::max(num_chips, 1);
  Status valid = spec.Validate();
  if (!valid.ok()) return valid.WithContext(path);
  return spec;
}

std::string UncalibratedMarkerPath() {
  return DefaultHostSpecPath() + ".warned";
}

void WarnUncalibratedOnce(std::string_view component) {
  const std::string marker = UncalibratedMarkerPath();
  std::error_code ec;
  if (std::filesystem::exists(marker, ec)) return;
  Log(component, LogLevel::kWarn,
      "this host is not calibrated ({} missing): plans use the `host` preset's figures; run "
      "`lockstep calibrate` once for predictions of this machine (this warning is shown once)",
      DefaultHostSpecPath());
  const std::filesystem::path parent = std::filesystem::path(marker).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  std::ofstream(marker) << "lockstep warned that this host is not calibrated; `lockstep "
                           "calibrate` removes this file\n";
}

}  // namespace lockstep::launch
