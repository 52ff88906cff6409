// The unit of work of a forward pass: a ragged batch of tokens.
//
// Each token carries the sequence slot it belongs to (which page table of the
// KV cache it reads and writes) and its position in that sequence. Tokens of
// one step may mix prefill chunks of several sequences and decode tokens of
// others, in any order: the arithmetic for one token depends only on its own
// id, position and the cache contents of its slot at positions < its own, so
// it is the same whatever shares the step (docs/determinism.md). A sequence's
// tokens within one step must be in increasing consecutive positions (a
// chunk); their keys and values are stored before attention runs, so a token
// sees the earlier tokens of its own chunk.
//
// Stored as parallel arrays because the kernels take them that way
// (kernels::ApplyRope reads `positions` directly).
#pragma once

#include <cstdint>
#include <vector>

namespace lockstep::runtime {

struct TokenBatch {
  std::vector<int32_t> tokens;     // [T] token ids (read by the first stage only)
  std::vector<int32_t> slots;      // [T] sequence slot of each token
  std::vector<int32_t> positions;  // [T] position of each token in its sequence
  // Rows of [T] whose logits the step must produce, increasing: the last
  // token of a finished prefill and every decode token.
  std::vector<int32_t> logits_rows;

  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
  bool empty() const { return tokens.empty(); }

  void Add(int32_t token, int32_t slot, int32_t position, bool wants_logits) {
    if (wants_logits) logits_rows.push_back(static_cast<int32_t>(tokens.size()));
    tokens.push_back(token);
    slots.push_back(slot);
    positions.push_back(position);
  }
  void Clear() {
    tokens.clear();
    slots.clear();
    positions.clear();
    logits_rows.clear();
  }
};

}  // namespace lockstep::runtime
