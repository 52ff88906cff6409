#include "command.h"

#include <cstdio>

#include <fmt/format.h>

#include "lockstep_version.h"

namespace lockstep::launch {

int ReportError(const Status& status) {
  std::string line = fmt::format("lockstep: error: {}\n", status.message());
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
  return kExitError;
}

int ReportUsage(const Status& status) {
  ReportError(status);
  return kExitUsage;
}

std::string VersionString() {
  return fmt::format("lockstep {} (git {})", LOCKSTEP_VERSION, LOCKSTEP_GIT_REVISION);
}

}  // namespace lockstep::launch
