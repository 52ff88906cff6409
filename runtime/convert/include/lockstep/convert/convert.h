// Converting checkpoints into model format v1: `lockstep convert`
// (docs/converting.md).
//
// Sources:
//   kHuggingFace  a Llama checkpoint folder: config.json, then
//                 model.safetensors or the shards listed by
//                 model.safetensors.index.json (F32, F16 or BF16 tensors);
//                 tokenizer.json (preferred) or tokenizer.model.
//   kGguf         a GGUF file of architecture "llama" (F32, F16, BF16 and
//                 Q8_0 tensors; config from the llama.* metadata; the
//                 tokenizer from the tokenizer.ggml.* metadata).
//   kLlama2c      a llama2.c checkpoint: the legacy export (7 int32 header)
//                 or the versioned exports 1 (f32) and 2 (int8 groups);
//                 its tokenizer.bin given separately.
//
// What is checked before anything is written: the config (ModelConfig::
// Validate and the features lockstep does not implement, e.g. rope scaling),
// that every tensor of ModelTensors(config) is present with the shape the
// config implies and a supported dtype, and that every tensor's bytes lie
// inside its file. Errors are one line naming the file and the tensor or
// field.
//
// Rotary layouts: Hugging Face checkpoints already use the rotate-half
// pairing of model format v1; GGUF and llama2.c store wq and wk in the
// interleaved layout, and their rows are permuted per head, so that the
// converted model computes the same logits as the source does under its own
// convention.
//
// Memory: tensors are converted in blocks of whole rows (about
// options.block_bytes of f32 values at a time), read with pread rather than
// mapped, so the resident memory stays near a few blocks whatever the size
// of the model or of its largest tensor.
//
// The output is written to "<output>.partial" and renamed to `output` only
// when complete, so a failed conversion leaves no file that looks valid and
// never clobbers an existing model.
//
// Thread safety: ConvertCheckpoint may run concurrently with other HDF5 work
// of the process (see model_file.h); it logs with component "convert".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lockstep/base/dtype.h"
#include "lockstep/base/status.h"
#include "lockstep/partitioner/model_config.h"

namespace lockstep::runtime {

enum class CheckpointFormat { kHuggingFace, kGguf, kLlama2c };

// "hf", "gguf", "llama2c".
std::string_view CheckpointFormatName(CheckpointFormat format);
Result<CheckpointFormat> ParseCheckpointFormat(std::string_view name);

struct ConvertOptions {
  CheckpointFormat format = CheckpointFormat::kHuggingFace;
  // kHuggingFace: the checkpoint folder; kGguf: the .gguf file; kLlama2c:
  // the checkpoint .bin file.
  std::string input;
  std::string output;  // the model file to write (replaced if it exists)
  // Weight dtype of the output matrices (norms are always f32). Unset: the
  // source's, where the file formats can represent it exactly: the matrices'
  // common dtype if they all have one of f32, f16, bf16; otherwise f32
  // (Q8_0, int8 groups and mixed f16/bf16 are exact in f32).
  std::optional<DType> dtype;
  // A tokenizer file to store in the model instead of the checkpoint's own:
  // a llama2.c tokenizer.bin (a file name ending in ".bin", for kLlama2c),
  // or anything ReadTokenizerData reads (tokenizer.json, tokenizer.model, a
  // GGUF or model file). Empty: the checkpoint's own (none for kLlama2c).
  std::string tokenizer;
  // Progress on stderr: one line redrawn in place on a terminal, a plain log
  // line every few seconds otherwise.
  bool progress = true;
  // f32 bytes converted per block (whole rows; at least one row, and whole
  // chunks of the output and whole heads of wq/wk).
  int64_t block_bytes = int64_t{16} << 20;
};

struct ConvertSummary {
  partitioner::ModelConfig config;
  DType dtype = DType::kF32;  // of the output matrices
  std::string source_dtypes;  // the source matrices' dtypes, e.g. "bf16" or "f16+q8_0"
  int64_t num_tensors = 0;
  int64_t output_bytes = 0;          // tensor bytes written (output dtypes)
  int64_t largest_tensor_bytes = 0;  // the largest tensor, as f32 bytes
  bool rope_permuted = false;        // wq/wk rows were permuted (interleaved source)
  std::string tokenizer;             // source of the stored tokenizer, "" if none
  double seconds = 0.0;
  // Peak resident memory of this process so far (VmHWM of /proc/self/status;
  // 0 where that is not available): the figure that the memory bound of a
  // conversion is measured by.
  int64_t peak_rss_bytes = 0;
};

Result<ConvertSummary> ConvertCheckpoint(const ConvertOptions& options);

}  // namespace lockstep::runtime
