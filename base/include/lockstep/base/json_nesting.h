// How deeply JSON text nests, measured on the text itself (no JSON library):
// the guard every reader of a JSON file runs before parsing it, so that a
// file nested 100,000 levels deep is refused with one line instead of
// overflowing the stack in a recursive dump() or conversion
// (docs/reliability.md). Lives in base because every component reads JSON
// and base does not depend on a JSON library.
#pragma once

#include <string_view>

#include "lockstep/base/status.h"

namespace lockstep {

// Deeper than any file lockstep reads needs (plans nest 6 levels,
// tokenizer.json 5).
inline constexpr int kMaxJsonNesting = 64;

// The deepest nesting of arrays and objects in `text` (brackets inside
// strings do not count); counting stops once it exceeds `limit`.
int JsonNestingDepth(std::string_view text, int limit = kMaxJsonNesting);

// InvalidArgument "<source>: JSON nested deeper than 64 levels" when it is.
Status CheckJsonNesting(std::string_view text, std::string_view source);

}  // namespace lockstep
