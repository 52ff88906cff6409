#include "hf_tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "bpe_model.h"
#include "lockstep/tokenizer/byte_level.h"
#include "unicode_regex.h"
#include "utf8.h"

namespace lockstep::runtime {
namespace {

using nlohmann::json;

// GPT-2's pre-tokenizer pattern (ByteLevel with use_regex).
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Unicode White_Space (Rust's char::is_whitespace, Oniguruma's \s).
bool IsWhiteSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

bool IsWordChar(char32_t c) {
  if (c == '_') return true;
  const utf8proc_category_t cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
         (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

// Code points of valid UTF-8 text, with their byte offsets.
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

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t hit = s->find(from, pos);
    if (hit == std::string::npos) break;
    out.append(*s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(*s, pos, std::string::npos);
  *s = std::move(out);
}

// Errors thrown inside the JSON reading code and turned into a Status at
// the boundary (exceptions never leave this file).
struct SpecError {
  std::string message;
};

[[noreturn]] void Fail(std::string message) {
  throw SpecError{std::move(message)};
}

const json& Field(const json& object, const char* name, const std::string& where) {
  if (!object.is_object()) Fail(fmt::format("{} must be an object", where));
  auto it = object.find(name);
  if (it == object.end()) Fail(fmt::format("{}.{} is missing", where, name));
  return *it;
}

std::string StringField(const json& object, const char* name, const std::string& where) {
  const json& v = Field(object, name, where);
  if (!v.is_string())
    Fail(fmt::format("{}.{} must be a string, got {}", where, name, v.type_name()));
  return v.get<std::string>();
}

bool BoolField(const json& object, const char* name, const std::string& where, bool fallback) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) Fail(fmt::format("{}.{} must be true or false", where, name));
  return it->get<bool>();
}

int64_t IntField(const json& object, const char* name, const std::string& where, int64_t fallback) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) Fail(fmt::format("{}.{} must be an integer", where, name));
  return it->get<int64_t>();
}

int32_t TokenIdValue(const json& v, const std::string& where) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
    Fail(fmt::format("{} must be a token id (an integer from 0), got {}", where, v.dump()));
  }
  return static_cast<int32_t>(v.get<int64_t>());
}

std::string TypeOf(const json& component, const std::string& where) {
  return StringField(component, "type", where);
}

// A {"String": s} or {"Regex": r} pattern.
UnicodeRegex PatternField(const json& object, const std::string& where) {
  const json& pattern = Field(object, "pattern", where);
  Result<UnicodeRegex> regex = InvalidArgument("unset");
  if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
    regex = UnicodeRegex::Compile(pattern["Regex"].get<std::string>(), where + ".pattern.Regex");
  } else if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string()) {
    regex = UnicodeRegex::Literal(pattern["String"].get<std::string>(), where + ".pattern.String");
  } else {
    Fail(fmt::format("{}.pattern must be {{\"Regex\": ...}} or {{\"String\": ...}}", where));
  }
  if (!regex.ok()) Fail(regex.status().message());
  return std::move(regex).value();
}

// ---------------------------------------------------------------------------
// Normalizers
// ---------------------------------------------------------------------------

std::string Utf8procMap(std::string_view text, int options) {
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                   static_cast<utf8proc_ssize_t>(text.size()), &out,
                   static_cast<utf8proc_option_t>(options | UTF8PROC_STABLE));
  if (n < 0) {
    // Only for invalid UTF-8, which Encode rejects before normalizing.
    return std::string(text);
  }
  std::string result(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

struct NormalizerStep {
  enum class Kind { kNfc, kNfd, kNfkc, kNfkd, kLowercase, kPrepend, kReplace, kStrip };
  Kind kind = Kind::kNfc;
  std::string text;                     // Prepend: the prefix; Replace: the replacement
  std::optional<UnicodeRegex> pattern;  // Replace
  bool left = false, right = false;     // Strip

  static NormalizerStep Of(Kind kind) {
    NormalizerStep step;
    step.kind = kind;
    return step;
  }

  std::string Apply(std::string s) const {
    switch (kind) {
      case Kind::kNfc:
        return Utf8procMap(s, UTF8PROC_COMPOSE);
      case Kind::kNfd:
        return Utf8procMap(s, UTF8PROC_DECOMPOSE);
      case Kind::kNfkc:
        return Utf8procMap(s, UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
      case Kind::kNfkd:
        return Utf8procMap(s, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
      case Kind::kLowercase: {
        std::string out;
        for (auto [offset, cp] : CodePoints(s)) {
          if (cp == 0x130) {  // İ lowercases to i + combining dot (Rust's to_lowercase)
            out += "i\xCC\x87";
            continue;
          }
          AppendUtf8(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))),
                     &out);
        }
        return out;
      }
      case Kind::kPrepend:
        return s.empty() ? s : text + s;
      case Kind::kReplace: {
        std::string out;
        size_t pos = 0;
        for (auto [begin, end] : pattern->FindAll(s)) {
          out.append(s, pos, begin - pos);
          out += text;
          pos = end;
        }
        out.append(s, pos, std::string::npos);
        return out;
      }
      case Kind::kStrip: {
        auto cps = CodePoints(s);
        size_t begin = 0, end = cps.size();
        if (left) {
          while (begin < end && IsWhiteSpace(cps[begin].second)) ++begin;
        }
        if (right) {
          while (end > begin && IsWhiteSpace(cps[end - 1].second)) --end;
        }
        const size_t b = begin < cps.size() ? cps[begin].first : s.size();
        const size_t e = end < cps.size() ? cps[end].first : s.size();
        return s.substr(b, e - b);
      }
    }
    return s;
  }
};

void ParseNormalizer(const json& n, const std::string& where, std::vector<NormalizerStep>* steps) {
  if (n.is_null()) return;
  const std::string type = TypeOf(n, where);
  using K = NormalizerStep::Kind;
  if (type == "Sequence") {
    const json& list = Field(n, "normalizers", where);
    if (!list.is_array()) Fail(where + ".normalizers must be a list");
    for (size_t i = 0; i < list.size(); ++i) {
      ParseNormalizer(list[i], fmt::format("{}.normalizers[{}]", where, i), steps);
    }
  } else if (type == "NFC") {
    steps->push_back(NormalizerStep::Of(K::kNfc));
  } else if (type == "NFD") {
    steps->push_back(NormalizerStep::Of(K::kNfd));
  } else if (type == "NFKC") {
    steps->push_back(NormalizerStep::Of(K::kNfkc));
  } else if (type == "NFKD") {
    steps->push_back(NormalizerStep::Of(K::kNfkd));
  } else if (type == "Lowercase") {
    steps->push_back(NormalizerStep::Of(K::kLowercase));
  } else if (type == "Prepend") {
    NormalizerStep step = NormalizerStep::Of(K::kPrepend);
    step.text = StringField(n, "prepend", where);
    steps->push_back(std::move(step));
  } else if (type == "Replace") {
    NormalizerStep step = NormalizerStep::Of(K::kReplace);
    step.text = StringField(n, "content", where);
    step.pattern = PatternField(n, where);
    steps->push_back(std::move(step));
  } else if (type == "Strip") {
    NormalizerStep step = NormalizerStep::Of(K::kStrip);
    step.left = BoolField(n, "strip_left", where, true);
    step.right = BoolField(n, "strip_right", where, true);
    steps->push_back(std::move(step));
  } else {
    Fail(fmt::format(
        "{}.type '{}' is not supported (supported: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, "
        "Replace, Strip, Sequence)",
        where, type));
  }
}

// ---------------------------------------------------------------------------
// Pre-tokenizers: each step maps a list of pieces to a finer list.
// ---------------------------------------------------------------------------

struct Piece {
  std::string text;
  bool at_start = false;  // begins at offset 0 of the whole input (Metaspace "first")
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Splits `piece` at the matches of `regex` (tokenizers' Split semantics).
void SplitPiece(const Piece& piece, const UnicodeRegex& regex, SplitBehavior behavior, bool invert,
                std::vector<Piece>* out) {
  const std::string& s = piece.text;
  // Segments covering s: (begin, end, is_match).
  struct Segment {
    size_t begin, end;
    bool match;
  };
  std::vector<Segment> segments;
  size_t pos = 0;
  for (auto [begin, end] : regex.FindAll(s)) {
    if (begin > pos) segments.push_back({pos, begin, false});
    segments.push_back({begin, end, true});
    pos = end;
  }
  if (pos < s.size()) segments.push_back({pos, s.size(), false});
  if (invert) {
    for (Segment& seg : segments) seg.match = !seg.match;
  }
  std::vector<std::pair<size_t, size_t>> pieces;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Segment& seg : segments) {
        if (!seg.match) pieces.emplace_back(seg.begin, seg.end);
      }
      break;
    case SplitBehavior::kIsolated:
      for (const Segment& seg : segments) pieces.emplace_back(seg.begin, seg.end);
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Segment& seg : segments) {
        if (seg.match && !pieces.empty()) {
          pieces.back().second = seg.end;
        } else {
          pieces.emplace_back(seg.begin, seg.end);
        }
      }
      break;
    case SplitBehavior::kMergedWithNext: {
      bool pending = false;
      for (const Segment& seg : segments) {
        if (pending) {
          pieces.back().second = seg.end;
        } else {
          pieces.emplace_back(seg.begin, seg.end);
        }
        pending = seg.match;
      }
      break;
    }
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Segment& seg : segments) {
        if (seg.match && previous_match) {
          pieces.back().second = seg.end;
        } else {
          pieces.emplace_back(seg.begin, seg.end);
        }
        previous_match = seg.match;
      }
      break;
    }
  }
  for (auto [begin, end] : pieces) {
    if (end > begin) out->push_back({s.substr(begin, end - begin), piece.at_start && begin == 0});
  }
}

struct PreTokenizerStep {
  enum class Kind { kSplit, kByteLevel, kMetaspace };
  Kind kind = Kind::kSplit;
  std::optional<UnicodeRegex> regex;  // Split, Digits; ByteLevel with use_regex
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;  // ByteLevel
  std::string replacement;        // Metaspace
  std::string prepend_scheme;     // Metaspace: always, first, never
  bool split = true;              // Metaspace

  void Apply(std::vector<Piece>* pieces) const {
    std::vector<Piece> out;
    for (Piece& piece : *pieces) {
      switch (kind) {
        case Kind::kSplit:
          SplitPiece(piece, *regex, behavior, invert, &out);
          break;
        case Kind::kByteLevel: {
          // Not insert(0, " "): GCC 12 warns a -Wrestrict false positive on it.
          if (add_prefix_space && !piece.text.starts_with(' ')) piece.text = " " + piece.text;
          std::vector<Piece> split_pieces;
          if (regex) {
            SplitPiece(piece, *regex, SplitBehavior::kIsolated, false, &split_pieces);
          } else {
            split_pieces.push_back(piece);
          }
          for (Piece& p : split_pieces) out.push_back({BytesToByteLevel(p.text), p.at_start});
          break;
        }
        case Kind::kMetaspace: {
          ReplaceAll(&piece.text, " ", replacement);
          if (prepend_scheme == "always" || (prepend_scheme == "first" && piece.at_start)) {
            if (!piece.text.starts_with(replacement)) piece.text.insert(0, replacement);
          }
          if (split) {
            SplitPiece(piece, *regex, SplitBehavior::kMergedWithNext, false, &out);
          } else {
            out.push_back(std::move(piece));
          }
          break;
        }
      }
    }
    *pieces = std::move(out);
  }
};

SplitBehavior ParseBehavior(const std::string& name, const std::string& where) {
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  Fail(fmt::format("{}.behavior '{}' is not a split behavior", where, name));
}

UnicodeRegex MustCompile(std::string_view pattern, const std::string& where) {
  Result<UnicodeRegex> regex = UnicodeRegex::Compile(pattern, where);
  if (!regex.ok()) Fail(regex.status().message());
  return std::move(regex).value();
}

std::string MetaspaceReplacement(const json& p) {
  auto it = p.find("replacement");
  if (it == p.end() || !it->is_string()) return "\xE2\x96\x81";  // ▁
  return it->get<std::string>();
}

std::string MetaspaceScheme(const json& p, const std::string& where) {
  if (auto it = p.find("prepend_scheme"); it != p.end() && it->is_string()) {
    std::string scheme = it->get<std::string>();
    if (scheme != "always" && scheme != "first" && scheme != "never") {
      Fail(fmt::format("{}.prepend_scheme '{}' is not always, first or never", where, scheme));
    }
    return scheme;
  }
  // Older files: add_prefix_space true means "always".
  return BoolField(p, "add_prefix_space", where, true) ? "always" : "never";
}

void ParsePreTokenizer(const json& p, const std::string& where,
                       std::vector<PreTokenizerStep>* steps) {
  if (p.is_null()) return;
  const std::string type = TypeOf(p, where);
  using K = PreTokenizerStep::Kind;
  if (type == "Sequence") {
    const json& list = Field(p, "pretokenizers", where);
    if (!list.is_array()) Fail(where + ".pretokenizers must be a list");
    for (size_t i = 0; i < list.size(); ++i) {
      ParsePreTokenizer(list[i], fmt::format("{}.pretokenizers[{}]", where, i), steps);
    }
  } else if (type == "Split") {
    PreTokenizerStep step;
    step.kind = K::kSplit;
    step.regex = PatternField(p, where);
    step.behavior = ParseBehavior(StringField(p, "behavior", where), where);
    step.invert = BoolField(p, "invert", where, false);
    steps->push_back(std::move(step));
  } else if (type == "ByteLevel") {
    PreTokenizerStep step;
    step.kind = K::kByteLevel;
    step.add_prefix_space = BoolField(p, "add_prefix_space", where, true);
    if (BoolField(p, "use_regex", where, true)) step.regex = MustCompile(kGpt2Pattern, where);
    steps->push_back(std::move(step));
  } else if (type == "Digits") {
    PreTokenizerStep step;
    step.kind = K::kSplit;
    const bool individual = BoolField(p, "individual_digits", where, false);
    step.regex = MustCompile(individual ? R"(\p{N})" : R"(\p{N}+)", where);
    steps->push_back(std::move(step));
  } else if (type == "Metaspace") {
    PreTokenizerStep step;
    step.kind = K::kMetaspace;
    step.replacement = MetaspaceReplacement(p);
    step.prepend_scheme = MetaspaceScheme(p, where);
    step.split = BoolField(p, "split", where, true);
    Result<UnicodeRegex> regex = UnicodeRegex::Literal(step.replacement, where);
    if (!regex.ok()) Fail(regex.status().message());
    step.regex = std::move(regex).value();
    steps->push_back(std::move(step));
  } else {
    Fail(fmt::format(
        "{}.type '{}' is not supported (supported: Split, ByteLevel, Digits, Metaspace, Sequence)",
        where, type));
  }
}

// ---------------------------------------------------------------------------
// Decoders: each step maps the list of token strings to a new list.
// ---------------------------------------------------------------------------

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

struct DecoderStep {
  enum class Kind { kByteLevel, kByteFallback, kFuse, kReplace, kStrip, kMetaspace };
  Kind kind = Kind::kFuse;
  std::string from, to;         // Replace: pattern string -> content
  std::string content;          // Strip
  int64_t start = 0, stop = 0;  // Strip
  std::string replacement;      // Metaspace
  bool prepend = true;          // Metaspace: scheme is not "never"

  static DecoderStep Of(Kind kind) {
    DecoderStep step;
    step.kind = kind;
    return step;
  }

  // continuation: the tokens follow earlier text (DecodeToken): no rule for
  // the start of the text applies, and byte tokens stay raw bytes.
  void Apply(std::vector<std::string>* tokens, bool continuation) const {
    switch (kind) {
      case Kind::kByteLevel: {
        std::string joined;
        for (const std::string& t : *tokens) {
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
};

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

// ---------------------------------------------------------------------------
// Added tokens
// ---------------------------------------------------------------------------

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// A byte trie over added-token contents, for leftmost-longest matching.
class AddedTokenMatcher {
 public:
  void Add(const std::string& content, size_t token_index) {
    if (content.empty()) return;
    size_t node = 0;
    for (char c : content) {
      auto key = std::make_pair(node, static_cast<uint8_t>(c));
      auto it = edges_.find(key);
      if (it == edges_.end()) {
        nodes_.push_back(kNone);
        it = edges_.emplace(key, nodes_.size() - 1).first;
      }
      node = it->second;
    }
    nodes_[node] = token_index;
  }
  bool empty() const { return nodes_.size() == 1; }

  // The longest token starting at `pos`: (token index, end) or nullopt.
  std::optional<std::pair<size_t, size_t>> LongestAt(std::string_view text, size_t pos) const {
    std::optional<std::pair<size_t, size_t>> best;
    size_t node = 0;
    for (size_t i = pos; i < text.size(); ++i) {
      auto it = edges_.find({node, static_cast<uint8_t>(text[i])});
      if (it == edges_.end()) break;
      node = it->second;
      if (nodes_[node] != kNone) best = {nodes_[node], i + 1};
    }
    return best;
  }

 private:
  static constexpr size_t kNone = static_cast<size_t>(-1);
  std::vector<size_t> nodes_ = {kNone};  // node -> token index
  std::map<std::pair<size_t, uint8_t>, size_t> edges_;
};

struct Segment {
  std::string text;
  int32_t added_id = -1;  // >= 0: an added token
  bool at_start = false;
};

// Splits `text` into plain segments and added tokens (tokenizers'
// AddedVocabulary::find_matches).
void SplitAddedTokens(std::string_view text, bool at_start, const AddedTokenMatcher& matcher,
                      const std::vector<AddedToken>& tokens, std::vector<Segment>* out) {
  if (matcher.empty()) {
    if (!text.empty()) out->push_back({std::string(text), -1, at_start});
    return;
  }
  auto plain = [&](size_t begin, size_t end) {
    if (end > begin) {
      out->push_back({std::string(text.substr(begin, end - begin)), -1, at_start && begin == 0});
    }
  };
  size_t emitted = 0;  // text before this is in `out`
  size_t pos = 0;
  while (pos < text.size()) {
    std::optional<std::pair<size_t, size_t>> match = matcher.LongestAt(text, pos);
    if (!match) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens[match->first];
    size_t start = pos, stop = match->second;
    if (token.single_word) {
      auto before = CodePoints(text.substr(0, start));
      auto after = CodePoints(text.substr(stop));
      const bool start_ok = before.empty() || !IsWordChar(before.back().second);
      const bool stop_ok = after.empty() || !IsWordChar(after.front().second);
      if (!start_ok || !stop_ok) {
        pos = stop;  // matches do not overlap, as in aho-corasick's find_iter
        continue;
      }
    }
    if (token.lstrip) {
      auto before = CodePoints(text.substr(emitted, start - emitted));
      size_t k = before.size();
      while (k > 0 && IsWhiteSpace(before[k - 1].second)) --k;
      start = emitted + (k < before.size() ? before[k].first : start - emitted);
    }
    if (token.rstrip) {
      auto after = CodePoints(text.substr(stop));
      size_t k = 0;
      while (k < after.size() && IsWhiteSpace(after[k].second)) ++k;
      stop += k < after.size() ? after[k].first : text.size() - stop;
    }
    plain(emitted, start);
    out->push_back({std::string(text.substr(start, stop - start)), token.id, false});
    emitted = pos = stop;
  }
  plain(emitted, text.size());
}

// ---------------------------------------------------------------------------
// The tokenizer
// ---------------------------------------------------------------------------

class HfTokenizer final : public Tokenizer {
 public:
  static std::unique_ptr<HfTokenizer> Build(const TokenizerData& data, const json& spec);

  TokenizerKind kind() const override { return TokenizerKind::kHuggingFace; }
  int32_t vocab_size() const override { return static_cast<int32_t>(id_to_token_.size()); }
  int32_t bos_token_id() const override { return bos_; }
  int32_t eos_token_id() const override { return eos_; }

  Result<std::vector<int32_t>> Encode(std::string_view text, bool add_bos) const override {
    if (std::optional<size_t> bad = FindInvalidUtf8(text)) {
      return InvalidArgument("text is not valid UTF-8 (byte {} of {})", *bad, text.size());
    }
    std::vector<int32_t> ids;
    if (add_bos) {
      for (int32_t id : template_prefix_) ids.push_back(id);
    }
    std::vector<Segment> raw_segments;
    SplitAddedTokens(text, true, raw_matcher_, added_, &raw_segments);
    for (Segment& segment : raw_segments) {
      if (segment.added_id >= 0) {
        ids.push_back(segment.added_id);
        continue;
      }
      std::string normalized = Normalize(std::move(segment.text));
      std::vector<Segment> segments;
      SplitAddedTokens(normalized, segment.at_start, normalized_matcher_, added_, &segments);
      for (Segment& s : segments) {
        if (s.added_id >= 0) {
          ids.push_back(s.added_id);
          continue;
        }
        std::vector<Piece> pieces = {{std::move(s.text), s.at_start}};
        for (const PreTokenizerStep& step : pre_tokenizer_) step.Apply(&pieces);
        for (const Piece& piece : pieces) model_->Tokenize(piece.text, &ids);
      }
    }
    if (add_bos) {
      for (int32_t id : template_suffix_) ids.push_back(id);
    }
    return ids;
  }

  std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size() || !has_token_[id]) continue;
      if (skip_special_tokens && special_[id]) continue;
      tokens.push_back(id_to_token_[id]);
    }
    return RunDecoder(std::move(tokens), false);
  }

  std::string DecodeToken(int32_t id) const override {
    if (id < 0 || id >= vocab_size() || !has_token_[id] || special_[id]) return "";
    return RunDecoder({id_to_token_[id]}, true);
  }

  bool IsSpecial(int32_t id) const override { return id >= 0 && id < vocab_size() && special_[id]; }
  std::string TokenText(int32_t id) const override {
    return id >= 0 && id < vocab_size() ? id_to_token_[id] : std::string();
  }
  std::optional<int32_t> TokenId(std::string_view token_text) const override {
    std::string key(token_text);
    for (const AddedToken& a : added_) {
      if (a.content == key) return a.id;
    }
    auto it = model_->vocab().find(key);
    if (it == model_->vocab().end()) return std::nullopt;
    return it->second;
  }

 private:
  std::string Normalize(std::string s) const {
    for (const NormalizerStep& step : normalizer_) s = step.Apply(std::move(s));
    return s;
  }
  std::string RunDecoder(std::vector<std::string> tokens, bool continuation) const {
    for (const DecoderStep& step : decoder_) step.Apply(&tokens, continuation);
    std::string out;
    for (const std::string& t : tokens) out += t;
    return out;
  }

  std::vector<NormalizerStep> normalizer_;
  std::vector<PreTokenizerStep> pre_tokenizer_;
  std::optional<BpeModel> model_;
  std::vector<DecoderStep> decoder_;
  std::vector<AddedToken> added_;
  AddedTokenMatcher raw_matcher_, normalized_matcher_;
  std::vector<std::string> id_to_token_;
  std::vector<uint8_t> has_token_, special_;
  std::vector<int32_t> template_prefix_, template_suffix_;  // added by Encode(add_bos)
  int32_t bos_ = -1, eos_ = -1;
};

// TemplateProcessing: the ids before and after sequence A of `single`.
bool ParseTemplate(const json& p, const std::string& where, std::vector<int32_t>* prefix,
                   std::vector<int32_t>* suffix) {
  const json& single = Field(p, "single", where);
  const json& specials = Field(p, "special_tokens", where);
  if (!single.is_array()) Fail(where + ".single must be a list");
  bool seen_a = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const std::string item_where = fmt::format("{}.single[{}]", where, i);
    const json& item = single[i];
    if (item.contains("Sequence")) {
      const std::string id = StringField(item["Sequence"], "id", item_where + ".Sequence");
      if (id != "A" || seen_a) Fail(item_where + ": the single template must hold sequence A once");
      seen_a = true;
    } else if (item.contains("SpecialToken")) {
      const std::string name =
          StringField(item["SpecialToken"], "id", item_where + ".SpecialToken");
      const json& entry = Field(specials, name.c_str(), where + ".special_tokens");
      const json& ids = Field(entry, "ids", fmt::format("{}.special_tokens.{}", where, name));
      if (!ids.is_array())
        Fail(fmt::format("{}.special_tokens.{}.ids must be a list", where, name));
      for (const json& id : ids) {
        (seen_a ? suffix : prefix)->push_back(TokenIdValue(id, where + ".special_tokens"));
      }
    } else {
      Fail(item_where + " must be a Sequence or a SpecialToken");
    }
  }
  if (!seen_a) Fail(where + ".single has no sequence A");
  return true;
}

// Returns whether a TemplateProcessing was found.
bool ParsePostProcessor(const json& p, const std::string& where, std::vector<int32_t>* prefix,
                        std::vector<int32_t>* suffix) {
  if (p.is_null()) return false;
  const std::string type = TypeOf(p, where);
  if (type == "Sequence") {
    const json& list = Field(p, "processors", where);
    if (!list.is_array()) Fail(where + ".processors must be a list");
    bool found = false;
    for (size_t i = 0; i < list.size(); ++i) {
      found =
          ParsePostProcessor(list[i], fmt::format("{}.processors[{}]", where, i), prefix, suffix) ||
          found;
    }
    return found;
  }
  if (type == "ByteLevel") return false;  // offsets only
  if (type == "TemplateProcessing") return ParseTemplate(p, where, prefix, suffix);
  Fail(fmt::format(
      "{}.type '{}' is not supported (supported: TemplateProcessing, ByteLevel, Sequence)", where,
      type));
}

BpeModelSpec ParseBpeSpec(const json& m) {
  const std::string where = "model";
  const std::string type = m.contains("type") ? TypeOf(m, where) : "BPE";
  if (type != "BPE") {
    Fail(
        fmt::format("model.type '{}' is not supported (only BPE; Llama-2 style SentencePiece "
                    "models should be given as tokenizer.model)",
                    type));
  }
  if (auto it = m.find("dropout"); it != m.end() && !it->is_null()) {
    Fail("model.dropout is set; BPE dropout is not supported (it is random)");
  }
  for (const char* name : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (auto it = m.find(name);
        it != m.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty())) {
      Fail(fmt::format("model.{} is set; it is not supported", name));
    }
  }
  BpeModelSpec spec;
  const json& vocab = Field(m, "vocab", where);
  if (!vocab.is_object()) Fail("model.vocab must be an object {token: id}");
  spec.vocab.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    spec.vocab.emplace(it.key(),
                       TokenIdValue(it.value(), "model.vocab[" + json(it.key()).dump() + "]"));
  }
  const json& merges = Field(m, "merges", where);
  if (!merges.is_array()) Fail("model.merges must be a list");
  spec.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& merge = merges[i];
    if (merge.is_string()) {
      const std::string text = merge.get<std::string>();
      const size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        Fail(fmt::format("model.merges[{}] is {}, expected two tokens separated by one space", i,
                         merge.dump()));
      }
      spec.merges.emplace_back(text.substr(0, space), text.substr(space + 1));
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      spec.merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
    } else {
      Fail(fmt::format("model.merges[{}] must be \"a b\" or [\"a\", \"b\"], got {}", i,
                       merge.dump().substr(0, 60)));
    }
  }
  if (auto it = m.find("unk_token"); it != m.end() && !it->is_null()) {
    if (!it->is_string()) Fail("model.unk_token must be a string or null");
    spec.unk_token = it->get<std::string>();
  }
  spec.fuse_unk = BoolField(m, "fuse_unk", where, false);
  spec.byte_fallback = BoolField(m, "byte_fallback", where, false);
  spec.ignore_merges = BoolField(m, "ignore_merges", where, false);
  return spec;
}

std::unique_ptr<HfTokenizer> HfTokenizer::Build(const TokenizerData& data, const json& spec) {
  auto t = std::make_unique<HfTokenizer>();
  if (!spec.is_object()) Fail("the top level must be a JSON object");
  auto find = [&](const char* name) -> const json& {
    static const json kNull;
    auto it = spec.find(name);
    return it == spec.end() ? kNull : *it;
  };
  if (!spec.contains("model")) Fail("the field 'model' is missing (is this a tokenizer.json?)");
  ParseNormalizer(find("normalizer"), "normalizer", &t->normalizer_);
  ParsePreTokenizer(find("pre_tokenizer"), "pre_tokenizer", &t->pre_tokenizer_);
  ParseDecoder(find("decoder"), "decoder", &t->decoder_);
  Result<BpeModel> model = BpeModel::Create(ParseBpeSpec(spec["model"]), "tokenizer.json");
  if (!model.ok()) Fail(model.status().message());
  t->model_ = std::move(model).value();

  const json& added = find("added_tokens");
  if (!added.is_null() && !added.is_array()) Fail("added_tokens must be a list");
  for (size_t i = 0; i < added.size(); ++i) {
    const std::string where = fmt::format("added_tokens[{}]", i);
    AddedToken a;
    a.id = TokenIdValue(Field(added[i], "id", where), where + ".id");
    a.content = StringField(added[i], "content", where);
    if (a.content.empty()) Fail(where + ".content is empty");
    if (FindInvalidUtf8(a.content)) Fail(where + ".content is not valid UTF-8");
    a.special = BoolField(added[i], "special", where, false);
    a.lstrip = BoolField(added[i], "lstrip", where, false);
    a.rstrip = BoolField(added[i], "rstrip", where, false);
    a.single_word = BoolField(added[i], "single_word", where, false);
    a.normalized = BoolField(added[i], "normalized", where, !a.special);
    t->added_.push_back(std::move(a));
  }

  // id -> token: the model's vocabulary, then the added tokens over it.
  int32_t size = 0;
  for (const auto& [token, id] : t->model_->vocab()) size = std::max(size, id + 1);
  for (const AddedToken& a : t->added_) size = std::max(size, a.id + 1);
  t->id_to_token_.assign(static_cast<size_t>(size), std::string());
  t->has_token_.assign(static_cast<size_t>(size), 0);
  t->special_.assign(static_cast<size_t>(size), 0);
  for (const auto& [token, id] : t->model_->vocab()) {
    t->id_to_token_[id] = token;
    t->has_token_[id] = 1;
  }
  for (size_t i = 0; i < t->added_.size(); ++i) {
    const AddedToken& a = t->added_[i];
    t->id_to_token_[a.id] = a.content;
    t->has_token_[a.id] = 1;
    t->special_[a.id] = a.special;
    if (a.normalized) {
      t->normalized_matcher_.Add(t->Normalize(a.content), i);
    } else {
      t->raw_matcher_.Add(a.content, i);
    }
  }

  const bool has_template = ParsePostProcessor(find("post_processor"), "post_processor",
                                               &t->template_prefix_, &t->template_suffix_);
  auto check_id = [&](int32_t id, const char* what) {
    if (id < -1 || id >= size) {
      Fail(fmt::format("{} {} is outside the vocabulary of {} tokens", what, id, size));
    }
  };
  check_id(data.bos_token_id, "bos_token_id");
  check_id(data.eos_token_id, "eos_token_id");
  for (int32_t id : t->template_prefix_) check_id(id, "post_processor special token id");
  for (int32_t id : t->template_suffix_) check_id(id, "post_processor special token id");
  t->bos_ = data.bos_token_id;
  t->eos_ = data.eos_token_id;
  if (!has_template && data.add_bos_token && data.bos_token_id >= 0) {
    t->template_prefix_ = {data.bos_token_id};
  }
  return t;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> CreateHfTokenizer(const TokenizerData& data) {
  try {
    const json spec = json::parse(data.data);
    return std::unique_ptr<Tokenizer>(HfTokenizer::Build(data, spec));
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    if (size_t end = what.find("] "); what.starts_with("[") && end != std::string::npos) {
      what = what.substr(end + 2);
    }
    return InvalidArgument("{}: not valid JSON: {}", data.source, what);
  } catch (const json::exception& e) {
    return InvalidArgument("{}: malformed tokenizer.json: {}", data.source, e.what());
  } catch (const SpecError& e) {
    return InvalidArgument("{}: {}", data.source, e.message);
  }
}

}  // namespace lockstep::runtime
