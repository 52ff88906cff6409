// tokenizer.json added tokens (hf_added_tokens.h).
#include "hf_added_tokens.h"

#include "hf_spec.h"

namespace lockstep::runtime::hf {

void AddedTokenMatcher::Add(const std::string& content, size_t token_index) {
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

std::optional<std::pair<size_t, size_t>> AddedTokenMatcher::LongestAt(std::string_view text,
                                                                      size_t pos) const {
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

}  // namespace lockstep::runtime::hf
