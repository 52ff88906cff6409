// `lockstep quantize`: a model file's matrices into q8_0 or q4_0, tensor by
// tensor, block of rows by block of rows (quantize.h).
#include "lockstep/convert/quantize.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <vector>

#include "convert_progress.h"
#include "lockstep/base/log.h"
#include "lockstep/base/quant_block.h"
#include "lockstep/model/chunk_shape.h"
#include "lockstep/model/model_file.h"

namespace lockstep::runtime {
namespace {

using partitioner::TensorRole;
using partitioner::TensorSpec;

// Rows per block: whole chunks of the output (so no output chunk is written
// twice) and about `block_bytes` of f32 values.
int64_t BlockRows(const TensorSpec& spec, DType stored, int64_t block_bytes) {
  const int64_t rows = spec.shape[0];
  if (spec.shape.size() == 1) return rows;
  std::vector<int64_t> stored_shape = spec.shape;
  if (DTypeIsQuantized(stored)) stored_shape[1] /= kQuantBlockSize;
  const int64_t unit = ModelChunkShape(stored_shape, static_cast<size_t>(DTypeBlockBytes(stored)),
                                       ModelWriterOptions{}.target_chunk_bytes)[0];
  if (unit >= rows) return rows;
  const int64_t fit = block_bytes / (spec.shape[1] * 4) / unit * unit;
  return std::min(rows, std::max(unit, fit));
}

// Widens n stored values of `dtype` to f32 (exact).
void Widen(DType dtype, const uint8_t* src, int64_t n, float* dst) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kF16:
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = dtype == DType::kF16 ? F16ToF32(h) : Bf16ToF32(h);
      }
      return;
    case DType::kQ8_0:
    case DType::kQ4_0:
      DequantizeRow(dtype, src, n, dst);
      return;
  }
}

Status Quantize(ModelFile& in, const QuantizeOptions& options, const std::string& path,
                QuantizeSummary* summary) {
  const partitioner::ModelConfig& config = in.config();
  ModelWriterOptions writer_options;
  writer_options.dtype = options.type;
  if (in.has_tokenizer()) {
    LOCKSTEP_ASSIGN_OR_RETURN(TokenizerData tokenizer, in.ReadTokenizer());
    writer_options.tokenizer = std::move(tokenizer);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(ModelWriter writer, ModelWriter::Create(path, config, writer_options));
  const std::vector<TensorSpec> specs = partitioner::ModelTensors(config);
  int64_t total_bytes = 0;
  for (const TensorSpec& spec : specs) {
    const int64_t elements =
        std::accumulate(spec.shape.begin(), spec.shape.end(), int64_t{1}, std::multiplies<>());
    total_bytes += DTypeBytes(partitioner::IsF32Tensor(spec.role) ? DType::kF32 : options.type, elements);
    summary->input_bytes += in.Find(spec.path)->bytes();
    summary->largest_tensor_bytes = std::max(summary->largest_tensor_bytes, elements * 4);
  }
  ConvertProgress progress(static_cast<int64_t>(specs.size()), total_bytes, options.progress,
                           isatty(STDERR_FILENO) == 1);
  std::vector<uint8_t> raw, converted;
  std::vector<float> values;
  int64_t tensors_done = 0, bytes_done = 0;
  for (const TensorSpec& spec : specs) {
    const TensorInfo* info = in.Find(spec.path);
    const DType stored = partitioner::IsF32Tensor(spec.role) ? DType::kF32 : options.type;
    const int64_t rows = spec.shape[0];
    const int64_t cols = spec.shape.size() == 2 ? spec.shape[1] : 1;
    const int64_t block_rows = BlockRows(spec, stored, options.block_bytes);
    // Blocks copied as they are (same type) or widened exactly (q4_0 to
    // q8_0); everything else through f32.
    const bool copy = info->dtype == stored && DTypeIsQuantized(stored);
    const bool widen = info->dtype == DType::kQ4_0 && stored == DType::kQ8_0;
    for (int64_t r = 0; r < rows; r += block_rows) {
      const int64_t n = std::min(block_rows, rows - r);
      raw.resize(static_cast<size_t>(DTypeBytes(info->dtype, n * cols)));
      TensorSlice slice{r, r + n, 0, spec.shape.size() == 2 ? cols : 0};
      LOCKSTEP_RETURN_IF_ERROR(in.Read(spec.path, slice, raw.data()));
      if (DTypeIsQuantized(info->dtype)) {
        const int64_t bad = FirstNonFiniteScale(info->dtype, raw.data(), n * cols / kQuantBlockSize);
        if (bad >= 0) {
          return InvalidArgument("{}: tensor '{}' has a non-finite scale in block {} of row {}",
                                 in.path(), spec.path, bad % (cols / kQuantBlockSize),
                                 r + bad / (cols / kQuantBlockSize));
        }
      }
      if (copy) {
        LOCKSTEP_RETURN_IF_ERROR(writer.WriteStoredRows(spec, r, n, raw.data()));
      } else if (widen) {
        converted.resize(static_cast<size_t>(DTypeBytes(DType::kQ8_0, n * cols)));
        WidenQ4_0ToQ8_0(raw.data(), n * cols / kQuantBlockSize, converted.data());
        LOCKSTEP_RETURN_IF_ERROR(writer.WriteStoredRows(spec, r, n, converted.data()));
      } else {
        values.resize(static_cast<size_t>(n * cols));
        Widen(info->dtype, raw.data(), n * cols, values.data());
        Status written = writer.WriteRows(spec, r, n, values.data());
        if (!written.ok()) return written.WithContext(fmt::format("quantizing {}", in.path()));
      }
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

Result<QuantizeSummary> QuantizeModel(const QuantizeOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (!DTypeIsQuantized(options.type)) {
    return InvalidArgument("--type {} is not a quantized type (expected q8_0 or q4_0)",
                           DTypeName(options.type));
  }
  if (options.output.empty()) return InvalidArgument("no output file given");
  if (options.output == options.input) {
    return InvalidArgument("{}: the output would overwrite the input model", options.output);
  }
  if (options.block_bytes <= 0) {
    return InvalidArgument("block_bytes must be positive, got {}", options.block_bytes);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(ModelFile in, ModelFile::Open(options.input));
  QuantizeSummary summary;
  summary.config = in.config();
  summary.input_dtype = in.weight_dtype();
  if (in.weight_dtype() == DType::kQ8_0 && options.type == DType::kQ4_0) {
    LOCKSTEP_LOG_WARN("quantize",
                      "{}: requantizing q8_0 weights to q4_0 (lossy; quantizing the f32/bf16 "
                      "original gives q4_0 blocks closer to it)",
                      options.input);
  }
  const std::string partial = options.output + ".partial";
  Status written = Quantize(in, options, partial, &summary);
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
