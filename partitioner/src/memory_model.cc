#include "lockstep/partitioner/memory_model.h"

namespace lockstep::partitioner {

int64_t LayerWeightBytes(const ModelConfig& model, const TpSlice& s, ElementType weight_type) {
  const int64_t h = model.hidden_size;
  const int64_t hd = model.head_dim;
  const int64_t q_rows = s.q_heads.size() * hd;
  const int64_t kv_rows = s.kv_heads.size() * hd;
  // Row-parallel columns follow the canonical segments; they coincide with
  // the q rows and ffn rows of the same rank (sharding.h).
  const int64_t wo_cols = EvenPart(model.q_dim(), s.tp, s.tp_rank).size();
  const int64_t down_cols = EvenPart(model.intermediate_size, s.tp, s.tp_rank).size();
  const int64_t norms = 2 * h * 4;
  const int64_t biases = model.qkv_bias ? (q_rows + 2 * kv_rows) * 4 : 0;  // f32, like norms
  // Matrices row by row (a quantized row is whole blocks).
  auto matrix = [&](int64_t rows, int64_t cols) { return rows * ElementBytes(weight_type, cols); };
  return norms + biases + matrix(q_rows + 2 * kv_rows, h) + matrix(h, wo_cols) +
         matrix(2 * s.ffn.size(), h) + matrix(h, down_cols);
}

int64_t LayerKvCacheBytes(const ModelConfig& model, const TpSlice& s, const Workload& workload) {
  return 2 * s.kv_heads.size() * model.head_dim * workload.batch_size * workload.context_length() *
         ElementSize(workload.activation_type);
}

RankMemory StageRankMemory(const ModelConfig& model, const Workload& workload, const TpSlice& s,
                           const StageShape& stage, int pp, int max_micro_batch) {
  const int64_t h = model.hidden_size;
  const ElementType w = workload.weight_type;
  const int64_t a = ElementSize(workload.activation_type);
  const int64_t hd = model.head_dim;
  const int64_t layers = stage.num_layers;
  RankMemory m;
  m.weights = layers * LayerWeightBytes(model, s, workload.weight_type);
  if (stage.embedding) m.weights += model.vocab_size * ElementBytes(w, s.hidden.size());
  if (stage.lm_head) m.weights += h * 4 + s.vocab.size() * ElementBytes(w, h);  // norm + lm_head
  m.kv_cache = layers * LayerKvCacheBytes(model, s, workload);

  const int64_t b = max_micro_batch;
  const int64_t tokens = b * workload.PrefillChunkTokens();
  const int64_t q_rows = s.q_heads.size() * hd;
  const int64_t kv_rows = s.kv_heads.size() * hd;
  m.activations = tokens * (3 * h + 2 * q_rows + 2 * kv_rows + 2 * s.ffn.size()) * a;
  if (stage.lm_head) m.activations += b * (model.vocab_size + s.vocab.size()) * 4;
  const int64_t handoff = tokens * h * a;
  if (s.tp > 1) m.comm_buffers += handoff;
  if (stage.stage > 0) m.comm_buffers += handoff;
  if (stage.stage + 1 < pp) m.comm_buffers += handoff;
  return m;
}

}  // namespace lockstep::partitioner
