#include "lockstep/base/nearest_name.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <vector>

namespace lockstep {

int EditDistance(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
  const size_t n = a.size(), m = b.size();
  // Optimal string alignment distance, three rows.
  std::vector<int> before(m + 1), previous(m + 1), current(m + 1);
  for (size_t j = 0; j <= m; ++j) previous[j] = static_cast<int>(j);
  for (size_t i = 1; i <= n; ++i) {
    current[0] = static_cast<int>(i);
    for (size_t j = 1; j <= m; ++j) {
      const int cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
          lower(a[i - 2]) == lower(b[j - 1])) {
        current[j] = std::min(current[j], before[j - 2] + 1);
      }
    }
    before.swap(previous);
    previous.swap(current);
  }
  return previous[m];
}

std::optional<std::string> NearestName(std::string_view name,
                                       std::span<const std::string_view> candidates) {
  if (name.empty()) return std::nullopt;
  const int allowed = name.size() <= 4 ? 1 : name.size() <= 8 ? 2 : 3;
  std::optional<std::string> best;
  int best_distance = allowed + 1;
  for (std::string_view c : candidates) {
    const int d = EditDistance(name, c);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(c);
    }
  }
  if (best) return best;
  if (name.size() >= 3) {
    for (std::string_view c : candidates) {
      if (c.size() > name.size() && c.substr(0, name.size()) == name) return std::string(c);
    }
  }
  return std::nullopt;
}

std::string DidYouMean(std::string_view name, std::span<const std::string_view> candidates) {
  std::optional<std::string> nearest = NearestName(name, candidates);
  return nearest ? fmt::format("; did you mean '{}'?", *nearest) : std::string();
}

}  // namespace lockstep
