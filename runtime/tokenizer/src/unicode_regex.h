// Unicode regular expressions for tokenizer pre-tokenizers, on PCRE2 (UTF
// mode, Unicode properties for \d, \w and POSIX classes).
//
// tokenizer.json patterns are written for the Rust `tokenizers` library,
// which compiles them with Oniguruma. The two engines agree on the syntax
// these patterns use (alternation, classes with \p{L} \p{N}, (?i:...),
// lookahead, {m,n}) except for the meaning of \s: Oniguruma's \s is the
// Unicode White_Space property, PCRE2's also takes U+180E. So \s and \S are
// rewritten to \p{White_Space} and \P{White_Space} (outside and inside
// character classes) before compiling; nothing else is changed.
//
// Thread safety: a compiled UnicodeRegex is immutable; FindAll allocates its
// own match data, so any number of threads may use one regex at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lockstep/base/status.h"

namespace lockstep::runtime {

class UnicodeRegex {
 public:
  ~UnicodeRegex();
  UnicodeRegex(UnicodeRegex&&) noexcept;
  UnicodeRegex& operator=(UnicodeRegex&&) noexcept;

  // InvalidArgument with PCRE2's message and the offset for a bad pattern;
  // `where` names it ("tokenizer.json: pre_tokenizer.pretokenizers[0]").
  static Result<UnicodeRegex> Compile(std::string_view pattern, std::string_view where);
  // A pattern that matches `literal` exactly.
  static Result<UnicodeRegex> Literal(std::string_view literal, std::string_view where);

  // The non-overlapping matches in `text` (valid UTF-8), left to right, as
  // byte ranges [begin, end). An empty match advances by one character.
  std::vector<std::pair<size_t, size_t>> FindAll(std::string_view text) const;

 private:
  struct Impl;
  explicit UnicodeRegex(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The Oniguruma -> PCRE2 rewrite described above (exposed for tests).
std::string RewriteOnigurumaPattern(std::string_view pattern);

}  // namespace lockstep::runtime
