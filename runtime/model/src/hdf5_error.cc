#include "hdf5_error.h"

#include <hdf5.h>

#include <string>
#include <vector>

namespace lockstep::runtime {
namespace {

herr_t CollectMessage(unsigned /*n*/, const H5E_error2_t* error, void* client_data) {
  auto* messages = static_cast<std::vector<std::string>*>(client_data);
  if (error->desc != nullptr && error->desc[0] != '\0') messages->emplace_back(error->desc);
  return 0;
}

// HDF5 messages sometimes end in a newline or carry tabs; a Status is one line.
std::string OneLine(std::string text) {
  for (char& ch : text) {
    if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

}  // namespace

Status Hdf5Error(StatusCode code, std::string_view context) {
  // Walking upward starts at the innermost frame: where the error was detected.
  std::vector<std::string> messages;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, CollectMessage, &messages);
  H5Eclear2(H5E_DEFAULT);
  if (messages.empty()) return Status(code, fmt::format("{}: HDF5 call failed", context));
  std::string innermost = OneLine(messages.front());
  std::string outermost = OneLine(messages.back());
  if (messages.size() == 1 || innermost == outermost) {
    return Status(code, fmt::format("{}: {}", context, innermost));
  }
  return Status(code, fmt::format("{}: {} ({})", context, innermost, outermost));
}

void SilenceHdf5Errors() {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

}  // namespace lockstep::runtime
