// Tensor-parallel sharding: which slice of which tensor each rank of a tp group
// holds. Pure integer arithmetic on a ModelConfig; no I/O.
//
// Rank r of a tp group of size tp (a power of two <= 64) holds:
//
//   role             tensor shape [rows][cols]    slice held by rank r
//   kEmbedding       [vocab][hidden]      columns hidden_part(r)  (lookup, then allgather)
//   kNorm            [hidden]             all (replicated, f32 in the file)
//   kColumnParallel  wq [q_dim][hidden]   rows q_heads(r) * head_dim
//                    wk, wv [kv_dim][hidden]  rows kv_heads(r) * head_dim
//                    w_gate, w_up [ffn][hidden]  rows ffn_part(r)
//   kRowParallel     wo [hidden][q_dim]   columns q_heads(r) * head_dim
//                    w_down [hidden][ffn] columns ffn_part(r)
//   kLmHead          [vocab][hidden]      rows vocab_part(r)   (then allgather of logits)
//   kColumnBias      bq [q_dim], bk, bv [kv_dim]  the rows of their matrix (f32 in the file)
//
// where part(r) of a length n is [floor(r*n/tp), floor((r+1)*n/tp)). For the
// reductions of row-parallel tensors this is exactly the canonical segment rule
// of kernels/matmul.h: rank r holds segments [r*S/tp, (r+1)*S/tp) of S = 64,
// i.e. columns [SegmentStart(K, r*S/tp), SegmentStart(K, (r+1)*S/tp)) =
// [floor(r*K/tp), floor((r+1)*K/tp)), for every K, divisible by 64 or not. The
// rows of w_gate/w_up on a rank are the same ffn_part(r) as the columns of its
// w_down, and its wq rows are the columns of its wo, so no data moves between
// the column- and the row-parallel matmul.
//
// Heads. q_heads(r) = [r*H/tp, (r+1)*H/tp) (tp divides H). KV heads: when
// tp <= KV, kv_heads(r) = [r*KV/tp, (r+1)*KV/tp) (tp divides KV); when tp > KV
// (tp a multiple of KV), the KV heads are replicated: rank r holds the single
// KV head r / (tp/KV), which is exactly the KV head its query heads use (query
// head q uses KV head q / (H/KV)), and tp/KV consecutive ranks hold the same one.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/partitioner/element_type.h"
#include "lockstep/partitioner/model_config.h"

namespace lockstep::partitioner {

// The canonical segment count S (must equal kernels::kNumSegments; a test
// checks it). tp may not exceed it.
inline constexpr int kCanonicalSegments = 64;

// Half-open index range [begin, end).
struct Range {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
  bool operator==(const Range&) const = default;
};

// Part `index` of `parts` of [0, n): [floor(index*n/parts), floor((index+1)*n/parts)).
Range EvenPart(int64_t n, int parts, int index);

// Everything tp rank `tp_rank` holds, in units of heads, rows and columns. The
// same for every pipeline stage.
struct TpSlice {
  int tp = 1;
  int tp_rank = 0;
  Range q_heads;               // query heads; wq rows and wo columns are these * head_dim
  Range kv_heads;              // KV heads held (one head when kv_replicated)
  bool kv_replicated = false;  // tp > num_kv_heads: tp/KV ranks hold the same KV head
  Range ffn;                   // rows of w_gate/w_up = columns of w_down
  Range hidden;                // columns of the embedding table
  Range vocab;                 // rows of lm_head (logits computed by this rank)
  Range segments;              // canonical segments of row-parallel reductions

  bool operator==(const TpSlice&) const = default;
};

// Checks that tp can split `model`: tp a power of two in [1, 64], tp <= heads,
// heads divisible by tp, KV heads divisible by tp or tp a multiple of them;
// for quantized weights also CheckBlockAlignment. The message says which
// values would work.
Status CheckTensorParallel(const ModelConfig& model, int tp,
                           ElementType weight_type = ElementType::kF32);
// The tp sizes CheckTensorParallel accepts, ascending.
std::vector<int> ValidTensorParallelSizes(const ModelConfig& model,
                                          ElementType weight_type = ElementType::kF32);

// Quantized weights (q8_0, q4_0) come in blocks of 32 along each row, and a
// block is never cut: every matrix row must be whole blocks (hidden_size,
// num_attention_heads * head_dim and intermediate_size multiples of 32), and
// the column splits of tp -- the row-parallel wo and w_down at the canonical
// segment bounds floor(r*K/tp), the embedding's hidden columns -- must fall on
// block boundaries, i.e. tp must divide the blocks per row of those tensors.
// Then a row-parallel rank holds whole blocks and exactly the canonical
// segments over blocks of kernels/quant_matmul.h. InvalidArgument naming the
// tensor (and the tp sizes that would work) otherwise; OK for other types.
Status CheckBlockAlignment(const ModelConfig& model, int tp, ElementType weight_type);

// Requires CheckTensorParallel(model, tp).ok() and 0 <= tp_rank < tp.
TpSlice MakeTpSlice(const ModelConfig& model, int tp, int tp_rank);

// One rank's slice of one tensor: an HDF5 hyperslab (start, count) of the
// dataset `path`.
struct TensorShard {
  std::string path;                     // HDF5 dataset, e.g. "/layers/3/attn/wq"
  TensorRole role = TensorRole::kNorm;  // how it is split; a tied lm_head is
                                        // role kLmHead on path /tok_embeddings
  int layer = -1;                       // -1 outside the layers
  std::vector<int64_t> shape;           // the whole tensor: [rows][cols] or [n]
  std::vector<int64_t> start;           // first element held, per dimension
  std::vector<int64_t> count;           // elements held, per dimension
  // Canonical segments of the reduction over the columns that this slice
  // covers: the rank's segments for kRowParallel, all [0, 64) otherwise.
  Range segments{0, kCanonicalSegments};
  bool replicated = false;               // the other ranks of the tp group hold the same slice
  ElementType type = ElementType::kF32;  // element type in the file
  int64_t bytes = 0;                     // product(count) * ElementSize(type)

  Range rows() const { return {start[0], start[0] + count[0]}; }
  // Columns of a 2-D tensor; [0, 1) for a 1-D one.
  Range cols() const {
    return shape.size() > 1 ? Range{start[1], start[1] + count[1]} : Range{0, 1};
  }
  int64_t elements() const;

  bool operator==(const TensorShard&) const = default;
};

// The shard of `tensor` that `slice` holds. Matrices are stored as
// `weight_type`, norms as f32.
TensorShard ShardTensor(const ModelConfig& model, const TensorSpec& tensor, const TpSlice& slice,
                        ElementType weight_type);

// Role names used in plan JSON: "embedding", "norm", "column_parallel",
// "row_parallel", "lm_head", "column_bias".
std::string_view TensorRoleName(TensorRole role);
Result<TensorRole> ParseTensorRole(std::string_view name);

}  // namespace lockstep::partitioner
