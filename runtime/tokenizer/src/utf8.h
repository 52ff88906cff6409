// UTF-8 helpers for the tokenizers: strict decoding (no surrogates, no
// overlong forms, nothing above U+10FFFF), encoding, and repair.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lockstep::runtime {

// Decodes the code point starting at text[pos]; on success advances *pos
// past it. nullopt (and *pos unchanged) for an invalid or truncated
// sequence.
std::optional<char32_t> DecodeUtf8(std::string_view text, size_t* pos);

// Appends the UTF-8 encoding of `cp` (a valid scalar value) to *out.
void AppendUtf8(char32_t cp, std::string* out);

// (byte offset, code point) of every character of `text`; an invalid byte
// counts as one character, U+FFFD.
std::vector<std::pair<size_t, char32_t>> CodePoints(std::string_view text);

// Byte offset of the first invalid sequence, or nullopt if `text` is valid.
std::optional<size_t> FindInvalidUtf8(std::string_view text);

}  // namespace lockstep::runtime
