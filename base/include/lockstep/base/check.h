// LOCKSTEP_CHECK: always-on assertions for broken invariants.
//
// A failed check prints one line with the file, line, condition, an optional
// formatted message and the "host:pid:rank" identity, then aborts. Under
// mpirun the abort takes the whole job down. Never use a check for bad user
// input: that is a Status (status.h).
#pragma once

#include <string>

#include <fmt/format.h>

namespace lockstep::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              const std::string& message);
}  // namespace lockstep::internal

#define LOCKSTEP_CHECK(cond, ...)                                                      \
  do {                                                                                 \
    if (!(cond)) [[unlikely]] {                                                        \
      ::lockstep::internal::CheckFailed(__FILE__, __LINE__, #cond,                     \
                                        ::lockstep::internal::CheckMessage(__VA_ARGS__)); \
    }                                                                                  \
  } while (0)

namespace lockstep::internal {
inline std::string CheckMessage() { return {}; }
template <typename... Args>
std::string CheckMessage(fmt::format_string<Args...> format, Args&&... args) {
  return fmt::format(format, std::forward<Args>(args)...);
}
}  // namespace lockstep::internal
