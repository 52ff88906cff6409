// tokenizer.json decoders (hf_decoder.h).
#include "hf_decoder.h"

#include <fmt/format.h>

#include "lockstep/tokenizer/byte_level.h"
#include "utf8.h"

namespace lockstep::runtime::hf {

std::optional<uint8_t> ByteTokenValue(std::string_view token) {
  // "<0xNN>" with two uppercase or lowercase hex digits.
  if (token.size() != 6 || !token.starts_with("<0x") || token[5] != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(token[3]), lo = hex(token[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(hi * 16 + lo);
}

void DecoderStep::Apply(std::vector<std::string>* tokens, bool continuation) const {
  switch (kind) {
    case Kind::kByteLevel: {
      std::string joined;
      for (const std::string& t : *tokens) {
        // Added tokens are their content (as Hugging Face's decoders do:
        // DeepSeek's added "ü" is U+00FC, not the byte 0xFC).
        if (added_contents != nullptr && added_contents->contains(t)) {
          joined += t;
          continue;
        }
        std::string bytes;
        bool all = true;
        for (auto [offset, cp] : CodePoints(t)) {
          std::optional<uint8_t> b = UnicodeToByte(cp);
          if (!b) {
            all = false;
            break;
          }
          bytes.push_back(static_cast<char>(*b));
        }
        joined += all ? bytes : t;
      }
      *tokens = {joined};
      break;
    }
    case Kind::kByteFallback: {
      std::vector<std::string> out;
      std::string bytes;
      size_t count = 0;
      auto flush = [&] {
        if (count == 0) return;
        if (continuation || !FindInvalidUtf8(bytes)) {
          out.push_back(bytes);
        } else {
          for (size_t i = 0; i < count; ++i) out.push_back("\xEF\xBF\xBD");
        }
        bytes.clear();
        count = 0;
      };
      for (const std::string& t : *tokens) {
        if (std::optional<uint8_t> b = ByteTokenValue(t)) {
          bytes.push_back(static_cast<char>(*b));
          ++count;
        } else {
          flush();
          out.push_back(t);
        }
      }
      flush();
      *tokens = std::move(out);
      break;
    }
    case Kind::kFuse: {
      std::string joined;
      for (const std::string& t : *tokens) joined += t;
      *tokens = {joined};
      break;
    }
    case Kind::kReplace:
      for (std::string& t : *tokens) ReplaceAll(&t, from, to);
      break;
    case Kind::kStrip:
      if (continuation) break;
      for (std::string& t : *tokens) {
        auto cps = CodePoints(t);
        size_t begin = 0, end = cps.size();
        std::u32string c;
        for (auto [o, cp] : CodePoints(content)) c.push_back(cp);
        const char32_t ch = c.empty() ? U' ' : c[0];
        for (int64_t i = 0; i < start && begin < end && cps[begin].second == ch; ++i) ++begin;
        for (int64_t i = 0; i < stop && end > begin && cps[end - 1].second == ch; ++i) --end;
        const size_t b = begin < cps.size() ? cps[begin].first : t.size();
        const size_t e = end < cps.size() ? cps[end].first : t.size();
        t = t.substr(b, e - b);
      }
      break;
    case Kind::kMetaspace:
      for (size_t i = 0; i < tokens->size(); ++i) {
        std::string& t = (*tokens)[i];
        ReplaceAll(&t, replacement, " ");
        if (i == 0 && prepend && !continuation && t.starts_with(' ')) t.erase(0, 1);
      }
      break;
  }
}

void ParseDecoder(const json& d, const std::string& where, std::vector<DecoderStep>* steps) {
  if (d.is_null()) return;
  const std::string type = TypeOf(d, where);
  using K = DecoderStep::Kind;
  if (type == "Sequence") {
    const json& list = Field(d, "decoders", where);
    if (!list.is_array()) Fail(where + ".decoders must be a list");
    for (size_t i = 0; i < list.size(); ++i) {
      ParseDecoder(list[i], fmt::format("{}.decoders[{}]", where, i), steps);
    }
  } else if (type == "ByteLevel") {
    steps->push_back(DecoderStep::Of(K::kByteLevel));
  } else if (type == "ByteFallback") {
    steps->push_back(DecoderStep::Of(K::kByteFallback));
  } else if (type == "Fuse") {
    steps->push_back(DecoderStep::Of(K::kFuse));
  } else if (type == "Replace") {
    DecoderStep step;
    step.kind = K::kReplace;
    const json& pattern = Field(d, "pattern", where);
    if (!pattern.is_object() || !pattern.contains("String") || !pattern["String"].is_string()) {
      Fail(where + ".pattern must be {\"String\": ...} (regex replacements are not supported)");
    }
    step.from = pattern["String"].get<std::string>();
    step.to = StringField(d, "content", where);
    steps->push_back(std::move(step));
  } else if (type == "Strip") {
    DecoderStep step;
    step.kind = K::kStrip;
    step.content = StringField(d, "content", where);
    step.start = IntField(d, "start", where, 0);
    step.stop = IntField(d, "stop", where, 0);
    steps->push_back(std::move(step));
  } else if (type == "Metaspace") {
    DecoderStep step;
    step.kind = K::kMetaspace;
    step.replacement = MetaspaceReplacement(d);
    step.prepend = MetaspaceScheme(d, where) != "never";
    steps->push_back(std::move(step));
  } else {
    Fail(fmt::format(
        "{}.type '{}' is not supported (supported: ByteLevel, ByteFallback, Fuse, Replace, Strip, "
        "Metaspace, Sequence)",
        where, type));
  }
}

}  // namespace lockstep::runtime::hf
