// tokenizer.json added tokens: split out of the text before everything else
// (leftmost-longest, as the Rust library's AddedVocabulary), honouring
// lstrip, rstrip, single_word and normalized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lockstep::runtime::hf {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// A byte trie over added-token contents, for leftmost-longest matching.
class AddedTokenMatcher {
 public:
  void Add(const std::string& content, size_t token_index);
  bool empty() const { return nodes_.size() == 1; }

  // The longest token starting at `pos`: (token index, end) or nullopt.
  std::optional<std::pair<size_t, size_t>> LongestAt(std::string_view text, size_t pos) const;

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
// AddedVocabulary::find_matches), appending them to *out.
void SplitAddedTokens(std::string_view text, bool at_start, const AddedTokenMatcher& matcher,
                      const std::vector<AddedToken>& tokens, std::vector<Segment>* out);

}  // namespace lockstep::runtime::hf
