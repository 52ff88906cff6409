// Quantizing a model file: `lockstep quantize --model in.h5 --type q8_0|q4_0
// --output out.h5` (docs/converting.md, "Quantizing a model").
//
// Every weight matrix of the input (f32, f16, bf16, q8_0 or q4_0) is written
// as `type` with ggml's reference quantizer (base/quant_block.h): the same
// blocks llama.cpp's llama-quantize makes from the same values. Exceptions
// that lose nothing: a matrix already in `type` is copied block for block,
// and q4_0 -> q8_0 widens each block exactly (same scale). q8_0 -> q4_0
// requantizes the dequantized values (lossy). Norms stay f32; the config,
// the tokenizer and the chunking rule are the input's.
//
// Streaming: tensors go one block of rows at a time (whole output chunks,
// about block_bytes of f32), so the resident memory stays near one such
// block plus HDF5's chunk cache, whatever the size of the model; the peak is
// measured and returned (tests/reference/quantize_memory_test.py).
//
// The output is written to "<output>.partial" and renamed when complete.
// Errors name the file and the tensor: a non-finite weight (which cannot be
// quantized), a row that is not whole blocks of 32, a non-finite scale in a
// quantized input.
#pragma once

#include <cstdint>
#include <string>

#include "lockstep/base/dtype.h"
#include "lockstep/base/status.h"
#include "lockstep/partitioner/model_config.h"

namespace lockstep::runtime {

struct QuantizeOptions {
  std::string input;   // a model file
  std::string output;  // the model file to write (replaced if it exists)
  DType type = DType::kQ8_0;  // q8_0 or q4_0
  bool progress = true;       // progress lines on stderr (as convert)
  int64_t block_bytes = int64_t{16} << 20;  // f32 bytes per block of rows
};

struct QuantizeSummary {
  partitioner::ModelConfig config;
  DType input_dtype = DType::kF32;
  int64_t num_tensors = 0;
  int64_t input_bytes = 0;   // tensor bytes read
  int64_t output_bytes = 0;  // tensor bytes written
  int64_t largest_tensor_bytes = 0;  // the largest tensor, as f32 bytes
  double seconds = 0.0;
  int64_t peak_rss_bytes = 0;  // VmHWM of this process (0 where unknown)
};

Result<QuantizeSummary> QuantizeModel(const QuantizeOptions& options);

}  // namespace lockstep::runtime
