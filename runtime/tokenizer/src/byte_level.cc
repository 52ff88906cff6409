#include "lockstep/tokenizer/byte_level.h"

#include <array>

#include "utf8.h"

namespace lockstep::runtime {
namespace {

bool StandsForItself(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Tables {
  std::array<char32_t, 256> to_unicode{};
  std::array<std::string, 256> to_utf8;
  std::array<int16_t, 256 + 68> from_unicode{};  // -1: not a byte's code point
  Tables() {
    from_unicode.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      to_unicode[b] = StandsForItself(b) ? static_cast<char32_t>(b) : next++;
      AppendUtf8(to_unicode[b], &to_utf8[b]);
      from_unicode[to_unicode[b]] = static_cast<int16_t>(b);
    }
  }
};

const Tables& GetTables() {
  static const Tables tables;
  return tables;
}

}  // namespace

char32_t ByteToUnicode(uint8_t byte) {
  return GetTables().to_unicode[byte];
}

std::optional<uint8_t> UnicodeToByte(char32_t cp) {
  const Tables& t = GetTables();
  if (cp >= t.from_unicode.size() || t.from_unicode[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(t.from_unicode[cp]);
}

std::string BytesToByteLevel(std::string_view bytes) {
  const Tables& t = GetTables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += t.to_utf8[static_cast<uint8_t>(c)];
  return out;
}

}  // namespace lockstep::runtime
