// The weights one rank holds, loaded from a model file according to its
// ShardSpec and packed for the kernels.
//
// Loading reads only the rank's slices: the shard list of the plan
// (partitioner::TensorShard, one HDF5 hyperslab each; Plan::RankShards), each
// with one ModelFile::Read. Each matrix is packed once into a
// kernels::PackedMatrix (in the file's dtype: f16 and bf16 stay 2 bytes per
// weight) and the read buffer dropped, so peak memory is the packed weights
// plus one tensor slice. ModelFile::bytes_read() then measures what the rank
// read: the shards' bytes plus HDF5 metadata (tested within 2%).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lockstep/base/dtype.h"
#include "lockstep/base/status.h"
#include "lockstep/engine/shard.h"
#include "lockstep/kernels/matmul.h"
#include "lockstep/model/model_file.h"

namespace lockstep::runtime {

struct LayerWeights {
  std::vector<float> attn_norm;  // [hidden]
  kernels::PackedMatrix wq;      // [q_heads * head_dim][hidden]
  kernels::PackedMatrix wk;      // [kv_heads * head_dim][hidden]
  kernels::PackedMatrix wv;      // [kv_heads * head_dim][hidden]
  std::vector<float> bq;         // [q_heads * head_dim] (qkv_bias; else empty)
  std::vector<float> bk;         // [kv_heads * head_dim]
  std::vector<float> bv;         // [kv_heads * head_dim]
  kernels::PackedMatrix wo;      // [hidden][q_heads * head_dim], reduction shard wo_slice
  std::vector<float> ffn_norm;   // [hidden]
  kernels::PackedMatrix w_gate;  // [ffn][hidden]
  kernels::PackedMatrix w_up;    // [ffn][hidden]
  kernels::PackedMatrix w_down;  // [hidden][ffn], reduction shard down_slice
};

struct ModelWeights {
  partitioner::ModelConfig config;
  ShardSpec shard;
  DType dtype = DType::kF32;  // of the matrices and the embedding table

  // First stage: the embedding table [vocab][embedding_columns] in `dtype`,
  // row-major (a lookup widens one row to f32).
  std::vector<uint8_t> embedding;
  std::vector<LayerWeights> layers;  // shard.layer_begin .. layer_end
  // Last stage.
  std::vector<float> final_norm;  // [hidden]
  kernels::PackedMatrix lm_head;  // [vocab rows][hidden] (the embedding when tied)

  // Bytes of all weights held (packed matrices, tables, norms).
  uint64_t bytes() const;
  // Bytes a decode step streams from memory for one token: every matrix
  // (including the lm_head), the norms and one embedding row.
  uint64_t decode_bytes_per_token() const;
};

struct LoadOptions {
  // Collective reads (a file opened with ModelFileOptions::collective_reads):
  // every rank of the file's communicator calls LoadWeights at once and each
  // reads every tensor of the model in the same order (file order, then a
  // tied lm_head), with an empty selection for tensors it does not hold.
  bool collective = false;
  // The arithmetic the matrices are packed for (kernels::PackedMatrix::Pack):
  // kBf16 needs a bf16 file (InvalidArgument naming the file otherwise).
  kernels::Compute compute = kernels::Compute::kFloat;
};

// Reads and packs the slices `shards` of the model in `file`: the rank's
// shard list (Plan::RankShards, or shard.Shards()). Every shard must be the
// one `shard` implies for its tensor and role, and every tensor the rank
// needs must be listed once; otherwise InvalidArgument naming the tensor.
// Errors (I/O, data loss) name the file and the tensor.
Result<ModelWeights> LoadWeights(ModelFile& file, const ShardSpec& shard,
                                 std::span<const partitioner::TensorShard> shards,
                                 const LoadOptions& options = {});
// The same with shard.Shards(file.config(), <the file's weight dtype>).
Result<ModelWeights> LoadWeights(ModelFile& file, const ShardSpec& shard);

}  // namespace lockstep::runtime
