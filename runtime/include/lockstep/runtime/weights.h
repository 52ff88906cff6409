// The weights one rank holds, loaded from a model file according to its
// ShardSpec and packed for the kernels.
//
// Loading reads only the rank's slices (ModelFile::Read with row or column
// ranges), packs each matrix once into a kernels::PackedMatrix (in the file's
// dtype: f16 and bf16 stay 2 bytes per weight) and drops the read buffer, so
// peak memory is the packed weights plus one tensor slice.
#pragma once

#include <cstdint>
#include <vector>

#include "lockstep/base/dtype.h"
#include "lockstep/base/status.h"
#include "lockstep/kernels/matmul.h"
#include "lockstep/runtime/model_file.h"
#include "lockstep/runtime/shard.h"

namespace lockstep::runtime {

struct LayerWeights {
  std::vector<float> attn_norm;  // [hidden]
  kernels::PackedMatrix wq;      // [q_heads * head_dim][hidden]
  kernels::PackedMatrix wk;      // [kv_heads * head_dim][hidden]
  kernels::PackedMatrix wv;      // [kv_heads * head_dim][hidden]
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

// Reads and packs the shard `shard` of the model in `file`. Errors (I/O,
// data loss) name the file and the tensor.
Result<ModelWeights> LoadWeights(ModelFile& file, const ShardSpec& shard);

}  // namespace lockstep::runtime
