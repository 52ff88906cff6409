#include "lockstep/base/json_nesting.h"

#include <algorithm>

namespace lockstep {

int JsonNestingDepth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (c == ']' || c == '}') {
      depth = std::max(0, depth - 1);
    }
  }
  return deepest;
}

Status CheckJsonNesting(std::string_view text, std::string_view source) {
  if (JsonNestingDepth(text) > kMaxJsonNesting) {
    return InvalidArgument("{}: JSON nested deeper than {} levels; not a file lockstep reads",
                           source, kMaxJsonNesting);
  }
  return Status::Ok();
}

}  // namespace lockstep
