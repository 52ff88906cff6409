// The Hugging Face tokenizer.json engine (TokenizerKind::kHuggingFace).
//
// Supported components (others are refused with a message naming the field
// and the supported types):
//   normalizer      NFC, NFD, NFKC, NFKD (utf8proc), Lowercase, Prepend,
//                   Replace (string or regex), Strip, Sequence, null
//   pre_tokenizer   Split (regex or string; Isolated, Removed,
//                   MergedWithPrevious, MergedWithNext, Contiguous; invert),
//                   ByteLevel (add_prefix_space, use_regex with GPT-2's
//                   pattern), Digits, Metaspace, Sequence, null
//   model           BPE (bpe_model.h): both merges forms ("a b" strings and
//                   ["a", "b"] lists), byte_fallback, unk_token, fuse_unk,
//                   ignore_merges; no dropout, no subword prefix/suffix
//   added_tokens    split out of the text before everything else
//                   (leftmost-longest), honouring lstrip, rstrip,
//                   single_word and normalized (normalized ones are matched
//                   in the normalized text); `special` marks what
//                   skip_special_tokens drops
//   post_processor  TemplateProcessing (its `single` template), ByteLevel
//                   (ids unchanged), Sequence, null
//   decoder         ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace,
//                   Sequence, null
// The order of work is the Rust library's: split added tokens (raw text),
// normalize each remaining piece, split normalized added tokens, pre-tokenize,
// BPE each pre-token, post-process.
#pragma once

#include <memory>

#include "lockstep/base/status.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime {

Result<std::unique_ptr<Tokenizer>> CreateHfTokenizer(const TokenizerData& data);

}  // namespace lockstep::runtime
