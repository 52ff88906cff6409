#include "lockstep/engine/scheduler.h"

#include <algorithm>

#include "lockstep/base/check.h"

namespace lockstep::runtime {

Scheduler::Scheduler(const SchedulerOptions& options, int32_t kv_pages)
    : options_(options), allocator_(kv_pages) {
  LOCKSTEP_CHECK(options.max_batch >= 1 && options.max_step_tokens >= 1);
  for (int32_t s = options.max_batch - 1; s >= 0; --s) free_slots_.push_back(s);
}

Status Scheduler::Submit(int64_t handle, std::vector<int32_t> prompt, int64_t max_tokens) {
  LOCKSTEP_CHECK(!prompt.empty() && max_tokens >= 1);
  Sequence s;
  s.handle = handle;
  s.prompt_length = static_cast<int64_t>(prompt.size());
  s.reserved_positions = s.prompt_length + max_tokens;
  s.tokens = std::move(prompt);
  const int32_t pages = KvPagesFor(s.reserved_positions);
  if (pages > allocator_.num_pages()) {
    return ResourceExhausted(
        "prompt ({} tokens) + max_tokens ({}) needs {} KV cache pages of {} positions, but the "
        "cache has {} pages in all; raise --kv-cache-mb or shorten the request",
        s.prompt_length, max_tokens, pages, kernels::kKvPageSize, allocator_.num_pages());
  }
  queue_.push_back(std::move(s));
  return Status::Ok();
}

Scheduler::Sequence* Scheduler::FindRunning(int64_t handle) {
  for (Sequence& s : running_) {
    if (s.handle == handle) return &s;
  }
  return nullptr;
}

void Scheduler::Admit(StepPlan* plan) {
  while (!queue_.empty() && !free_slots_.empty()) {
    Sequence& head = queue_.front();
    Result<std::vector<int32_t>> pages = allocator_.Allocate(KvPagesFor(head.reserved_positions));
    if (!pages.ok()) break;  // strict order: wait for pages rather than let others pass
    head.pages = std::move(pages).value();
    head.slot = free_slots_.back();
    free_slots_.pop_back();
    plan->bindings.push_back({head.slot, head.pages});
    plan->admitted.push_back(head.handle);
    running_.push_back(std::move(head));
    queue_.pop_front();
  }
}

StepPlan Scheduler::NextStep(int max_sequences) {
  StepPlan plan;
  plan.step = next_step_++;
  Admit(&plan);
  const size_t cap = max_sequences > 0 ? static_cast<size_t>(max_sequences) : running_.size();

  auto add_chunk = [&](Sequence& s, int64_t count) {
    const int64_t known = static_cast<int64_t>(s.tokens.size());
    StepChunk chunk;
    chunk.handle = s.handle;
    chunk.slot = s.slot;
    chunk.first_position = static_cast<int32_t>(s.fed);
    chunk.num_tokens = static_cast<int32_t>(count);
    chunk.wants_logits = s.fed + count == known;
    for (int64_t p = s.fed; p < s.fed + count; ++p) {
      const bool last = p + 1 == s.fed + count;
      plan.batch.Add(s.tokens[static_cast<size_t>(p)], s.slot, static_cast<int32_t>(p),
                     last && chunk.wants_logits);
    }
    if (chunk.wants_logits) plan.logits_handles.push_back(s.handle);
    plan.chunks.push_back(chunk);
    s.fed += count;
    s.awaiting = chunk.wants_logits;
    ++s.in_flight;
  };

  // Decode tokens first: every running sequence past its prompt has exactly
  // one token to feed and always gets its turn (within max_sequences).
  int64_t used = 0;
  for (Sequence& s : running_) {
    if (plan.chunks.size() >= cap) break;
    if (s.awaiting || s.fed < s.prompt_length) continue;
    const int64_t pending = static_cast<int64_t>(s.tokens.size()) - s.fed;
    if (pending <= 0) continue;
    LOCKSTEP_CHECK(static_cast<int64_t>(s.tokens.size()) <= s.reserved_positions,
                   "sequence {} went past its reservation", s.handle);
    add_chunk(s, pending);
    used += pending;
  }
  // Then prompt chunks, in admission order, within the token budget.
  for (Sequence& s : running_) {
    if (plan.chunks.size() >= cap) break;
    if (s.awaiting || s.fed >= s.prompt_length) continue;
    const int64_t budget = options_.max_step_tokens - used;
    if (budget <= 0) break;
    const int64_t count = std::min(budget, s.prompt_length - s.fed);
    add_chunk(s, count);
    used += count;
  }
  return plan;
}

void Scheduler::CompleteStep(const StepPlan& plan, std::span<const TokenOutcome> outcomes) {
  LOCKSTEP_CHECK(outcomes.size() == plan.batch.logits_rows.size(), "{} outcomes for {} logits rows",
                 outcomes.size(), plan.batch.logits_rows.size());
  size_t next_outcome = 0;
  std::vector<int64_t> finished;
  for (const StepChunk& chunk : plan.chunks) {
    Sequence* s = FindRunning(chunk.handle);
    LOCKSTEP_CHECK(s != nullptr && s->in_flight > 0, "step {} names sequence {} not in flight",
                   plan.step, chunk.handle);
    --s->in_flight;
    if (!chunk.wants_logits) continue;
    LOCKSTEP_CHECK(s->awaiting && s->in_flight == 0, "step {} completes sequence {} out of order",
                   plan.step, chunk.handle);
    s->awaiting = false;
    const TokenOutcome& outcome = outcomes[next_outcome++];
    s->tokens.push_back(outcome.token);
    const int64_t generated = static_cast<int64_t>(s->tokens.size()) - s->prompt_length;
    LOCKSTEP_CHECK(outcome.finished || s->prompt_length + generated < s->reserved_positions,
                   "sequence {} generated {} tokens, past its max_tokens, without finishing",
                   s->handle, generated);
    if (outcome.finished) finished.push_back(s->handle);
  }
  for (int64_t handle : finished) {
    auto it = std::find_if(running_.begin(), running_.end(),
                           [&](const Sequence& s) { return s.handle == handle; });
    allocator_.Free(it->pages);
    free_slots_.push_back(it->slot);
    running_.erase(it);
  }
  std::sort(free_slots_.begin(), free_slots_.end(), std::greater<int32_t>());
}

}  // namespace lockstep::runtime
