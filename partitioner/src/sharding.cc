#include "lockstep/partitioner/sharding.h"

#include <bit>

#include "lockstep/base/check.h"

namespace lockstep::partitioner {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string ListSizes(const std::vector<int>& sizes) {
  std::string out;
  for (int s : sizes) out += (out.empty() ? "" : ", ") + std::to_string(s);
  return out.empty() ? "none" : out;
}

}  // namespace

Range EvenPart(int64_t n, int parts, int index) {
  return {index * n / parts, (index + 1) * n / parts};
}

Status CheckTensorParallel(const ModelConfig& model, int tp, ElementType weight_type) {
  const std::string valid = ListSizes(ValidTensorParallelSizes(model, weight_type));
  if (tp < 1 || !std::has_single_bit(static_cast<unsigned>(tp)) || tp > kCanonicalSegments) {
    return InvalidArgument(
        "tp {} is not a power of two between 1 and {}: the canonical reduction tree of {} "
        "segments needs one; for '{}' use tp in {{{}}}",
        tp, kCanonicalSegments, kCanonicalSegments, model.name, valid);
  }
  if (tp > model.num_heads) {
    return InvalidArgument("tp {} exceeds the {} attention heads of '{}'; use tp in {{{}}}", tp,
                           model.num_heads, model.name, valid);
  }
  if (model.num_heads % tp != 0) {
    return InvalidArgument(
        "num_attention_heads {} of '{}' is not divisible by tp {}; use tp in {{{}}}",
        model.num_heads, model.name, tp, valid);
  }
  const int kv = model.num_kv_heads;
  if (tp <= kv ? kv % tp != 0 : tp % kv != 0) {
    return InvalidArgument(
        "num_key_value_heads {} of '{}' is not divisible by tp {} (nor is tp a multiple of it, "
        "which would replicate the KV heads); use tp in {{{}}}",
        kv, model.name, tp, valid);
  }
  return CheckBlockAlignment(model, tp, weight_type);
}

std::vector<int> ValidTensorParallelSizes(const ModelConfig& model, ElementType weight_type) {
  std::vector<int> sizes;
  for (int tp = 1; tp <= kCanonicalSegments; tp *= 2) {
    if (tp > model.num_heads || model.num_heads % tp != 0) continue;
    const int kv = model.num_kv_heads;
    if (kv <= 0 || (tp <= kv ? kv % tp != 0 : tp % kv != 0)) continue;
    if (!CheckBlockAlignment(model, tp, weight_type).ok()) continue;
    sizes.push_back(tp);
  }
  return sizes;
}

Status CheckBlockAlignment(const ModelConfig& model, int tp, ElementType weight_type) {
  if (!IsQuantized(weight_type)) return Status::Ok();
  const std::string_view type = ElementTypeName(weight_type);
  constexpr int64_t kBlock = 32;
  // Row lengths: hidden (wq, wk, wv, w_gate, w_up, lm_head, the embedding),
  // q_dim (wo), intermediate_size (w_down).
  struct Row {
    std::string tensor;
    int64_t length;
    const char* field;
    bool column_split;  // tp splits its columns
  };
  const Row rows[] = {
      {std::string(kEmbeddingPath), model.hidden_size, "hidden_size", true},
      {LayerTensorPath(0, "attn/wq"), model.hidden_size, "hidden_size", false},
      {LayerTensorPath(0, "attn/wo"), model.q_dim(), "num_attention_heads * head_dim", true},
      {LayerTensorPath(0, "ffn/w_down"), model.intermediate_size, "intermediate_size", true},
  };
  for (const Row& r : rows) {
    if (r.length % kBlock != 0) {
      return InvalidArgument(
          "tensor '{}' of '{}' has rows of {} values ({}), not whole {}-value {} blocks: the "
          "model cannot have {} weights",
          r.tensor, model.name, r.length, r.field, kBlock, type, type);
    }
  }
  for (const Row& r : rows) {
    const int64_t blocks = r.length / kBlock;
    if (r.column_split && blocks % tp != 0) {
      std::string valid;
      for (int t = 1; t <= kCanonicalSegments && t <= blocks; t *= 2) {
        if (blocks % t == 0) valid += (valid.empty() ? "" : ", ") + std::to_string(t);
      }
      return InvalidArgument(
          "tp {} would cut the {}-value {} blocks of tensor '{}' of '{}': its rows of {} values "
          "({}) are {} blocks, which {} ranks cannot share in whole blocks; for this tensor tp "
          "must divide {} (tp in {{{}}})",
          tp, kBlock, type, r.tensor, model.name, r.length, r.field, blocks, tp, blocks, valid);
    }
  }
  return Status::Ok();
}

TpSlice MakeTpSlice(const ModelConfig& model, int tp, int tp_rank) {
  LOCKSTEP_CHECK(tp >= 1 && tp_rank >= 0 && tp_rank < tp, "tp {} rank {}", tp, tp_rank);
  LOCKSTEP_CHECK(CheckTensorParallel(model, tp).ok(), "tp {} cannot split {}", tp, model.name);
  TpSlice s;
  s.tp = tp;
  s.tp_rank = tp_rank;
  s.q_heads = EvenPart(model.num_heads, tp, tp_rank);
  const int kv = model.num_kv_heads;
  if (tp <= kv) {
    s.kv_heads = EvenPart(kv, tp, tp_rank);
  } else {
    const int64_t head = tp_rank / (tp / kv);
    s.kv_heads = {head, head + 1};
    s.kv_replicated = true;
  }
  s.ffn = EvenPart(model.intermediate_size, tp, tp_rank);
  s.hidden = EvenPart(model.hidden_size, tp, tp_rank);
  s.vocab = EvenPart(model.vocab_size, tp, tp_rank);
  s.segments = EvenPart(kCanonicalSegments, tp, tp_rank);
  return s;
}

int64_t TensorShard::elements() const {
  int64_t n = 1;
  for (int64_t c : count) n *= c;
  return n;
}

TensorShard ShardTensor(const ModelConfig& model, const TensorSpec& tensor, const TpSlice& slice,
                        ElementType weight_type) {
  TensorShard s;
  s.path = tensor.path;
  s.role = tensor.role;
  s.layer = tensor.layer;
  s.shape = tensor.shape;
  s.start.assign(tensor.shape.size(), 0);
  s.count = tensor.shape;
  s.type = weight_type;
  const int64_t hd = model.head_dim;
  switch (tensor.role) {
    case TensorRole::kNorm:
      s.type = ElementType::kF32;
      s.replicated = true;
      break;
    case TensorRole::kEmbedding:
      s.start[1] = slice.hidden.begin;
      s.count[1] = slice.hidden.size();
      break;
    case TensorRole::kLmHead:
      s.start[0] = slice.vocab.begin;
      s.count[0] = slice.vocab.size();
      break;
    case TensorRole::kColumnBias:
    case TensorRole::kColumnParallel: {
      Range rows;
      if (EndsWith(tensor.path, "/wq") || EndsWith(tensor.path, "/bq")) {
        rows = {slice.q_heads.begin * hd, slice.q_heads.end * hd};
      } else if (EndsWith(tensor.path, "/wk") || EndsWith(tensor.path, "/wv") ||
                 EndsWith(tensor.path, "/bk") || EndsWith(tensor.path, "/bv")) {
        rows = {slice.kv_heads.begin * hd, slice.kv_heads.end * hd};
        s.replicated = slice.kv_replicated;
      } else {
        LOCKSTEP_CHECK(EndsWith(tensor.path, "/w_gate") || EndsWith(tensor.path, "/w_up"),
                       "unknown column-parallel tensor {}", tensor.path);
        rows = slice.ffn;
      }
      s.start[0] = rows.begin;
      s.count[0] = rows.size();
      if (tensor.role == TensorRole::kColumnBias) s.type = ElementType::kF32;
      break;
    }
    case TensorRole::kRowParallel: {
      // Columns at canonical segment boundaries of the reduction length K.
      const int64_t k = tensor.shape[1];
      const int64_t begin = slice.segments.begin * k / kCanonicalSegments;
      const int64_t end = slice.segments.end * k / kCanonicalSegments;
      s.start[1] = begin;
      s.count[1] = end - begin;
      s.segments = slice.segments;
      break;
    }
  }
  s.bytes = s.shape.size() > 1 ? s.count[0] * ElementBytes(s.type, s.count[1])
                                : ElementBytes(s.type, s.elements());
  return s;
}

std::string_view TensorRoleName(TensorRole role) {
  switch (role) {
    case TensorRole::kEmbedding:
      return "embedding";
    case TensorRole::kNorm:
      return "norm";
    case TensorRole::kColumnParallel:
      return "column_parallel";
    case TensorRole::kRowParallel:
      return "row_parallel";
    case TensorRole::kLmHead:
      return "lm_head";
    case TensorRole::kColumnBias:
      return "column_bias";
  }
  return "?";
}

Result<TensorRole> ParseTensorRole(std::string_view name) {
  for (TensorRole role : {TensorRole::kEmbedding, TensorRole::kNorm, TensorRole::kColumnParallel,
                          TensorRole::kRowParallel, TensorRole::kLmHead, TensorRole::kColumnBias}) {
    if (TensorRoleName(role) == name) return role;
  }
  return InvalidArgument(
      "unknown tensor role '{}' (known: embedding, norm, column_parallel, row_parallel, lm_head, "
      "column_bias)",
      name);
}

}  // namespace lockstep::partitioner
