#include "bpe_model.h"

#include <fmt/format.h>

#include <queue>

#include "utf8.h"

namespace lockstep::runtime {

Result<BpeModel> BpeModel::Create(BpeModelSpec spec, std::string_view where) {
  BpeModel m;
  m.vocab_ = std::move(spec.vocab);
  m.fuse_unk_ = spec.fuse_unk;
  m.byte_fallback_ = spec.byte_fallback;
  m.ignore_merges_ = spec.ignore_merges;
  if (spec.unk_token) {
    auto it = m.vocab_.find(*spec.unk_token);
    if (it == m.vocab_.end()) {
      return InvalidArgument("{}: model.unk_token {:?} is not in model.vocab", where,
                             *spec.unk_token);
    }
    m.unk_id_ = it->second;
  }
  m.byte_ids_.assign(256, -1);
  for (int b = 0; b < 256; ++b) {
    auto it = m.vocab_.find(fmt::format("<0x{:02X}>", b));
    if (it != m.vocab_.end()) m.byte_ids_[b] = it->second;
  }
  m.merges_.reserve(spec.merges.size());
  for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
    const auto& [a, b] = spec.merges[rank];
    auto ia = m.vocab_.find(a);
    auto ib = m.vocab_.find(b);
    auto iab = m.vocab_.find(a + b);
    if (ia == m.vocab_.end() || ib == m.vocab_.end() || iab == m.vocab_.end()) {
      const std::string& missing = ia == m.vocab_.end() ? a : ib == m.vocab_.end() ? b : a + b;
      return InvalidArgument(
          "{}: model.merges[{}] ({:?} {:?}) uses {:?}, which is not in model.vocab", where, rank, a,
          b, missing);
    }
    // A pair listed twice keeps its last rank, as tokenizers' HashMap does.
    m.merges_.insert_or_assign(PairKey(ia->second, ib->second),
                               Merge{static_cast<int32_t>(rank), iab->second});
  }
  return m;
}

void BpeModel::Tokenize(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto it = vocab_.find(std::string(word)); it != vocab_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  // Symbols as a doubly linked list over a vector; len 0 marks a symbol
  // merged into its left neighbour.
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    int32_t len;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  bool last_was_unk = false;
  std::string character;
  size_t pos = 0;
  while (pos < word.size()) {
    const size_t start = pos;
    if (!DecodeUtf8(word, &pos)) pos = start + 1;  // callers pass valid UTF-8
    character.assign(word.substr(start, pos - start));
    auto push = [&](int32_t id) {
      const int32_t index = static_cast<int32_t>(symbols.size());
      symbols.push_back({id, index - 1, index + 1, 1});
    };
    if (auto it = vocab_.find(character); it != vocab_.end()) {
      push(it->second);
      last_was_unk = false;
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : character) all = all && byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        for (char c : character) push(byte_ids_[static_cast<uint8_t>(c)]);
        last_was_unk = false;
        continue;
      }
    }
    if (unk_id_) {
      if (!(fuse_unk_ && last_was_unk)) push(*unk_id_);
      last_was_unk = true;
    }
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  struct Candidate {
    int32_t pos, rank, new_id;
    // std::priority_queue pops the largest: make "lowest rank, then lowest
    // position" the largest.
    bool operator<(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate> queue;
  auto consider = [&](int32_t left) {
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    auto it = merges_.find(PairKey(symbols[left].id, symbols[right].id));
    if (it != merges_.end()) queue.push({left, it->second.rank, it->second.new_id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.len == 0 || left.next < 0) continue;
    const int32_t right_index = left.next;
    Symbol& right = symbols[right_index];
    // Stale candidate: the pair at this position changed since it was queued.
    auto it = merges_.find(PairKey(left.id, right.id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    left.id = top.new_id;
    left.len += right.len;
    left.next = right.next;
    right.len = 0;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  for (const Symbol& s : symbols) {
    if (s.len > 0) ids->push_back(s.id);
  }
}

}  // namespace lockstep::runtime
