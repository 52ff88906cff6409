#include "utf8.h"

#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime {

std::optional<char32_t> DecodeUtf8(std::string_view text, size_t* pos) {
  const size_t i = *pos;
  if (i >= text.size()) return std::nullopt;
  const auto b0 = static_cast<unsigned char>(text[i]);
  if (b0 < 0x80) {
    *pos = i + 1;
    return b0;
  }
  int length;
  char32_t cp;
  char32_t min;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2, cp = b0 & 0x1F, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3, cp = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (text.size() - i < static_cast<size_t>(length)) return std::nullopt;
  for (int k = 1; k < length; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  *pos = i + length;
  return cp;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
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
// least 1.
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

}  // namespace lockstep::runtime
