// tokenizer.json normalizers: NFC, NFD, NFKC, NFKD (utf8proc), Lowercase,
// Prepend, Replace (string or regex), Strip, Sequence.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "hf_spec.h"
#include "unicode_regex.h"

namespace lockstep::runtime::hf {

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

  std::string Apply(std::string s) const;
};

// Appends the steps of normalizer `n` (null: none); a Sequence is
// flattened. Throws SpecError for an unsupported type.
void ParseNormalizer(const json& n, const std::string& where, std::vector<NormalizerStep>* steps);

}  // namespace lockstep::runtime::hf
