#include "lockstep/engine/weights.h"

#include <cstring>
#include <map>
#include <string_view>

#include "lockstep/base/check.h"
#include "lockstep/base/quant_block.h"
#include "lockstep/partitioner/element_type.h"

namespace lockstep::runtime {
namespace {

using partitioner::TensorRole;
using partitioner::TensorShard;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

TensorSlice SliceOf(const TensorShard& s) {
  TensorSlice slice;
  slice.row_begin = s.start[0];
  slice.row_end = s.start[0] + s.count[0];
  if (s.shape.size() > 1) {
    slice.col_begin = s.start[1];
    slice.col_end = s.start[1] + s.count[1];
  }
  return slice;
}

// Where one shard goes in ModelWeights, and the hyperslab the ShardSpec
// implies for it (to check the list against the spec).
class ShardPlacer {
 public:
  ShardPlacer(const partitioner::ModelConfig& c, const ShardSpec& spec, kernels::Compute compute,
              ModelWeights* w)
      : c_(c), spec_(spec), compute_(compute), w_(w) {
    w_->layers.resize(static_cast<size_t>(spec.num_layers()));
  }

  // Takes the shard's data (row-major, tightly packed, in `dtype`).
  Status Place(const TensorShard& s, DType dtype, std::vector<uint8_t>* data) {
    const std::string key = s.path + "#" + std::string(partitioner::TensorRoleName(s.role));
    if (!placed_.emplace(key, true).second) {
      return InvalidArgument("tensor {} ({}) is listed twice in the rank's shards", s.path,
                             partitioner::TensorRoleName(s.role));
    }
    const int64_t h = c_.hidden_size;
    const int64_t hd = c_.head_dim;
    auto expect = [&](IndexRange rows, IndexRange cols) -> Status {
      const TensorSlice got = SliceOf(s);
      if (got.row_begin != rows.begin || got.row_end != rows.end ||
          (s.shape.size() > 1 && (got.col_begin != cols.begin || got.col_end != cols.end))) {
        return InvalidArgument(
            "shard of {} is rows [{}, {}) columns [{}, {}) but tp rank {} of {} holds rows [{}, "
            "{}) columns [{}, {}); the plan does not match the runtime's sharding",
            s.path, got.row_begin, got.row_end, got.col_begin, got.col_end, spec_.tp_rank,
            spec_.tp_size, rows.begin, rows.end, cols.begin, cols.end);
      }
      return Status::Ok();
    };
    auto norm = [&](std::vector<float>* out) -> Status {
      LOCKSTEP_RETURN_IF_ERROR(expect({0, h}, {0, 0}));
      out->resize(static_cast<size_t>(h));
      std::memcpy(out->data(), data->data(), out->size() * sizeof(float));
      return Status::Ok();
    };
    auto bias = [&](IndexRange r, std::vector<float>* out) -> Status {
      LOCKSTEP_RETURN_IF_ERROR(expect(r, {0, 0}));
      out->resize(static_cast<size_t>(r.size()));
      std::memcpy(out->data(), data->data(), out->size() * sizeof(float));
      return Status::Ok();
    };
    // The bf16 compute packs bf16 matrices only (LoadWeights checked the
    // file's dtype; a stray tensor of another type is refused here).
    if (compute_ == kernels::Compute::kBf16 && dtype != DType::kBF16 && s.shape.size() > 1 &&
        s.role != TensorRole::kEmbedding) {
      return InvalidArgument("tensor {} is {}, but --compute bf16 needs bf16 matrices", s.path,
                             DTypeName(dtype));
    }
    auto rows = [&](IndexRange r, kernels::PackedMatrix* out) -> Status {
      LOCKSTEP_RETURN_IF_ERROR(expect(r, {0, h}));
      *out = kernels::PackedMatrix::Pack(dtype, data->data(), r.size(), h,
                                         kernels::ReductionSlice::Full(h), compute_);
      return Status::Ok();
    };
    auto columns = [&](const kernels::ReductionSlice& slice, kernels::PackedMatrix* out) -> Status {
      LOCKSTEP_RETURN_IF_ERROR(expect({0, h}, {slice.column_begin(), slice.column_end()}));
      if (s.segments.begin != slice.segment_begin || s.segments.end != slice.segment_end) {
        return InvalidArgument("shard of {} covers canonical segments [{}, {}), expected [{}, {})",
                               s.path, s.segments.begin, s.segments.end, slice.segment_begin,
                               slice.segment_end);
      }
      *out = kernels::PackedMatrix::Pack(dtype, data->data(), h, slice.columns(), slice, compute_);
      return Status::Ok();
    };

    if (s.layer < 0) {
      switch (s.role) {
        case TensorRole::kEmbedding:
          if (!spec_.has_embedding) break;
          LOCKSTEP_RETURN_IF_ERROR(expect({0, c_.vocab_size}, spec_.embedding_columns));
          w_->embedding = std::move(*data);
          return Status::Ok();
        case TensorRole::kNorm:
          if (!spec_.has_lm_head) break;
          return norm(&w_->final_norm);
        case TensorRole::kLmHead:
          if (!spec_.has_lm_head) break;
          return rows(spec_.vocab, &w_->lm_head);
        default:
          break;
      }
      return InvalidArgument("tensor {} ({}) is not held by stage {}", s.path,
                             partitioner::TensorRoleName(s.role), spec_.pp_stage);
    }
    if (s.layer < spec_.layer_begin || s.layer >= spec_.layer_end) {
      return InvalidArgument("tensor {} of layer {} is outside stage {}'s layers [{}, {})", s.path,
                             s.layer, spec_.pp_stage, spec_.layer_begin, spec_.layer_end);
    }
    LayerWeights& l = w_->layers[static_cast<size_t>(s.layer - spec_.layer_begin)];
    const IndexRange q_rows{spec_.q_heads.begin * hd, spec_.q_heads.end * hd};
    const IndexRange kv_rows{spec_.kv_heads.begin * hd, spec_.kv_heads.end * hd};
    const std::string_view p = s.path;
    if (EndsWith(p, "/attn_norm")) return norm(&l.attn_norm);
    if (EndsWith(p, "/ffn_norm")) return norm(&l.ffn_norm);
    if (EndsWith(p, "/attn/wq")) return rows(q_rows, &l.wq);
    if (EndsWith(p, "/attn/wk")) return rows(kv_rows, &l.wk);
    if (EndsWith(p, "/attn/wv")) return rows(kv_rows, &l.wv);
    if (EndsWith(p, "/attn/bq")) return bias(q_rows, &l.bq);
    if (EndsWith(p, "/attn/bk")) return bias(kv_rows, &l.bk);
    if (EndsWith(p, "/attn/bv")) return bias(kv_rows, &l.bv);
    if (EndsWith(p, "/ffn/w_gate")) return rows(spec_.ffn, &l.w_gate);
    if (EndsWith(p, "/ffn/w_up")) return rows(spec_.ffn, &l.w_up);
    if (EndsWith(p, "/attn/wo")) return columns(spec_.wo_slice, &l.wo);
    if (EndsWith(p, "/ffn/w_down")) return columns(spec_.down_slice, &l.w_down);
    return InvalidArgument("unknown tensor {} in the rank's shards", s.path);
  }

  // Every tensor the stage needs was placed.
  Status CheckComplete() const {
    const size_t per_layer = c_.qkv_bias ? 12 : 9;
    size_t want = per_layer * static_cast<size_t>(spec_.num_layers());
    if (spec_.has_embedding) ++want;
    if (spec_.has_lm_head) want += 2;
    if (placed_.size() != want) {
      return InvalidArgument(
          "the rank's shard list has {} tensors but stage {} (layers [{}, {}){}{}) needs {}",
          placed_.size(), spec_.pp_stage, spec_.layer_begin, spec_.layer_end,
          spec_.has_embedding ? ", embedding" : "", spec_.has_lm_head ? ", lm_head" : "", want);
    }
    return Status::Ok();
  }

 private:
  const partitioner::ModelConfig& c_;
  const ShardSpec& spec_;
  kernels::Compute compute_;
  ModelWeights* w_;
  std::map<std::string, bool> placed_;
};

}  // namespace

uint64_t ModelWeights::bytes() const {
  uint64_t total = embedding.size() + lm_head.bytes() + final_norm.size() * sizeof(float);
  for (const LayerWeights& l : layers) {
    total += (l.attn_norm.size() + l.ffn_norm.size() + l.bq.size() + l.bk.size() + l.bv.size()) *
             sizeof(float);
    for (const kernels::PackedMatrix* m :
         {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      total += m->bytes();
    }
  }
  return total;
}

uint64_t ModelWeights::decode_bytes_per_token() const {
  uint64_t total = lm_head.bytes() + final_norm.size() * sizeof(float);
  if (!embedding.empty()) total += embedding.size() / static_cast<uint64_t>(config.vocab_size);
  for (const LayerWeights& l : layers) {
    total += (l.attn_norm.size() + l.ffn_norm.size() + l.bq.size() + l.bk.size() + l.bv.size()) *
             sizeof(float);
    for (const kernels::PackedMatrix* m :
         {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      total += m->bytes();
    }
  }
  return total;
}

Result<ModelWeights> LoadWeights(ModelFile& file, const ShardSpec& shard,
                                 std::span<const TensorShard> shards, const LoadOptions& options) {
  const partitioner::ModelConfig& c = file.config();
  ModelWeights w;
  w.config = c;
  w.shard = shard;
  w.dtype = file.weight_dtype();
  // Quantized weights: no tp split may cut a block (the same check the
  // planner makes; here for a shard given without a plan).
  if (Status aligned = partitioner::CheckBlockAlignment(c, shard.tp_size,
                                                        partitioner::FromDType(w.dtype));
      !aligned.ok()) {
    return aligned.WithContext(file.path());
  }
  if (options.compute == kernels::Compute::kBf16 && w.dtype != DType::kBF16) {
    return InvalidArgument("{}: --compute bf16 needs bf16 weights and the file holds {}",
                           file.path(), DTypeName(w.dtype));
  }
  ShardPlacer placer(c, shard, options.compute, &w);
  std::vector<uint8_t> buffer;

  auto read = [&](const TensorShard& s) -> Status {
    const TensorInfo* info = file.Find(s.path);
    if (info == nullptr) return NotFound("{}: tensor {} is missing", file.path(), s.path);
    buffer.resize(static_cast<size_t>(DTypeBytes(info->dtype, s.elements())));
    LOCKSTEP_RETURN_IF_ERROR(file.Read(s.path, SliceOf(s), buffer.data()));
    if (DTypeIsQuantized(info->dtype)) {
      // A block scale that is Inf or NaN would turn every output it touches
      // into Inf or NaN: refuse the file (checked while reading; one scale
      // per 32 weights).
      const int64_t row_blocks = s.cols().size() / kQuantBlockSize;
      const int64_t bad = FirstNonFiniteScale(info->dtype, buffer.data(), s.rows().size() * row_blocks);
      if (bad >= 0) {
        const float scale = F16ToF32(QuantBlockScaleBits(info->dtype, buffer.data(), bad));
        return InvalidArgument(
            "{}: tensor '{}' has a non-finite scale ({}) in block {} of row {}: the {} weights "
            "are damaged",
            file.path(), s.path, scale, s.cols().begin / kQuantBlockSize + bad % row_blocks,
            s.rows().begin + bad / row_blocks, DTypeName(info->dtype));
      }
    }
    return placer.Place(s, info->dtype, &buffer);
  };

  if (!options.collective) {
    for (const TensorShard& s : shards) LOCKSTEP_RETURN_IF_ERROR(read(s));
  } else {
    // The same sequence of reads on every rank: the whole inventory in file
    // order, then the tied lm_head; an empty selection where this rank holds
    // nothing of a tensor.
    std::vector<std::pair<std::string, TensorRole>> order;
    for (const partitioner::TensorSpec& t : partitioner::ModelTensors(c)) {
      order.push_back({t.path, t.role});
    }
    if (c.tie_word_embeddings) {
      order.push_back({std::string(partitioner::kEmbeddingPath), TensorRole::kLmHead});
    }
    for (const auto& [path, role] : order) {
      const TensorShard* mine = nullptr;
      for (const TensorShard& s : shards) {
        if (s.path == path && s.role == role) mine = &s;
      }
      if (mine != nullptr) {
        LOCKSTEP_RETURN_IF_ERROR(read(*mine));
      } else {
        LOCKSTEP_RETURN_IF_ERROR(file.Read(path, TensorSlice{}, nullptr));
      }
    }
  }
  LOCKSTEP_RETURN_IF_ERROR(placer.CheckComplete());
  return w;
}

Result<ModelWeights> LoadWeights(ModelFile& file, const ShardSpec& shard) {
  const std::vector<TensorShard> shards =
      shard.Shards(file.config(), partitioner::FromDType(file.weight_dtype()));
  return LoadWeights(file, shard, shards);
}

}  // namespace lockstep::runtime
