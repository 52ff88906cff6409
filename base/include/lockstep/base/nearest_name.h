// "Did you mean ...?": the valid name nearest to a misspelt one, for the
// messages that refuse an unknown request field, flag or subcommand
// (docs/reliability.md). Lives in base because the request parser (job) and
// the command line (launch) both need it and share nothing else.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace lockstep {

// The Levenshtein distance (insertions, deletions, substitutions, and a swap
// of two adjacent characters count 1 each), compared case-insensitively.
int EditDistance(std::string_view a, std::string_view b);

// The candidate nearest to `name` when it is near enough to be a plausible
// misspelling: at most 1 edit for names of up to 4 characters, 2 up to 8,
// 3 beyond; or a candidate that starts with `name` (an abbreviation of at
// least 3 characters). Ties go to the earlier candidate.
std::optional<std::string> NearestName(std::string_view name,
                                       std::span<const std::string_view> candidates);

// "; did you mean 'x'?" or "" -- for appending to a message.
std::string DidYouMean(std::string_view name, std::span<const std::string_view> candidates);

}  // namespace lockstep
