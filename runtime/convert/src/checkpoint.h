// A source checkpoint opened for conversion (runtime/convert.h): its config,
// its rotary layout and, for every tensor of the model format, where the
// source holds it. One opener per format (convert_hf.cc, convert_gguf.cc,
// convert_llama2c.cc) builds it; convert.cc writes it out.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/formats/input_file.h"
#include "lockstep/formats/source_tensor.h"
#include "lockstep/partitioner/model_config.h"
#include "lockstep/partitioner/model_family.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime {

// How the rows of wq and wk pair up under RoPE.
enum class RopeLayout {
  // Hugging Face rotate-half: within a head, element i pairs with
  // i + head_dim/2. Model format v1 uses this layout.
  kHalf,
  // Meta's original (and llama.cpp's GGUF) layout: element 2j pairs with
  // 2j + 1. Converted by a permutation of the rows of each head.
  kInterleaved,
};

struct Checkpoint {
  std::string source;         // the folder or file given, for messages
  std::string config_source;  // where the config came from, e.g. ".../config.json"
  partitioner::ModelConfig config;
  RopeLayout rope_layout = RopeLayout::kHalf;
  // The files the tensors point into (stable addresses).
  std::vector<std::unique_ptr<InputFile>> files;
  // Model-format path ("/layers/0/attn/wq") -> the source tensor (a row range
  // of a fused tensor is a source tensor of its own). An opener
  // fills in every tensor of ModelTensors(config) or fails with a NotFound
  // naming the source file and the tensor it expected.
  std::map<std::string, SourceTensor> tensors;
  // Source tensors that no model tensor uses (reported, not converted).
  std::vector<std::string> unused;
  // The file holding the checkpoint's own tokenizer, for ReadTokenizerData
  // (HF: tokenizer.json, else tokenizer.model in the folder; GGUF: the file
  // itself when it has tokenizer.ggml.* metadata); "" if none.
  std::string tokenizer_file;
  // The tokenizer to store: `lockstep convert --tokenizer`, else the one in
  // tokenizer_file (convert.cc fills it in).
  std::optional<TokenizerData> tokenizer;
};

// Rows of each head of wq/wk, written by the HF rotate-half convention, from
// rows in the interleaved convention: out row c*head_dim/2 + j of a head =
// in row 2j + c (c in {0, 1}, j < head_dim/2). `rows` holds whole heads,
// `cols` values each. This is the inverse of the permutation llama.cpp's
// converter applies to Hugging Face checkpoints, and equals the one Hugging
// Face's converter applies to Meta's checkpoints.
void InterleavedToHalfRows(const float* in, int64_t rows, int64_t cols, int head_dim, float* out);
// The same permutation on rows of `row_bytes` bytes (rows of quantized blocks).
void InterleavedToHalfRowBytes(const uint8_t* in, int64_t rows, int64_t row_bytes, int head_dim,
                               uint8_t* out);

// Every tensor of ModelTensors(ckpt->config) from `available` (the
// checkpoint's tensors by name, as the file stores them) per `layout` (the
// family's, partitioner/model_family.h): an unfused tensor as it is, a fused
// one checked against the shapes of its parts and split by rows. Fills
// ckpt->tensors and adds the names it used to `used`. A missing tensor is
// NotFound naming `missing_where` (the file or index that should hold it);
// a fused tensor of the wrong shape is InvalidArgument naming its file, the
// shape the config implies and the parts' rows. (tensor_mapping.cc)
Status MapTensors(const partitioner::CheckpointLayout& layout,
                  const std::map<std::string, SourceTensor>& available,
                  std::string_view missing_where, Checkpoint* ckpt, std::set<std::string>* used);

// The openers, one per format (docs/converting.md).
Result<Checkpoint> OpenHfCheckpoint(const std::string& folder);     // convert_hf.cc
Result<Checkpoint> OpenGgufCheckpoint(const std::string& path);     // convert_gguf.cc
Result<Checkpoint> OpenLlama2cCheckpoint(const std::string& path);  // convert_llama2c.cc

}  // namespace lockstep::runtime
