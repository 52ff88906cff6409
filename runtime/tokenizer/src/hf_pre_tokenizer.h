// tokenizer.json pre-tokenizers: Split (regex or string; Isolated, Removed,
// MergedWithPrevious, MergedWithNext, Contiguous; invert), ByteLevel
// (add_prefix_space, use_regex with GPT-2's pattern), Digits, Metaspace,
// Sequence. Each step maps a list of pieces to a finer list.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "hf_spec.h"
#include "unicode_regex.h"

namespace lockstep::runtime::hf {

struct Piece {
  std::string text;
  bool at_start = false;  // begins at offset 0 of the whole input (Metaspace "first")
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Splits `piece` at the matches of `regex` (tokenizers' Split semantics),
// appending the pieces to *out.
void SplitPiece(const Piece& piece, const UnicodeRegex& regex, SplitBehavior behavior, bool invert,
                std::vector<Piece>* out);

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

  void Apply(std::vector<Piece>* pieces) const;
};

SplitBehavior ParseBehavior(const std::string& name, const std::string& where);

// Appends the steps of pre-tokenizer `p` (null: none); a Sequence is
// flattened. Throws SpecError for an unsupported type.
void ParsePreTokenizer(const json& p, const std::string& where,
                       std::vector<PreTokenizerStep>* steps);

}  // namespace lockstep::runtime::hf
