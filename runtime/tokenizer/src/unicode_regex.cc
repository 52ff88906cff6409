#include "unicode_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "lockstep/base/check.h"

namespace lockstep::runtime {

struct UnicodeRegex::Impl {
  ~Impl() {
    if (code != nullptr) pcre2_code_free(code);
  }
  pcre2_code* code = nullptr;
};

UnicodeRegex::UnicodeRegex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UnicodeRegex::~UnicodeRegex() = default;
UnicodeRegex::UnicodeRegex(UnicodeRegex&&) noexcept = default;
UnicodeRegex& UnicodeRegex::operator=(UnicodeRegex&&) noexcept = default;

std::string RewriteOnigurumaPattern(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 32);
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c != '\\' || i + 1 == pattern.size()) {
      out.push_back(c);
      continue;
    }
    const char next = pattern[++i];
    if (next == 's') {
      out += "\\p{White_Space}";
    } else if (next == 'S') {
      out += "\\P{White_Space}";
    } else {
      out.push_back('\\');
      out.push_back(next);
    }
  }
  return out;
}

namespace {

Result<pcre2_code*> CompileRaw(std::string_view pattern, uint32_t extra_options,
                               std::string_view where, std::string_view shown) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  // PCRE2_LITERAL refuses PCRE2_UCP (nothing to classify in a literal).
  const uint32_t options =
      PCRE2_UTF | extra_options | ((extra_options & PCRE2_LITERAL) ? 0 : PCRE2_UCP);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &error, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return InvalidArgument("{}: bad regular expression {:?} at offset {}: {}", where, shown, offset,
                           reinterpret_cast<const char*>(message));
  }
  // The JIT is an optimisation only; without it matching is the same.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return code;
}

}  // namespace

Result<UnicodeRegex> UnicodeRegex::Compile(std::string_view pattern, std::string_view where) {
  auto impl = std::make_unique<Impl>();
  LOCKSTEP_ASSIGN_OR_RETURN(impl->code,
                            CompileRaw(RewriteOnigurumaPattern(pattern), 0, where, pattern));
  return UnicodeRegex(std::move(impl));
}

Result<UnicodeRegex> UnicodeRegex::Literal(std::string_view literal, std::string_view where) {
  auto impl = std::make_unique<Impl>();
  LOCKSTEP_ASSIGN_OR_RETURN(impl->code, CompileRaw(literal, PCRE2_LITERAL, where, literal));
  return UnicodeRegex(std::move(impl));
}

std::vector<std::pair<size_t, size_t>> UnicodeRegex::FindAll(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> matches;
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  LOCKSTEP_CHECK(data != nullptr, "out of memory for PCRE2 match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    // The text was checked to be valid UTF-8 by the caller: skip PCRE2's check.
    const int rc =
        pcre2_match(impl_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, data, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    LOCKSTEP_CHECK(rc >= 0, "pcre2_match failed with code {}", rc);
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    const size_t begin = ovector[0], end = ovector[1];
    if (end > begin) {
      matches.emplace_back(begin, end);
      start = end;
    } else {
      // Empty match: step over one UTF-8 character.
      start = begin + 1;
      while (start < text.size() && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) {
        ++start;
      }
    }
  }
  pcre2_match_data_free(data);
  return matches;
}

}  // namespace lockstep::runtime
