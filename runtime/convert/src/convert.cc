// The format-independent half of `lockstep convert`: checks a Checkpoint
// against the tensor inventory and writes it out block by block.
#include "lockstep/convert/convert.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>
#include <set>
#include <vector>

#include "checkpoint.h"
#include "convert_progress.h"
#include "lockstep/base/check.h"
#include "lockstep/base/log.h"
#include "lockstep/base/quant_block.h"
#include "lockstep/convert/tokenizer_file.h"
#include "lockstep/formats/llama2c_tokenizer.h"
#include "lockstep/model/chunk_shape.h"
#include "lockstep/model/model_file.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime {
namespace {

using partitioner::ModelConfig;
using partitioner::TensorRole;
using partitioner::TensorSpec;

std::string ShapeString(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// The tensors whose rows (a head's rotary dimensions) an interleaved source
// permuted: wq, wk and their biases.
bool IsQuery(const TensorSpec& spec) {
  return spec.path.ends_with("/attn/wq") || spec.path.ends_with("/attn/bq");
}
bool IsKey(const TensorSpec& spec) {
  return spec.path.ends_with("/attn/wk") || spec.path.ends_with("/attn/bk");
}

Result<Checkpoint> OpenCheckpoint(const ConvertOptions& options) {
  switch (options.format) {
    case CheckpointFormat::kHuggingFace:
      return OpenHfCheckpoint(options.input);
    case CheckpointFormat::kGguf:
      return OpenGgufCheckpoint(options.input);
    case CheckpointFormat::kLlama2c:
      return OpenLlama2cCheckpoint(options.input);
  }
  return Internal("unknown checkpoint format");
}

// Every model tensor is present with the shape the config implies and its
// bytes inside its file.
Status CheckTensors(const Checkpoint& ckpt, const std::vector<TensorSpec>& specs) {
  for (const TensorSpec& spec : specs) {
    auto it = ckpt.tensors.find(spec.path);
    LOCKSTEP_CHECK(it != ckpt.tensors.end(), "opener left out {}", spec.path);
    const SourceTensor& t = it->second;
    if (t.shape != spec.shape) {
      return InvalidArgument("{}: tensor '{}' has shape {}, but {} implies {} (for {})",
                             t.file->path(), t.name, ShapeString(t.shape), ckpt.config_source,
                             ShapeString(spec.shape), spec.path);
    }
    LOCKSTEP_RETURN_IF_ERROR(CheckSourceTensorBounds(t));
  }
  return Status::Ok();
}

// The tokenizer to store: --tokenizer, else the checkpoint's own. Built
// once here, so that a bad one is reported before anything is written, and
// checked against the vocabulary (ModelWriter checks it again).
Status ChooseTokenizer(const ConvertOptions& options, Checkpoint* ckpt) {
  if (!options.tokenizer.empty()) {
    if (options.format == CheckpointFormat::kLlama2c && options.tokenizer.ends_with(".bin")) {
      LOCKSTEP_ASSIGN_OR_RETURN(ckpt->tokenizer,
                                ReadLlama2cTokenizer(options.tokenizer, ckpt->config.vocab_size));
    } else {
      LOCKSTEP_ASSIGN_OR_RETURN(ckpt->tokenizer, ReadTokenizerData(options.tokenizer));
    }
  } else if (!ckpt->tokenizer_file.empty()) {
    LOCKSTEP_ASSIGN_OR_RETURN(ckpt->tokenizer, ReadTokenizerData(ckpt->tokenizer_file));
  }
  if (!ckpt->tokenizer) {
    LOCKSTEP_LOG_WARN("convert",
                      "{}: no tokenizer (give --tokenizer FILE): the model will take token ids "
                      "only",
                      ckpt->source);
    return Status::Ok();
  }
  LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                            CreateTokenizer(*ckpt->tokenizer));
  if (tokenizer->vocab_size() > ckpt->config.vocab_size) {
    return InvalidArgument(
        "{}: the tokenizer has {} tokens but the model's vocabulary has {} (wrong tokenizer for "
        "this checkpoint?)",
        ckpt->tokenizer->source, tokenizer->vocab_size(), ckpt->config.vocab_size);
  }
  return Status::Ok();
}

// The default output dtype (convert.h) and the names of the source dtypes.
DType DefaultDType(const std::set<SourceEncoding>& matrix_encodings) {
  if (matrix_encodings.size() == 1) {
    switch (*matrix_encodings.begin()) {
      case SourceEncoding::kF16:
        return DType::kF16;
      case SourceEncoding::kBF16:
        return DType::kBF16;
      case SourceEncoding::kQ8_0:
        return DType::kQ8_0;
      case SourceEncoding::kQ4_0:
        return DType::kQ4_0;
      default:
        break;
    }
  }
  // Q8_0 and Q4_0 together: q8_0 holds both without loss.
  if (matrix_encodings == std::set<SourceEncoding>{SourceEncoding::kQ8_0, SourceEncoding::kQ4_0}) {
    return DType::kQ8_0;
  }
  return DType::kF32;
}

// Whether a source tensor's blocks go to `stored` as they are (no detour
// through f32): Q8_0 -> q8_0, Q4_0 -> q4_0, and Q4_0 -> q8_0 (widened
// exactly, same scale).
bool CopiesBlocks(SourceEncoding source, DType stored) {
  return (source == SourceEncoding::kQ8_0 && stored == DType::kQ8_0) ||
         (source == SourceEncoding::kQ4_0 &&
          (stored == DType::kQ4_0 || stored == DType::kQ8_0));
}

// Whether converting `source` to `stored` loses information.
bool Lossy(SourceEncoding source, DType stored) {
  if (CopiesBlocks(source, stored) || stored == DType::kF32) return false;
  if (DTypeIsQuantized(stored)) return true;
  if (stored == DType::kF16) return source != SourceEncoding::kF16;
  return source != SourceEncoding::kBF16;  // bf16
}

// Rows per block for `spec`: whole output chunks (no chunk is written
// twice) and, for wq/wk of an interleaved source, whole heads.
int64_t BlockRows(const TensorSpec& spec, DType dtype, bool whole_heads, int head_dim,
                  int64_t block_bytes) {
  const int64_t rows = spec.shape[0];
  const int64_t cols = spec.shape.size() == 2 ? spec.shape[1] : 1;
  const DType stored = partitioner::IsF32Tensor(spec.role) ? DType::kF32 : dtype;
  std::vector<int64_t> stored_shape = spec.shape;
  if (DTypeIsQuantized(stored)) stored_shape[1] /= kQuantBlockSize;
  int64_t unit = ModelChunkShape(stored_shape, static_cast<size_t>(DTypeBlockBytes(stored)),
                                 ModelWriterOptions{}.target_chunk_bytes)[0];
  if (spec.shape.size() == 1) unit = rows;  // a norm is one block
  if (whole_heads) unit = std::lcm(unit, int64_t{head_dim});
  if (unit >= rows) return rows;
  const int64_t fit = block_bytes / (cols * 4) / unit * unit;
  return std::min(rows, std::max(unit, fit));
}

Status WriteModel(const Checkpoint& ckpt, const std::vector<TensorSpec>& specs, DType dtype,
                  const ConvertOptions& options, const std::string& path, ConvertSummary* summary) {
  ModelWriterOptions writer_options;
  writer_options.dtype = dtype;
  writer_options.tokenizer = ckpt.tokenizer;
  LOCKSTEP_ASSIGN_OR_RETURN(ModelWriter writer,
                            ModelWriter::Create(path, ckpt.config, writer_options));
  int64_t total_bytes = 0;
  for (const TensorSpec& spec : specs) {
    const int64_t elements =
        std::accumulate(spec.shape.begin(), spec.shape.end(), int64_t{1}, std::multiplies<>());
    total_bytes += DTypeBytes(partitioner::IsF32Tensor(spec.role) ? DType::kF32 : dtype, elements);
    summary->largest_tensor_bytes = std::max(summary->largest_tensor_bytes, elements * 4);
  }
  ConvertProgress progress(static_cast<int64_t>(specs.size()), total_bytes,
                           options.progress && IsRankZero(), isatty(STDERR_FILENO) == 1);
  const bool interleaved = ckpt.rope_layout == RopeLayout::kInterleaved;
  const int head_dim = ckpt.config.head_dim;
  std::vector<float> block;
  std::vector<float> permuted;
  std::vector<uint8_t> scratch, raw, raw_permuted, widened;
  int64_t tensors_done = 0;
  int64_t bytes_done = 0;
  for (const TensorSpec& spec : specs) {
    const SourceTensor& source = ckpt.tensors.at(spec.path);
    const bool permute = interleaved && (IsQuery(spec) || IsKey(spec));
    const int64_t rows = spec.shape[0];
    const int64_t cols = spec.shape.size() == 2 ? spec.shape[1] : 1;
    const DType stored = partitioner::IsF32Tensor(spec.role) ? DType::kF32 : dtype;
    const int64_t block_rows = BlockRows(spec, dtype, permute, head_dim, options.block_bytes);
    if (CopiesBlocks(source.encoding, stored)) {
      // Blocks as they are: read, permute rows if needed, widen Q4_0 to
      // q8_0 if asked, write.
      const DType source_dtype =
          source.encoding == SourceEncoding::kQ8_0 ? DType::kQ8_0 : DType::kQ4_0;
      const int64_t source_row_bytes = DTypeBytes(source_dtype, cols);
      raw.resize(static_cast<size_t>(block_rows * source_row_bytes));
      if (permute) raw_permuted.resize(raw.size());
      for (int64_t r = 0; r < rows; r += block_rows) {
        const int64_t n = std::min(block_rows, rows - r);
        LOCKSTEP_RETURN_IF_ERROR(ReadSourceBlocks(source, r, n, raw.data()));
        const uint8_t* data = raw.data();
        if (permute) {
          InterleavedToHalfRowBytes(raw.data(), n, source_row_bytes, head_dim,
                                    raw_permuted.data());
          data = raw_permuted.data();
        }
        if (source_dtype != stored) {
          widened.resize(static_cast<size_t>(DTypeBytes(stored, n * cols)));
          WidenQ4_0ToQ8_0(data, n * cols / kQuantBlockSize, widened.data());
          data = widened.data();
        }
        LOCKSTEP_RETURN_IF_ERROR(writer.WriteStoredRows(spec, r, n, data).WithContext(
            fmt::format("{}: tensor '{}'", source.file->path(), source.name)));
        bytes_done += DTypeBytes(stored, n * cols);
        progress.Update(tensors_done, bytes_done);
      }
      ++tensors_done;
      progress.Update(tensors_done, bytes_done);
      continue;
    }
    block.resize(static_cast<size_t>(block_rows * cols));
    if (permute) permuted.resize(block.size());
    for (int64_t r = 0; r < rows; r += block_rows) {
      const int64_t n = std::min(block_rows, rows - r);
      LOCKSTEP_RETURN_IF_ERROR(ReadSourceRows(source, r, n, block.data(), &scratch));
      const float* values = block.data();
      if (permute) {
        InterleavedToHalfRows(block.data(), n, cols, head_dim, permuted.data());
        values = permuted.data();
      }
      LOCKSTEP_RETURN_IF_ERROR(writer.WriteRows(spec, r, n, values));
      bytes_done += DTypeBytes(stored, n * cols);
      progress.Update(tensors_done, bytes_done);
    }
    ++tensors_done;
    progress.Update(tensors_done, bytes_done);
  }
  LOCKSTEP_RETURN_IF_ERROR(writer.Close());
  progress.Finish(tensors_done, bytes_done);
  summary->num_tensors = tensors_done;
  summary->output_bytes = total_bytes;
  return Status::Ok();
}

}  // namespace

std::string_view CheckpointFormatName(CheckpointFormat format) {
  switch (format) {
    case CheckpointFormat::kHuggingFace:
      return "hf";
    case CheckpointFormat::kGguf:
      return "gguf";
    case CheckpointFormat::kLlama2c:
      return "llama2c";
  }
  return "?";
}

Result<CheckpointFormat> ParseCheckpointFormat(std::string_view name) {
  for (CheckpointFormat f :
       {CheckpointFormat::kHuggingFace, CheckpointFormat::kGguf, CheckpointFormat::kLlama2c}) {
    if (CheckpointFormatName(f) == name) return f;
  }
  return InvalidArgument("unknown checkpoint format '{}' (expected hf, gguf or llama2c)", name);
}

void InterleavedToHalfRows(const float* in, int64_t rows, int64_t cols, int head_dim, float* out) {
  InterleavedToHalfRowBytes(reinterpret_cast<const uint8_t*>(in), rows,
                            cols * static_cast<int64_t>(sizeof(float)), head_dim,
                            reinterpret_cast<uint8_t*>(out));
}

void InterleavedToHalfRowBytes(const uint8_t* in, int64_t rows, int64_t row_bytes, int head_dim,
                               uint8_t* out) {
  LOCKSTEP_CHECK(head_dim % 2 == 0 && rows % head_dim == 0, "rows {} head_dim {}", rows, head_dim);
  const int64_t half = head_dim / 2;
  for (int64_t head = 0; head < rows / head_dim; ++head) {
    const uint8_t* src = in + head * head_dim * row_bytes;
    uint8_t* dst = out + head * head_dim * row_bytes;
    for (int64_t c = 0; c < 2; ++c) {
      for (int64_t j = 0; j < half; ++j) {
        std::memcpy(dst + (c * half + j) * row_bytes, src + (2 * j + c) * row_bytes,
                    static_cast<size_t>(row_bytes));
      }
    }
  }
}

Result<ConvertSummary> ConvertCheckpoint(const ConvertOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (options.output.empty()) return InvalidArgument("no output file given");
  if (options.block_bytes <= 0) {
    return InvalidArgument("block_bytes must be positive, got {}", options.block_bytes);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(Checkpoint ckpt, OpenCheckpoint(options));
  const std::vector<TensorSpec> specs = partitioner::ModelTensors(ckpt.config);
  LOCKSTEP_RETURN_IF_ERROR(CheckTensors(ckpt, specs));
  LOCKSTEP_RETURN_IF_ERROR(ChooseTokenizer(options, &ckpt));

  ConvertSummary summary;
  summary.config = ckpt.config;
  summary.rope_permuted = ckpt.rope_layout == RopeLayout::kInterleaved;
  if (ckpt.tokenizer) summary.tokenizer = ckpt.tokenizer->source;
  std::set<SourceEncoding> matrix_encodings;
  for (const TensorSpec& spec : specs) {
    if (!partitioner::IsF32Tensor(spec.role))
      matrix_encodings.insert(ckpt.tensors.at(spec.path).encoding);
  }
  for (SourceEncoding e : matrix_encodings) {
    summary.source_dtypes += (summary.source_dtypes.empty() ? "" : "+");
    summary.source_dtypes += SourceEncodingName(e);
  }
  summary.dtype = options.dtype.value_or(DefaultDType(matrix_encodings));
  for (SourceEncoding e : matrix_encodings) {
    if (Lossy(e, summary.dtype) && options.dtype && DTypeIsQuantized(summary.dtype)) {
      LOCKSTEP_LOG_WARN("convert",
                        "{}: {} matrices are quantized to {} (lossy: ggml's reference "
                        "quantizer, docs/converting.md)",
                        ckpt.source, SourceEncodingName(e), DTypeName(summary.dtype));
    }
  }
  if (!ckpt.unused.empty()) {
    const size_t shown = std::min<size_t>(ckpt.unused.size(), 4);
    LOCKSTEP_LOG_WARN("convert", "{}: {} tensor(s) not used by architecture {}, skipped: {}{}",
                      ckpt.source, ckpt.unused.size(), ckpt.config.architecture,
                      fmt::join(ckpt.unused.begin(), ckpt.unused.begin() + shown, ", "),
                      ckpt.unused.size() > shown ? ", ..." : "");
  }
  LOCKSTEP_LOG_INFO("convert",
                    "{}: {} layers, hidden {}, {} heads ({} KV), vocab {}; source {} -> {}{}",
                    ckpt.source, ckpt.config.num_layers, ckpt.config.hidden_size,
                    ckpt.config.num_heads, ckpt.config.num_kv_heads, ckpt.config.vocab_size,
                    summary.source_dtypes, DTypeName(summary.dtype),
                    summary.rope_permuted ? "; wq/wk rows permuted from interleaved RoPE" : "");

  const std::string partial = options.output + ".partial";
  Status written = WriteModel(ckpt, specs, summary.dtype, options, partial, &summary);
  if (written.ok() && std::rename(partial.c_str(), options.output.c_str()) != 0) {
    written =
        IoError("{}: cannot rename {} to it: {}", options.output, partial, std::strerror(errno));
  }
  if (!written.ok()) {
    std::remove(partial.c_str());
    return written;
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  summary.peak_rss_bytes = PeakRssBytes();
  return summary;
}

}  // namespace lockstep::runtime
