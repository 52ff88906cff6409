// The BPE model of Hugging Face tokenizers (`"model": {"type": "BPE"}`):
// a word (one pre-token, already in the model's alphabet) -> token ids.
//
// Algorithm (tokenizers/src/models/bpe/word.rs, reproduced so that ids are
// identical): the word starts as one symbol per character (a character
// missing from the vocabulary becomes its <0xNN> byte tokens with
// byte_fallback, else the unknown token -- consecutive unknowns fused into
// one with fuse_unk -- else it is dropped). Then, repeatedly, of all
// adjacent pairs that have a merge, the one with the lowest merge rank is
// merged, the leftmost among equal ranks. With ignore_merges a word that is
// itself in the vocabulary is one token without any merging (Llama-3).
//
// Thread safety: immutable after construction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lockstep/base/status.h"

namespace lockstep::runtime {

struct BpeModelSpec {
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // rank = index
  std::optional<std::string> unk_token;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel {
 public:
  // InvalidArgument (prefixed with `where`) when a merge names a token that
  // is not in the vocabulary, or its result is not.
  static Result<BpeModel> Create(BpeModelSpec spec, std::string_view where);

  // Appends the ids of `word` (valid UTF-8) to *ids.
  void Tokenize(std::string_view word, std::vector<int32_t>* ids) const;

  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::vector<int32_t> byte_ids_;  // <0xNN> -> id, -1 when absent
};

}  // namespace lockstep::runtime
