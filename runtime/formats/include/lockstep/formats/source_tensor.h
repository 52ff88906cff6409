// A tensor of a source checkpoint (safetensors, GGUF, llama2.c) as the
// converter sees it: where its bytes are, how they are encoded, and how to
// read a block of its rows as f32.
//
// Encodings (all little-endian, row-major, rows of `shape[1]` elements):
//   kF32, kF16, kBF16  dense values.
//   kQ8_0              GGUF/ggml Q8_0: each row is cut into blocks of 32
//                      values, a block is 34 bytes: an f16 scale d, then 32
//                      int8 q; value = d * q. Rows must be a multiple of 32.
//   kQ4_0              GGUF/ggml Q4_0: blocks of 32 values in 18 bytes, an f16
//                      scale and 16 bytes of 4-bit values (base/quant_block.h).
//   kGroupQ8           llama2.c export version 2: int8 q for every element
//                      at `offset`, then (at `scale_offset`) one f32 scale s
//                      per `group_size` consecutive elements of the flattened
//                      tensor; value = q * s.
// Widening f16/bf16 and dequantising Q8_0 / Q4_0 are exact in f32 (an f16 times
// an int8 needs at most 19 significant bits); kGroupQ8 rounds the product to
// f32 exactly as llama2.c's runq.c does.
//
// Thread safety: ReadSourceRows is safe to call concurrently with distinct
// scratch buffers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/formats/input_file.h"

namespace lockstep::runtime {

enum class SourceEncoding { kF32, kF16, kBF16, kQ8_0, kQ4_0, kGroupQ8 };

// "f32", "f16", "bf16", "q8_0", "q4_0", "q8 (llama2.c groups)".
std::string_view SourceEncodingName(SourceEncoding encoding);

inline constexpr int64_t kQ8_0BlockValues = 32;
inline constexpr int64_t kQ8_0BlockBytes = 34;
inline constexpr int64_t kQ4_0BlockBytes = 18;

struct SourceTensor {
  std::string name;                 // as named by the source, for messages
  const InputFile* file = nullptr;  // not owned; outlives the tensor
  SourceEncoding encoding = SourceEncoding::kF32;
  std::vector<int64_t> shape;  // torch order: [rows, cols] or [n]
  uint64_t offset = 0;         // first byte of the data in `file`
  uint64_t scale_offset = 0;   // kGroupQ8: first byte of the scales
  int64_t group_size = 0;      // kGroupQ8: elements per scale

  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  int64_t cols() const { return shape.size() == 2 ? shape[1] : 1; }
  int64_t elements() const;
};

// Bytes of the data of `tensor` (values, and for kGroupQ8 also the scales),
// or an error if the shape does not fit the encoding (Q8_0 rows not a
// multiple of 32, group size not positive) or the byte count overflows. The
// message names the tensor and the file.
Result<uint64_t> SourceTensorBytes(const SourceTensor& tensor);

// Checks that every byte of `tensor` lies inside its file: kDataLoss
// "<file>: truncated: tensor '<name>' needs bytes [a, b) but the file has
// <size> bytes" otherwise. Readers call this when they open a checkpoint, so
// that a header that lies is reported before anything is written.
Status CheckSourceTensorBounds(const SourceTensor& tensor);

// Rows [row_begin, row_begin + num_rows) of `tensor` as a tensor of its own
// (a part of a fused tensor: Phi-3's qkv_proj holds wq, wk, wv). Rows are
// stored whole and contiguous in every encoding but kGroupQ8 (whose groups
// run over the flattened tensor), which is not sliced. Requires the rows to
// lie inside the tensor.
SourceTensor SliceSourceRows(const SourceTensor& tensor, int64_t row_begin, int64_t num_rows);

// Reads rows [row_begin, row_begin + num_rows) as f32 into `out` (num_rows x
// cols values). `scratch` holds the raw bytes between calls (grown as
// needed). The rows must lie inside the tensor (checked).
Status ReadSourceRows(const SourceTensor& tensor, int64_t row_begin, int64_t num_rows, float* out,
                      std::vector<uint8_t>* scratch);

// Reads rows [row_begin, row_begin + num_rows) of a kQ8_0 or kQ4_0 tensor as
// they are stored (rows of blocks) into `out`, without converting them.
Status ReadSourceBlocks(const SourceTensor& tensor, int64_t row_begin, int64_t num_rows,
                        uint8_t* out);

}  // namespace lockstep::runtime
