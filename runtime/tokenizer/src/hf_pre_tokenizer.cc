// tokenizer.json pre-tokenizers (hf_pre_tokenizer.h).
#include "hf_pre_tokenizer.h"

#include <fmt/format.h>

#include <string_view>
#include <utility>

#include "lockstep/tokenizer/byte_level.h"

namespace lockstep::runtime::hf {
namespace {

// GPT-2's pre-tokenizer pattern (ByteLevel with use_regex).
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace

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

void PreTokenizerStep::Apply(std::vector<Piece>* pieces) const {
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

SplitBehavior ParseBehavior(const std::string& name, const std::string& where) {
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  Fail(fmt::format("{}.behavior '{}' is not a split behavior", where, name));
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

}  // namespace lockstep::runtime::hf
