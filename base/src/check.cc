#include "lockstep/base/check.h"

#include <cstdio>
#include <cstdlib>

#include "lockstep/base/log.h"

namespace lockstep::internal {

void CheckFailed(const char* file, int line, const char* condition, const std::string& message) {
  std::string text = fmt::format("{}: {}:{}: check failed: {}{}{}\n", LogIdentity(), file, line,
                                 condition, message.empty() ? "" : ": ", message);
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
  std::abort();
}

}  // namespace lockstep::internal
