// tokenizer.json normalizers (hf_normalizer.h).
#include "hf_normalizer.h"

#include <fmt/format.h>
#include <utf8proc.h>

#include <cstdlib>

#include "utf8.h"

namespace lockstep::runtime::hf {
namespace {

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

}  // namespace

std::string NormalizerStep::Apply(std::string s) const {
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

}  // namespace lockstep::runtime::hf
