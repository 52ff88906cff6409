#include "lockstep/engine/engine.h"

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

#include "lockstep/base/check.h"
#include "lockstep/kernels/kernels.h"

namespace lockstep::runtime {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

KvCacheShape CacheShape(const ModelWeights& w, const EngineOptions& options) {
  KvCacheShape shape;
  shape.num_layers = w.shard.num_layers();
  shape.page.num_kv_heads = static_cast<int>(w.shard.kv_heads.size());
  shape.page.head_dim = w.config.head_dim;
  shape.num_pages = options.kv_pages;
  shape.num_slots = options.max_slots;
  return shape;
}

// The model's RoPE table: its rope scaling's frequencies and attention
// factor (partitioner/rope_scaling.h) over every position of its context,
// in double and rounded once (kernels/rope.h). Plain RoPE gives the same
// table as RopeTable(head_dim, theta, positions). `max_positions` > 0 cuts
// the table to the positions the job can reach (every entry is a function
// of its position alone, so the bits of the entries kept do not change).
kernels::RopeTable MakeRopeTable(const partitioner::ModelConfig& c, int64_t max_positions) {
  const partitioner::RopeScaling& scaling = c.rope_scaling;
  const size_t half = static_cast<size_t>(c.head_dim / 2);
  const int64_t positions =
      max_positions > 0 ? std::min(max_positions, c.ContextLength()) : c.ContextLength();
  return kernels::RopeTable(c.head_dim, static_cast<int>(positions),
                            scaling.attention_factor, partitioner::RopeDependsOnPosition(scaling),
                            [&](int position, double* inv_freq) {
                              partitioner::RopeInverseFrequencies(scaling, c.rope_theta, c.head_dim,
                                                                  position, {inv_freq, half});
                            });
}

int64_t CeilDiv(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Tensor parallel gather of a row-major [rows][width] matrix whose columns
// are split over the tp ranks: rank r holds columns [r*width/tp,
// (r+1)*width/tp) in `part`, a block [rows][ceil(width/tp)] (zero padded).
// The blocks are gathered in rank order into `gathered` and each rank's
// columns are copied into place in `out`: pure data movement, so the rows
// are the one-rank rows bit for bit. Adds the collective's time to
// `*collective_s`.
Status GatherColumnBlocks(TensorParallelGroup& group, const std::vector<float>& part,
                          std::vector<float>& gathered, int64_t rows, int64_t width,
                          const char* what, float* out, double* collective_s) {
  const int tp = group.size();
  const int64_t block = CeilDiv(width, tp);
  gathered.resize(static_cast<size_t>(tp * rows * block));
  const Clock::time_point c0 = Clock::now();
  Status status = group.AllGather(part, gathered);
  *collective_s += Since(c0);
  LOCKSTEP_RETURN_IF_ERROR(status.WithContext(what));
  for (int r = 0; r < tp; ++r) {
    const int64_t begin = r * width / tp;
    const int64_t n = (r + 1) * width / tp - begin;
    const float* src = gathered.data() + static_cast<int64_t>(r) * rows * block;
    for (int64_t row = 0; row < rows; ++row) {
      std::memcpy(out + row * width + begin, src + row * block,
                  static_cast<size_t>(n) * sizeof(float));
    }
  }
  return Status::Ok();
}

// Where the overlapped schedule cuts a batch into two micro-batches: the cut
// nearest to the middle that keeps every slot's tokens on one side (a
// prefill chunk's tokens must see each other's keys as in one pass), or 0
// when there is none (one token, or one slot).
int64_t SplitPoint(const TokenBatch& batch) {
  const int64_t T = batch.size();
  if (T < 2) return 0;
  // cut m (1 <= m < T) is allowed unless some slot has tokens on both sides.
  std::vector<int> crossing(static_cast<size_t>(T) + 1, 0);
  std::unordered_map<int32_t, std::pair<int64_t, int64_t>> span;  // slot -> first, last
  for (int64_t t = 0; t < T; ++t) {
    auto [it, fresh] = span.try_emplace(batch.slots[static_cast<size_t>(t)], t, t);
    if (!fresh) it->second.second = t;
  }
  for (const auto& [slot, range] : span) {
    ++crossing[static_cast<size_t>(range.first + 1)];
    --crossing[static_cast<size_t>(range.second + 1)];
  }
  int64_t best = 0;
  int open = 0;
  for (int64_t m = 1; m < T; ++m) {
    open += crossing[static_cast<size_t>(m)];
    if (open != 0) continue;
    if (best == 0 || std::abs(2 * m - T) < std::abs(2 * best - T)) best = m;
  }
  return best;
}

}  // namespace

struct Engine::Impl {
  // Raises oneTBB's thread limit when more threads are asked for than there
  // are cores (tests run 4 threads on 2 cores); otherwise absent, so engines
  // with different thread counts in one process do not cap each other.
  std::optional<tbb::global_control> thread_limit;
  tbb::task_arena arena;
  kernels::RopeTable rope;

  // Scratch, grown to the largest step seen. Shapes for T tokens:
  std::vector<float> norm;                       // [T][hidden]   RMSNorm output (matmul input)
  std::vector<float> q;                          // [T][q_local]  queries, then rotated
  std::vector<float> k;                          // [T][kv_local]
  std::vector<float> v;                          // [T][kv_local]
  std::vector<float> attn;                       // [T][q_local]  attention output
  std::vector<float> proj;                       // [T][hidden]   wo / w_down output
  std::vector<float> gate;                       // [T][ffn]      gate, then SwiGLU output
  std::vector<float> up;                         // [T][ffn]
  std::vector<float> hidden;                     // [T][hidden]   Forward's residual stream
  std::vector<float> part;                       // [T][ceil(n/tp)] this rank's gather block
  std::vector<float> gathered;                   // [tp][T][ceil(n/tp)] all ranks' blocks
  std::vector<kernels::AttentionQuery> queries;  // [T]

  Impl(int threads, const partitioner::ModelConfig& c, int64_t max_positions)
      : arena(threads), rope(MakeRopeTable(c, max_positions)) {
    if (static_cast<unsigned>(threads) > std::thread::hardware_concurrency()) {
      thread_limit.emplace(tbb::global_control::max_allowed_parallelism,
                           static_cast<size_t>(threads));
    }
    arena.initialize();
  }
};

Engine::Engine(ModelWeights weights, const EngineOptions& options)
    : weights_(std::move(weights)),
      options_(options),
      kv_cache_(CacheShape(weights_, options)),
      impl_(std::make_unique<Impl>(options.threads, weights_.config, options.max_positions)) {}

Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::Create(ModelWeights weights, const EngineOptions& options) {
  if (options.threads < 1) {
    return InvalidArgument("--threads must be at least 1, got {}", options.threads);
  }
  if (!kernels::IsaSupported(options.isa)) {
    return InvalidArgument("instruction set '{}' is not supported by this CPU",
                           kernels::IsaName(options.isa));
  }
  if (options.max_slots < 1) {
    return InvalidArgument("--max-batch must be at least 1, got {}", options.max_slots);
  }
  if (options.kv_pages < 0) return InvalidArgument("negative KV page count {}", options.kv_pages);
  if (options.max_positions < 0) {
    return InvalidArgument("negative position count {}", options.max_positions);
  }
  const ShardSpec& shard = weights.shard;
  if (shard.tp_size > 1) {
    if (options.tp_group == nullptr) {
      return InvalidArgument("a tensor-parallel shard (tp {}) needs its tp group", shard.tp_size);
    }
    if (options.tp_group->size() != shard.tp_size || options.tp_group->rank() != shard.tp_rank) {
      return InvalidArgument("tp group of size {} rank {} given to the shard of tp rank {} of {}",
                             options.tp_group->size(), options.tp_group->rank(), shard.tp_rank,
                             shard.tp_size);
    }
  }
  return std::unique_ptr<Engine>(new Engine(std::move(weights), options));
}

void Engine::Execute(const std::function<void()>& work) {
  impl_->arena.execute(work);
}

void Engine::ApplyBindings(std::span<const SlotBinding> bindings) {
  for (const SlotBinding& b : bindings) kv_cache_.Bind(b.slot, b.pages);
}

Status Engine::Forward(const TokenBatch& batch, std::vector<float>* logits) {
  LOCKSTEP_CHECK(weights_.shard.has_embedding && weights_.shard.has_lm_head,
                 "Forward needs a shard with the embedding and the lm_head");
  const int64_t hidden_size = config().hidden_size;
  impl_->hidden.resize(static_cast<size_t>(batch.size() * hidden_size));
  logits->resize(batch.logits_rows.size() * static_cast<size_t>(vocab_rows()));
  LOCKSTEP_RETURN_IF_ERROR(Embed(batch, impl_->hidden.data()));
  LOCKSTEP_RETURN_IF_ERROR(RunLayers(batch, impl_->hidden.data()));
  return ComputeLogits(batch, impl_->hidden.data(), logits->data());
}

Status Engine::Embed(const TokenBatch& batch, float* hidden) {
  LOCKSTEP_CHECK(weights_.shard.has_embedding);
  const Clock::time_point start = Clock::now();
  const double collective_before = times_.collective_s;
  const int64_t T = batch.size();
  const int64_t h = config().hidden_size;
  const int tp = shard().tp_size;
  // This rank's hidden columns of each token's row ([T][cols] into `dst`
  // with row stride ld), widened to f32 exactly.
  const IndexRange cols = shard().embedding_columns;
  const size_t table_row_bytes = static_cast<size_t>(DTypeBytes(weights_.dtype, cols.size()));
  auto lookup = [&](float* dst, int64_t ld) {
    impl_->arena.execute([&] {
      for (int64_t t = 0; t < T; ++t) {
        const int32_t token = batch.tokens[static_cast<size_t>(t)];
        LOCKSTEP_CHECK(token >= 0 && token < config().vocab_size, "token id {} out of range",
                       token);
        kernels::ConvertToF32(
            options_.isa, weights_.dtype,
            weights_.embedding.data() + static_cast<size_t>(token) * table_row_bytes, cols.size(),
            dst + t * ld);
      }
    });
  };
  if (tp == 1) {
    lookup(hidden, h);
    times_.compute_s += Since(start);
    return Status::Ok();
  }
  // Tensor parallel: rank r looks up its columns of every row into a block
  // [T][ceil(h/tp)], gathered and put in place (GatherColumnBlocks).
  Impl& s = *impl_;
  const int64_t block = CeilDiv(h, tp);
  s.part.assign(static_cast<size_t>(T * block), 0.0f);
  lookup(s.part.data(), block);
  LOCKSTEP_RETURN_IF_ERROR(GatherColumnBlocks(*options_.tp_group, s.part, s.gathered, T, h,
                                              "embedding allgather", hidden, &times_.collective_s));
  times_.compute_s += Since(start) - (times_.collective_s - collective_before);
  return Status::Ok();
}

Status Engine::RunLayers(const TokenBatch& batch, float* hidden) {
  const partitioner::ModelConfig& c = config();
  const kernels::Isa isa = options_.isa;
  const kernels::ReductionOrder order = options_.reduction_order;
  const int64_t T = batch.size();
  if (T == 0) return Status::Ok();
  const Clock::time_point start = Clock::now();
  const double collective_before = times_.collective_s;
  const int64_t h = c.hidden_size;
  const int num_heads = static_cast<int>(shard().q_heads.size());
  const int num_kv_heads = static_cast<int>(shard().kv_heads.size());
  const int64_t q_dim = int64_t{num_heads} * c.head_dim;
  const int64_t kv_dim = int64_t{num_kv_heads} * c.head_dim;
  const int64_t ffn = shard().ffn.size();
  const kernels::KvPageShape page = kv_cache_.shape().page;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const float eps = static_cast<float>(c.rms_norm_eps);
  TensorParallelGroup* tp = shard().tp_size > 1 ? options_.tp_group : nullptr;

  Impl& s = *impl_;
  for (int32_t p : batch.positions) {
    LOCKSTEP_CHECK(p >= 0 && p < s.rope.max_positions(),
                   "position {} outside the {} positions the engine was made for", p,
                   s.rope.max_positions());
  }
  auto grow = [T](std::vector<float>& v, int64_t cols) { v.resize(static_cast<size_t>(T * cols)); };
  grow(s.norm, h);
  grow(s.q, q_dim);
  grow(s.k, kv_dim);
  grow(s.v, kv_dim);
  grow(s.attn, q_dim);
  grow(s.proj, h);
  grow(s.gate, ffn);
  grow(s.up, ffn);
  s.queries.resize(static_cast<size_t>(T));

  // The blocks of one layer for the tokens [r0, r1) (every kernel's result
  // for a row depends on that row alone, so any split of the tokens gives
  // the same bits). `attention` adds the previous block's output (`add`:
  // after layer 0) and ends with the attention's wo projection in proj;
  // `ffn` adds the attention output and ends with w_down's in proj. With
  // tp > 1 proj then holds the rank's subtree sums of the canonical segments
  // (row-parallel), completed by the allreduce.
  auto attention = [&](int local, int64_t r0, int64_t r1, bool add) {
    const LayerWeights& w = weights_.layers[static_cast<size_t>(local)];
    const int64_t n = r1 - r0;
    float* x = hidden + r0 * h;
    float* norm = s.norm.data() + r0 * h;
    float* q = s.q.data() + r0 * q_dim;
    float* k = s.k.data() + r0 * kv_dim;
    float* v = s.v.data() + r0 * kv_dim;
    float* attn = s.attn.data() + r0 * q_dim;
    float* proj = s.proj.data() + r0 * h;
    const int32_t* positions = batch.positions.data() + r0;
    s.arena.execute([&] {
      if (add) kernels::Add(isa, x, proj, n * h);
      kernels::RmsNorm(isa, x, n, h, w.attn_norm.data(), eps, norm);
      kernels::Matmul(isa, w.wq, norm, n, h, q, q_dim, order);
      kernels::Matmul(isa, w.wk, norm, n, h, k, kv_dim, order);
      kernels::Matmul(isa, w.wv, norm, n, h, v, kv_dim, order);
      if (c.qkv_bias) {  // the rank's rows of bq, bk, bv, before RoPE (Qwen2)
        kernels::AddBias(isa, q, n, q_dim, w.bq.data(), q_dim);
        kernels::AddBias(isa, k, n, kv_dim, w.bk.data(), kv_dim);
        kernels::AddBias(isa, v, n, kv_dim, w.bv.data(), kv_dim);
      }
      kernels::ApplyRope(isa, s.rope, q, n, q_dim, num_heads, positions);
      kernels::ApplyRope(isa, s.rope, k, n, kv_dim, num_kv_heads, positions);
      // Store every token's key and value before any query reads the cache:
      // a prefill chunk's tokens then see each other exactly as they would
      // had they been fed one by one. (A split of the tokens never cuts a
      // slot's tokens apart: SplitPoint.)
      for (int64_t t = r0; t < r1; ++t) {
        const int32_t slot = batch.slots[static_cast<size_t>(t)];
        const int32_t pos = batch.positions[static_cast<size_t>(t)];
        kernels::KvStore(page, kv_cache_.KPageAt(slot, local, pos),
                         kv_cache_.VPageAt(slot, local, pos), pos % kernels::kKvPageSize,
                         s.k.data() + t * kv_dim, s.v.data() + t * kv_dim);
        kernels::AttentionQuery& query = s.queries[static_cast<size_t>(t)];
        query.q = s.q.data() + t * q_dim;
        query.out = s.attn.data() + t * q_dim;
        query.position = pos;
        // Sliding window: keys (pos - window, pos] (docs/determinism.md).
        query.window_start = c.sliding_window > 0 && pos >= c.sliding_window
                                 ? static_cast<int32_t>(pos - c.sliding_window + 1)
                                 : 0;
        query.k_pages = kv_cache_.KPageTable(slot, local);
        query.v_pages = kv_cache_.VPageTable(slot, local);
      }
      kernels::Attention(isa, page, num_heads, scale, s.queries.data() + r0, n);
      // Row-parallel: with tp > 1 this is the subtree sum of the rank's
      // canonical segments (its heads), completed by the allreduce.
      kernels::Matmul(isa, w.wo, attn, n, q_dim, proj, h, order);
    });
  };
  // FFN block: hidden += w_down(silu(w_gate x) * w_up x), x = norm(hidden).
  auto feed_forward = [&](int local, int64_t r0, int64_t r1) {
    const LayerWeights& w = weights_.layers[static_cast<size_t>(local)];
    const int64_t n = r1 - r0;
    float* x = hidden + r0 * h;
    float* norm = s.norm.data() + r0 * h;
    float* gate = s.gate.data() + r0 * ffn;
    float* up = s.up.data() + r0 * ffn;
    float* proj = s.proj.data() + r0 * h;
    s.arena.execute([&] {
      kernels::Add(isa, x, proj, n * h);
      kernels::RmsNorm(isa, x, n, h, w.ffn_norm.data(), eps, norm);
      kernels::Matmul(isa, w.w_gate, norm, n, h, gate, ffn, order);
      kernels::Matmul(isa, w.w_up, norm, n, h, up, ffn, order);
      kernels::SwiGlu(isa, gate, up, n * ffn, gate);
      kernels::Matmul(isa, w.w_down, gate, n, ffn, proj, h, order);
    });
  };
  const int layers = shard().num_layers();

  const int64_t split = tp != nullptr && options_.tp_overlap ? SplitPoint(batch) : 0;
  if (split == 0) {
    // Row-parallel completion: the rank's subtree sums of the canonical
    // segments, summed over the group by the canonical tree (transport's
    // recursive doubling), outside the arena so the arena's threads do not
    // wait on the network.
    auto complete = [&](const char* what) -> Status {
      if (tp == nullptr) return Status::Ok();
      const Clock::time_point c0 = Clock::now();
      Status st = tp->AllReduceSum(std::span<float>(s.proj.data(), static_cast<size_t>(T * h)));
      times_.collective_s += Since(c0);
      return st.WithContext(what);
    };
    for (int local = 0; local < layers; ++local) {
      attention(local, 0, T, local > 0);
      LOCKSTEP_RETURN_IF_ERROR(complete("attention output allreduce"));
      feed_forward(local, 0, T);
      LOCKSTEP_RETURN_IF_ERROR(complete("FFN output allreduce"));
    }
    if (layers > 0) s.arena.execute([&] { kernels::Add(isa, hidden, s.proj.data(), T * h); });
  } else {
    // Overlap (EngineOptions::tp_overlap, docs/architecture.md): the tokens
    // as two micro-batches A = [0, split) and B = [split, T), each a chain of
    // blocks (attention, FFN, attention, ...) with an allreduce after each.
    // The chains interleave so that one micro-batch computes while the
    // other's allreduce is in flight, and at most one allreduce is in flight:
    //   A.block k; finish B.sum k-1; start A.sum k; B.block k; finish A.sum k;
    //   start B.sum k; ...
    // Every row's arithmetic and every sum is the one above: only the
    // schedule changes.
    const int64_t bounds[3] = {0, split, T};
    auto block = [&](int half, int k) {
      const int local = k / 2;
      if (k % 2 == 0) {
        attention(local, bounds[half], bounds[half + 1], local > 0);
      } else {
        feed_forward(local, bounds[half], bounds[half + 1]);
      }
    };
    auto what = [](int k) {
      return k % 2 == 0 ? "attention output allreduce" : "FFN output allreduce";
    };
    std::unique_ptr<PendingSum> pending;
    int pending_k = 0;
    auto start_sum = [&](int half, int k) -> Status {
      const Clock::time_point c0 = Clock::now();
      float* proj = s.proj.data() + bounds[half] * h;
      const size_t n = static_cast<size_t>((bounds[half + 1] - bounds[half]) * h);
      Result<std::unique_ptr<PendingSum>> started = tp->StartAllReduceSum({proj, n});
      times_.collective_s += Since(c0);
      if (!started.ok()) return started.status().WithContext(what(k));
      pending = std::move(started).value();
      pending_k = k;
      return Status::Ok();
    };
    auto finish_sum = [&]() -> Status {
      if (pending == nullptr) return Status::Ok();
      const Clock::time_point c0 = Clock::now();
      Status st = pending->Finish();
      pending.reset();
      times_.collective_s += Since(c0);
      return st.WithContext(what(pending_k));
    };
    const int blocks = 2 * layers;
    for (int k = 0; k < blocks; ++k) {
      block(0, k);
      LOCKSTEP_RETURN_IF_ERROR(finish_sum());  // B's sum k - 1
      LOCKSTEP_RETURN_IF_ERROR(start_sum(0, k));
      block(1, k);
      LOCKSTEP_RETURN_IF_ERROR(finish_sum());  // A's sum k
      LOCKSTEP_RETURN_IF_ERROR(start_sum(1, k));
    }
    LOCKSTEP_RETURN_IF_ERROR(finish_sum());
    if (layers > 0) s.arena.execute([&] { kernels::Add(isa, hidden, s.proj.data(), T * h); });
  }
  times_.compute_s += Since(start) - (times_.collective_s - collective_before);
  return Status::Ok();
}

Status Engine::ComputeLogits(const TokenBatch& batch, const float* hidden, float* logits) {
  LOCKSTEP_CHECK(weights_.shard.has_lm_head);
  const int64_t h = config().hidden_size;
  const int64_t rows = static_cast<int64_t>(batch.logits_rows.size());
  if (rows == 0) return Status::Ok();
  const Clock::time_point start = Clock::now();
  const double collective_before = times_.collective_s;
  const int tp = shard().tp_size;
  const int64_t vocab = config().vocab_size;
  Impl& s = *impl_;
  // Only the rows whose logits are wanted go through the final norm and the
  // lm_head; each row's arithmetic is the same as if all rows went.
  s.norm.resize(static_cast<size_t>(rows * h));
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = hidden + int64_t{batch.logits_rows[static_cast<size_t>(r)]} * h;
    std::copy(src, src + h, s.norm.data() + r * h);
  }
  // tp 1: straight into `logits`. tp > 1: this rank's vocabulary rows into a
  // block [rows][ceil(vocab/tp)], gathered, then put in place.
  const int64_t block = tp == 1 ? vocab : CeilDiv(vocab, tp);
  float* out = logits;
  if (tp > 1) {
    s.part.assign(static_cast<size_t>(rows * block), 0.0f);
    out = s.part.data();
  }
  s.arena.execute([&] {
    kernels::RmsNorm(options_.isa, s.norm.data(), rows, h, weights_.final_norm.data(),
                     static_cast<float>(config().rms_norm_eps), s.norm.data());
    kernels::Matmul(options_.isa, weights_.lm_head, s.norm.data(), rows, h, out, block,
                    options_.reduction_order);
  });
  if (tp > 1) {
    LOCKSTEP_RETURN_IF_ERROR(GatherColumnBlocks(*options_.tp_group, s.part, s.gathered, rows, vocab,
                                                "logits allgather", logits, &times_.collective_s));
  }
  times_.compute_s += Since(start) - (times_.collective_s - collective_before);
  return Status::Ok();
}

}  // namespace lockstep::runtime
