// tokenizer.json decoders: ByteLevel, ByteFallback, Fuse, Replace, Strip,
// Metaspace, Sequence. Each step maps the list of token strings to a new
// list.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "hf_spec.h"

namespace lockstep::runtime::hf {

// The byte of a "<0xNN>" token.
std::optional<uint8_t> ByteTokenValue(std::string_view token);

struct DecoderStep {
  enum class Kind { kByteLevel, kByteFallback, kFuse, kReplace, kStrip, kMetaspace };
  Kind kind = Kind::kFuse;
  std::string from, to;         // Replace: pattern string -> content
  std::string content;          // Strip
  int64_t start = 0, stop = 0;  // Strip
  std::string replacement;      // Metaspace
  bool prepend = true;          // Metaspace: scheme is not "never"
  // ByteLevel: the contents of the added tokens, passed through unchanged.
  std::shared_ptr<const std::unordered_set<std::string>> added_contents;

  static DecoderStep Of(Kind kind) {
    DecoderStep step;
    step.kind = kind;
    return step;
  }

  // continuation: the tokens follow earlier text (DecodeToken): no rule for
  // the start of the text applies, and byte tokens stay raw bytes.
  void Apply(std::vector<std::string>* tokens, bool continuation) const;
};

// Appends the steps of decoder `d` (null: none); a Sequence is flattened.
// Throws SpecError for an unsupported type.
void ParseDecoder(const json& d, const std::string& where, std::vector<DecoderStep>* steps);

}  // namespace lockstep::runtime::hf
