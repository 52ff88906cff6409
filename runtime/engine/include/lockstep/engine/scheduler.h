// Continuous batching: which tokens go into each forward step.
//
// Sequences are queued in submission order. Each step, the scheduler first
// admits queued sequences, strictly in order (the head of the queue waits
// rather than being overtaken), while a sequence slot is free (at most
// max_batch sequences run at once) and the KV cache has the pages for the
// head's whole reservation (prompt + max_tokens positions). It then forms one
// ragged TokenBatch from the running sequences: one decode token for every
// sequence that has sampled a token not yet fed, then prefill chunks of the
// sequences still reading their prompt, in admission order, up to
// max_step_tokens tokens in the step. A sequence that finishes frees its slot
// and pages at once, so the next queued one starts in the very next step.
//
// None of this changes any request's logits or tokens (the forward pass of a
// token does not depend on its batch neighbours); it only changes speed.
//
// Pipelining: several steps (micro-batches) can be outstanding at once.
// A sequence whose step will produce logits (its last known token is in it)
// is "awaiting" its next token and is not scheduled again until the
// CompleteStep of that step. A sequence still reading its prompt is not
// blocked: its next prompt chunk may go into the next step while the
// previous chunk is still in the pipeline, because every stage runs the
// steps in order, so the earlier chunk's keys and values are stored before
// the later chunk reads them. NextStep's max_sequences cuts the running
// sequences into micro-batches. With one stage, steps simply alternate
// NextStep/CompleteStep.
//
// Every decision is a function of the calls made (submissions, the order of
// NextStep and CompleteStep, the outcomes), never of time: replicas fed the
// same calls make the same steps (docs/distributed.md, "Step protocol").
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/engine/kv_cache.h"
#include "lockstep/engine/token_batch.h"

namespace lockstep::runtime {

struct SchedulerOptions {
  int max_batch = 8;          // sequences in flight at once (= KV cache slots), >= 1
  int max_step_tokens = 256;  // tokens per step, >= 1 (bounds prefill chunks;
                              // decode tokens are always scheduled)
};

// A slot given to a newly admitted sequence, and its page table. Every rank's
// KvCache applies these (KvCache::Bind) before running the step.
struct SlotBinding {
  int32_t slot = 0;
  std::vector<int32_t> pages;
};

// One sequence's part of a step: num_tokens consecutive tokens.
struct StepChunk {
  int64_t handle = 0;  // the caller's id of the sequence
  int32_t slot = 0;
  int32_t first_position = 0;
  int32_t num_tokens = 0;
  bool wants_logits = false;  // the chunk ends at the last known token
};

struct StepPlan {
  int64_t step = 0;  // 0, 1, 2, ... in the order NextStep made them
  TokenBatch batch;
  std::vector<StepChunk> chunks;        // in batch order
  std::vector<int64_t> logits_handles;  // sequence of each batch.logits_rows entry
  std::vector<SlotBinding> bindings;    // sequences admitted in this step
  std::vector<int64_t> admitted;        // their handles, in admission order
};

// What the caller decided for one logits row of a step.
struct TokenOutcome {
  int32_t token = 0;      // the sampled token
  bool finished = false;  // the sequence ends with this token (stop or length)
};

class Scheduler {
 public:
  Scheduler(const SchedulerOptions& options, int32_t kv_pages);

  // Queues a sequence with handle `handle` (unique among live sequences).
  // ResourceExhausted, naming the page counts, when prompt + max_tokens needs
  // more pages than the whole cache has: it could never run.
  Status Submit(int64_t handle, std::vector<int32_t> prompt, int64_t max_tokens);

  // Nothing queued and nothing running.
  bool Idle() const { return queue_.empty() && running_.empty(); }
  int num_queued() const { return static_cast<int>(queue_.size()); }
  int num_running() const { return static_cast<int>(running_.size()); }

  // Admits and forms the next step (see the file comment), with chunks of at
  // most `max_sequences` sequences (0: no limit). The batch is empty only
  // when Idle() or every running sequence is awaiting a token (or the step
  // would be empty for lack of sequences that can go).
  StepPlan NextStep(int max_sequences = 0);

  // Ends step `plan`: `outcomes` has one entry per plan.batch.logits_rows, in
  // order. A finished sequence releases its slot and pages; an unfinished one
  // gets the token appended to be fed in a later step. A sequence may not
  // produce more than its max_tokens tokens without being finished (checked).
  void CompleteStep(const StepPlan& plan, std::span<const TokenOutcome> outcomes);

  const KvPageAllocator& allocator() const { return allocator_; }
  const SchedulerOptions& options() const { return options_; }

 private:
  struct Sequence {
    int64_t handle = 0;
    std::vector<int32_t> tokens;  // prompt, then generated tokens
    int64_t prompt_length = 0;
    int64_t reserved_positions = 0;  // prompt + max_tokens
    int64_t fed = 0;                 // tokens put into steps (their keys/values are
                                     // stored once those steps have run)
    int32_t slot = -1;
    std::vector<int32_t> pages;
    int in_flight = 0;      // outstanding steps holding a chunk of this sequence
    bool awaiting = false;  // a step in flight will produce its next token
  };

  Sequence* FindRunning(int64_t handle);
  void Admit(StepPlan* plan);

  SchedulerOptions options_;
  KvPageAllocator allocator_;
  std::deque<Sequence> queue_;
  std::vector<Sequence> running_;    // in admission order
  std::vector<int32_t> free_slots_;  // sorted descending: back() is the lowest
  int64_t next_step_ = 0;
};

}  // namespace lockstep::runtime
