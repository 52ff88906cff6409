// The byte-level alphabet of GPT-2 style BPE (bytes_to_unicode in OpenAI's
// encoder.py, ByteLevel in Hugging Face tokenizers): each byte 0..255 is
// shown as one printable code point, so that any byte string is a string of
// vocabulary characters. Bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for
// themselves; the other 68 bytes, in increasing order, become U+0100,
// U+0101, ... (so the space 0x20 is U+0120 'Ġ' and the newline 'Ċ').
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lockstep::runtime {

char32_t ByteToUnicode(uint8_t byte);
std::optional<uint8_t> UnicodeToByte(char32_t cp);

// Every byte of `bytes` as its code point, UTF-8 encoded.
std::string BytesToByteLevel(std::string_view bytes);

}  // namespace lockstep::runtime
