#include "lockstep/runtime/weights.h"

#include "lockstep/base/check.h"

namespace lockstep::runtime {
namespace {

using partitioner::LayerTensorPath;

class ShardLoader {
 public:
  explicit ShardLoader(ModelFile& file)
      : file_(file), config_(file.config()), dtype_(file.weight_dtype()) {}

  // A norm weight [hidden], f32 in every file.
  Result<std::vector<float>> Norm(const std::string& path) {
    std::vector<float> values(static_cast<size_t>(config_.hidden_size));
    LOCKSTEP_RETURN_IF_ERROR(file_.Read(path, {0, config_.hidden_size, 0, 0}, values.data()));
    return values;
  }

  // Rows [rows.begin, rows.end) of a [rows][hidden] matrix, full reduction.
  Result<kernels::PackedMatrix> Rows(const std::string& path, IndexRange rows) {
    const int64_t cols = config_.hidden_size;
    Fill(rows.size() * cols);
    LOCKSTEP_RETURN_IF_ERROR(file_.Read(path, {rows.begin, rows.end, 0, cols}, buffer_.data()));
    return kernels::PackedMatrix::Pack(dtype_, buffer_.data(), rows.size(), cols,
                                       kernels::ReductionSlice::Full(cols));
  }

  // The columns of reduction shard `slice` of a [hidden][K] matrix.
  Result<kernels::PackedMatrix> Columns(const std::string& path,
                                        const kernels::ReductionSlice& slice) {
    const int64_t rows = config_.hidden_size;
    const int64_t cols = slice.columns();
    Fill(rows * cols);
    LOCKSTEP_RETURN_IF_ERROR(
        file_.Read(path, {0, rows, slice.column_begin(), slice.column_end()}, buffer_.data()));
    return kernels::PackedMatrix::Pack(dtype_, buffer_.data(), rows, cols, slice);
  }

  // Hidden columns `columns` of every row of a [vocab][hidden] table, raw.
  Status Table(const std::string& path, IndexRange columns, std::vector<uint8_t>* out) {
    out->resize(static_cast<size_t>(config_.vocab_size * columns.size()) * DTypeSize(dtype_));
    return file_.Read(path, {0, config_.vocab_size, columns.begin, columns.end}, out->data());
  }

 private:
  void Fill(int64_t elements) { buffer_.resize(static_cast<size_t>(elements) * DTypeSize(dtype_)); }

  ModelFile& file_;
  const partitioner::ModelConfig& config_;
  DType dtype_;
  std::vector<uint8_t> buffer_;  // one tensor slice in the file's dtype
};

}  // namespace

uint64_t ModelWeights::bytes() const {
  uint64_t total = embedding.size() + lm_head.bytes() + final_norm.size() * sizeof(float);
  for (const LayerWeights& l : layers) {
    total += (l.attn_norm.size() + l.ffn_norm.size()) * sizeof(float);
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
    total += (l.attn_norm.size() + l.ffn_norm.size()) * sizeof(float);
    for (const kernels::PackedMatrix* m :
         {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      total += m->bytes();
    }
  }
  return total;
}

Result<ModelWeights> LoadWeights(ModelFile& file, const ShardSpec& shard) {
  const partitioner::ModelConfig& c = file.config();
  ModelWeights w;
  w.config = c;
  w.shard = shard;
  w.dtype = file.weight_dtype();
  ShardLoader load(file);

  if (shard.has_embedding) {
    LOCKSTEP_RETURN_IF_ERROR(load.Table(std::string(partitioner::kEmbeddingPath),
                                        shard.embedding_columns, &w.embedding));
  }
  const int64_t hd = c.head_dim;
  const IndexRange q_rows{shard.q_heads.begin * hd, shard.q_heads.end * hd};
  const IndexRange kv_rows{shard.kv_heads.begin * hd, shard.kv_heads.end * hd};
  for (int l = shard.layer_begin; l < shard.layer_end; ++l) {
    LayerWeights layer;
    LOCKSTEP_ASSIGN_OR_RETURN(layer.attn_norm, load.Norm(LayerTensorPath(l, "attn_norm")));
    LOCKSTEP_ASSIGN_OR_RETURN(layer.wq, load.Rows(LayerTensorPath(l, "attn/wq"), q_rows));
    LOCKSTEP_ASSIGN_OR_RETURN(layer.wk, load.Rows(LayerTensorPath(l, "attn/wk"), kv_rows));
    LOCKSTEP_ASSIGN_OR_RETURN(layer.wv, load.Rows(LayerTensorPath(l, "attn/wv"), kv_rows));
    LOCKSTEP_ASSIGN_OR_RETURN(layer.wo,
                              load.Columns(LayerTensorPath(l, "attn/wo"), shard.wo_slice));
    LOCKSTEP_ASSIGN_OR_RETURN(layer.ffn_norm, load.Norm(LayerTensorPath(l, "ffn_norm")));
    LOCKSTEP_ASSIGN_OR_RETURN(layer.w_gate, load.Rows(LayerTensorPath(l, "ffn/w_gate"), shard.ffn));
    LOCKSTEP_ASSIGN_OR_RETURN(layer.w_up, load.Rows(LayerTensorPath(l, "ffn/w_up"), shard.ffn));
    LOCKSTEP_ASSIGN_OR_RETURN(layer.w_down,
                              load.Columns(LayerTensorPath(l, "ffn/w_down"), shard.down_slice));
    w.layers.push_back(std::move(layer));
  }
  if (shard.has_lm_head) {
    LOCKSTEP_ASSIGN_OR_RETURN(w.final_norm, load.Norm(std::string(partitioner::kFinalNormPath)));
    const std::string head_path =
        std::string(c.tie_word_embeddings ? partitioner::kEmbeddingPath : partitioner::kLmHeadPath);
    LOCKSTEP_ASSIGN_OR_RETURN(w.lm_head, load.Rows(head_path, shard.vocab));
  }
  return w;
}

}  // namespace lockstep::runtime
