#include "utf8.h"

#include <utf8proc.h>

#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime {

// Decoding and encoding are utf8proc's (strict: no overlong forms, no
// surrogates, nothing above U+10FFFF, a truncated sequence is invalid). Only
// the repair below is ours: utf8proc reports an invalid sequence but not how
// many bytes one U+FFFD should stand for.

std::optional<char32_t> DecodeUtf8(std::string_view text, size_t* pos) {
  const size_t i = *pos;
  if (i >= text.size()) return std::nullopt;
  utf8proc_int32_t cp = -1;
  const utf8proc_ssize_t n =
      utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + i),
                       static_cast<utf8proc_ssize_t>(text.size() - i), &cp);
  if (n <= 0 || cp < 0) return std::nullopt;
  *pos = i + static_cast<size_t>(n);
  return static_cast<char32_t>(cp);
}

void AppendUtf8(char32_t cp, std::string* out) {
  utf8proc_uint8_t bytes[4];
  const utf8proc_ssize_t n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), bytes);
  out->append(reinterpret_cast<const char*>(bytes), static_cast<size_t>(n));
}

std::optional<size_t> FindInvalidUtf8(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    if (!DecodeUtf8(text, &pos)) return pos;
  }
  return std::nullopt;
}

namespace {

// Length of the longest prefix of text[i..] that could start a valid
// sequence (a "maximal subpart", Unicode 3.9 / U+FFFD substitution), at
// least 1. Python's errors="replace" and Hugging Face's decoders substitute
// the same way; utf8proc has no equivalent.
size_t MaximalSubpart(std::string_view text, size_t i) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  int length = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 1;
  }
  size_t n = 1;
  for (int k = 1; k < length && i + n < text.size(); ++k) {
    const auto b = static_cast<unsigned char>(text[i + n]);
    const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) break;
    ++n;
  }
  return n;
}

}  // namespace

std::string ValidUtf8(std::string_view text) {
  if (!FindInvalidUtf8(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    if (DecodeUtf8(text, &pos)) {
      out.append(text.substr(start, pos - start));
    } else {
      out.append("\xEF\xBF\xBD");
      pos = start + MaximalSubpart(text, start);
    }
  }
  return out;
}

std::vector<std::pair<size_t, char32_t>> CodePoints(std::string_view text) {
  std::vector<std::pair<size_t, char32_t>> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    std::optional<char32_t> cp = DecodeUtf8(text, &pos);
    if (!cp) {
      pos = start + 1;
      cp = 0xFFFD;
    }
    out.emplace_back(start, *cp);
  }
  return out;
}

}  // namespace lockstep::runtime
