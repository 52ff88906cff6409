#include "lockstep/transport/options.h"

#include <charconv>
#include <cmath>
#include <string>

namespace lockstep::transport {

std::string_view BackendName(BackendKind kind) {
  switch (kind) {
    case BackendKind::kMpi:
      return "mpi";
    case BackendKind::kUcx:
      return "ucx";
    case BackendKind::kLocal:
      return "local";
  }
  return "?";
}

Result<BackendKind> ParseBackend(std::string_view name) {
  if (name == "mpi") return BackendKind::kMpi;
  if (name == "local") return BackendKind::kLocal;
  if (name == "ucx") {
#ifdef LOCKSTEP_HAVE_UCX
    return BackendKind::kUcx;
#else
    return Unimplemented(
        "--transport ucx: this lockstep was built without UCX "
        "(rebuild with -DLOCKSTEP_WITH_UCX=ON)");
#endif
  }
  return InvalidArgument("--transport '{}': unknown backend; use mpi, ucx or local", name);
}

Result<std::chrono::milliseconds> ParseTimeout(std::string_view text) {
  std::string_view number = text;
  double scale_ms = 1000.0;
  if (number.ends_with("ms")) {
    scale_ms = 1.0;
    number.remove_suffix(2);
  } else if (number.ends_with("min")) {
    scale_ms = 60000.0;
    number.remove_suffix(3);
  } else if (number.ends_with("s")) {
    number.remove_suffix(1);
  }
  double value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (number.empty() || ec != std::errc() || end != number.data() + number.size() ||
      !std::isfinite(value) || value <= 0) {
    return InvalidArgument(
        "--comm-timeout '{}': expected a positive number of seconds, e.g. 300, 2.5, 500ms, 10min",
        text);
  }
  double ms = std::ceil(value * scale_ms);
  if (ms > 1e12) return InvalidArgument("--comm-timeout '{}': too large", text);
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

std::string_view AllReduceAlgorithmName(AllReduceAlgorithm algorithm) {
  switch (algorithm) {
    case AllReduceAlgorithm::kAuto:
      return "auto";
    case AllReduceAlgorithm::kRecursiveDoubling:
      return "rd";
    case AllReduceAlgorithm::kReduceScatterAllGather:
      return "rs_ag";
  }
  return "?";
}

Result<CommOptions> CommOptionsFromFlags(std::string_view transport,
                                         std::string_view comm_timeout) {
  CommOptions options;
  LOCKSTEP_ASSIGN_OR_RETURN(options.backend, ParseBackend(transport));
  if (!comm_timeout.empty()) {
    LOCKSTEP_ASSIGN_OR_RETURN(options.timeout, ParseTimeout(comm_timeout));
  }
  return options;
}

}  // namespace lockstep::transport
