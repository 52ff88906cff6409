// The engine: one rank's share of the forward pass of a Llama model over a
// ragged batch of tokens (token_batch.h), with a paged KV cache.
//
// Per token, the engine computes exactly what a one-token, one-sequence
// forward pass would: every kernel's result for a row depends only on that
// row (kernels.h), the engine has no batch-size-dependent code path, and keys
// and values are stored before attention reads them. So the logits of a
// token are the same bits whatever else is in the step, whatever the thread
// count and the instruction set (the determinism contract,
// docs/determinism.md).
//
// Work is split the way pipeline parallelism needs it:
//   Embed          first stage: token ids -> hidden [T][hidden]
//   RunLayers      the stage's layers, in place on hidden [T][hidden]
//   ComputeLogits  last stage: final norm + lm_head for batch.logits_rows
// Forward runs the three in a row; with one stage holding everything that is
// the whole model. Between stages only `hidden` travels, as raw bits
// (docs/distributed.md).
//
// Tensor parallelism (shard().tp_size > 1; EngineOptions::tp_group is then
// the rank's tp group):
//   - Embed looks up the rank's hidden columns of the embedding table and
//     all-gathers them into whole rows;
//   - RunLayers computes the rank's query/KV heads and FFN rows
//     (column-parallel wq, wk, wv, w_gate, w_up: exact by construction), and
//     the row-parallel wo and w_down as the sums of the rank's canonical
//     segments, which the group's AllReduceSum completes to the canonical
//     tree before the residual add -- the one-rank bits;
//   - RMSNorm, RoPE and the residual stream are replicated: every rank of the
//     group holds the same hidden state after each allreduce;
//   - ComputeLogits computes the rank's vocabulary rows and all-gathers them,
//     so every rank of the group ends with the whole logits.
// Every rank of a tp group must make the same calls with the same batches in
// the same order (the collectives are matched by order).
//
// Threads: the engine owns a oneTBB task arena of `threads` threads; every
// call below runs its kernels inside it. Calls must come from one thread at
// a time (the engine keeps its scratch buffers between calls); collectives
// are called from that thread.
//
// Errors: only the tp collectives can fail (a peer that stops answering:
// DeadlineExceeded naming the collective and the peer). After an error the
// engine's state is undefined; end the job.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/engine/kv_cache.h"
#include "lockstep/engine/scheduler.h"
#include "lockstep/engine/tensor_parallel.h"
#include "lockstep/engine/token_batch.h"
#include "lockstep/engine/weights.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/kernels/matmul.h"

namespace lockstep::runtime {

struct EngineOptions {
  int threads = 1;                           // task arena size, >= 1
  kernels::Isa isa = kernels::Isa::kScalar;  // must be supported by the CPU
  int max_slots = 8;                         // sequence slots of the KV cache (>= 1)
  int32_t kv_pages = 0;                      // pages of the KV cache (>= 0)
  // Positions the RoPE table covers: the longest sequence the job will run
  // (prompt + max_tokens), so memory follows the job, not the model's
  // context (a config may claim 10^8 positions). 0: the model's
  // max_position_embeddings. Clamped to it.
  int64_t max_positions = 0;
  // kPlain exists only so benchmarks can measure what the canonical order
  // costs; results then differ from every other configuration.
  kernels::ReductionOrder reduction_order = kernels::ReductionOrder::kCanonical;
  // The rank's tensor-parallel group (not owned; must outlive the engine).
  // Required when the shard's tp_size > 1, with size() == tp_size and
  // rank() == tp_rank; ignored for tp_size 1.
  TensorParallelGroup* tp_group = nullptr;
  // Overlap the tp allreduces with compute (docs/architecture.md,
  // "Overlap"): with tp > 1, a batch of two or more slots runs as two
  // micro-batches, one computing while the other's allreduce is in flight.
  // Same bits either way; only the schedule changes.
  bool tp_overlap = false;
};

// Where an engine's time went, accumulated over its calls (wall clock).
struct EngineTimes {
  double compute_s = 0;     // kernels
  double collective_s = 0;  // inside the tp group's collectives (waiting included)
};

class Engine {
 public:
  ~Engine();

  // Takes the weights of one shard; allocates the KV cache and the RoPE
  // table. InvalidArgument for bad options (including a missing or
  // mismatched tp_group).
  static Result<std::unique_ptr<Engine>> Create(ModelWeights weights, const EngineOptions& options);

  const partitioner::ModelConfig& config() const { return weights_.config; }
  const ShardSpec& shard() const { return weights_.shard; }
  const ModelWeights& weights() const { return weights_; }
  const EngineOptions& options() const { return options_; }
  KvCache& kv_cache() { return kv_cache_; }
  // Logits per row: the whole vocabulary (a tp group gathers its ranks' rows).
  int64_t vocab_rows() const { return weights_.config.vocab_size; }
  const EngineTimes& times() const { return times_; }

  // Binds newly admitted sequences to their pages (before their first step).
  void ApplyBindings(std::span<const SlotBinding> bindings);

  // The whole forward pass (a shard with the embedding, all layers and the
  // lm_head): `logits` gets [batch.logits_rows.size()][vocab_rows()].
  Status Forward(const TokenBatch& batch, std::vector<float>* logits);

  // The stage pieces. hidden: [batch.size()][hidden_size] f32; logits:
  // [batch.logits_rows.size()][vocab_rows()] f32.
  Status Embed(const TokenBatch& batch, float* hidden);
  Status RunLayers(const TokenBatch& batch, float* hidden);
  Status ComputeLogits(const TokenBatch& batch, const float* hidden, float* logits);

  // Runs `work` inside the engine's task arena, so that kernels it calls
  // (e.g. sampling) use the engine's threads and no others.
  void Execute(const std::function<void()>& work);

 private:
  struct Impl;
  Engine(ModelWeights weights, const EngineOptions& options);

  ModelWeights weights_;
  EngineOptions options_;
  KvCache kv_cache_;
  EngineTimes times_;
  std::unique_ptr<Impl> impl_;  // arena, RoPE table, scratch buffers
};

}  // namespace lockstep::runtime
