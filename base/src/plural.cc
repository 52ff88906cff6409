#include "lockstep/base/plural.h"

#include <fmt/format.h>

namespace lockstep {
namespace {

bool EndsWith(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

}  // namespace

std::string Plural(int64_t n, std::string_view noun) {
  if (n == 1) return fmt::format("1 {}", noun);
  const bool es = EndsWith(noun, "s") || EndsWith(noun, "x") || EndsWith(noun, "z") ||
                  EndsWith(noun, "ch") || EndsWith(noun, "sh");
  return fmt::format("{} {}{}", n, noun, es ? "es" : "s");
}

std::string Plural(int64_t n, std::string_view singular, std::string_view plural) {
  return fmt::format("{} {}", n, n == 1 ? singular : plural);
}

std::string Range(std::string_view noun, int64_t first, int64_t last) {
  if (first == last) return fmt::format("{} {}", noun, first);
  return fmt::format("{} {}-{}", Plural(2, noun).substr(2), first, last);
}

std::string FormatCount(double n) {
  if (n >= 1e9) return fmt::format("{:.2f} B", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.1f} M", n / 1e6);
  if (n >= 1e4) return fmt::format("{:.1f} k", n / 1e3);
  return fmt::format("{:.0f}", n);
}

}  // namespace lockstep
