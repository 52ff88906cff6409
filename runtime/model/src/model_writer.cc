// Model format v1 writer (ModelWriter; the reader is model_file.cc). The
// format is specified in docs/model-format.md; the tensor inventory in
// partitioner/model_config.h.
#include "lockstep/model/model_file.h"

#include <fmt/format.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "hdf5_attribute.h"
#include "hdf5_dtype.h"
#include "hdf5_error.h"
#include "hdf5_handle.h"
#include "lockstep/base/check.h"
#include "lockstep/base/quant_block.h"
#include "lockstep/model/chunk_shape.h"
#include "model_attributes.h"
#include "model_integrity.h"
#include "tokenizer_group.h"

namespace lockstep::runtime {

using partitioner::ModelConfig;
using partitioner::TensorRole;
using partitioner::TensorSpec;

struct ModelWriter::Impl {
  ~Impl() {
    Hdf5Lock lock;
    for (Tensor& tensor : tensors) tensor.dataset = H5Dataset();
    file = H5File();
  }

  struct Tensor {
    TensorSpec spec;
    DType dtype;
    H5Dataset dataset;                  // open while the tensor is incomplete
    std::vector<uint8_t> rows_written;  // one flag per row
    int64_t num_rows_written = 0;
    // The SHA-256 of the stored bytes, fed while rows arrive in order (the
    // usual case: synth and convert write row blocks top to bottom). Rows out
    // of order or written twice make Close() hash the tensor from the file.
    std::unique_ptr<Sha256Digest> hash = std::make_unique<Sha256Digest>();
    int64_t rows_hashed = 0;
    bool hash_in_order = true;
  };

  std::string path;
  ModelConfig config;
  ModelWriterOptions options;
  H5File file;
  std::vector<Tensor> tensors;  // inventory order
  std::map<std::string, size_t, std::less<>> index;
  std::vector<uint16_t> narrow;    // conversion buffer for f16/bf16
  std::vector<uint8_t> quantized;  // conversion buffer for q8_0/q4_0
  H5PropertyList transfer;         // H5Dwrite properties (WriterTransfer)
  std::optional<std::string> tokenizer_digest;
  bool closed = false;

  // The checks common to WriteRows and WriteStoredRows; the tensor's entry.
  Result<Tensor*> CheckRows(const TensorSpec& spec, int64_t row_begin, int64_t num_rows);
  // Writes rows already in the tensor's stored dtype (blocks for a quantized
  // tensor), marks them written and feeds the digest.
  Status WriteStored(Tensor& tensor, int64_t row_begin, int64_t num_rows, const void* stored);
  Result<std::string> HashFromFile(const Tensor& tensor);
};

ModelWriter::ModelWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelWriter::~ModelWriter() = default;
ModelWriter::ModelWriter(ModelWriter&&) noexcept = default;
ModelWriter& ModelWriter::operator=(ModelWriter&&) noexcept = default;

Result<ModelWriter> ModelWriter::Create(const std::string& path, const ModelConfig& config,
                                        const ModelWriterOptions& options) {
  if (Status valid = config.Validate(); !valid.ok()) {
    return valid.WithContext(fmt::format("{}: cannot write model", path));
  }
  if (options.target_chunk_bytes <= 0) {
    return InvalidArgument("{}: target_chunk_bytes must be positive, got {}", path,
                           options.target_chunk_bytes);
  }
  if (options.tokenizer) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                              CreateTokenizer(*options.tokenizer));
    if (tokenizer->vocab_size() > config.vocab_size) {
      return InvalidArgument(
          "{}: the tokenizer ({}) has {} tokens but the model's vocab_size is {}; the tokenizer "
          "does not belong to this model",
          path, options.tokenizer->source, tokenizer->vocab_size(), config.vocab_size);
    }
  }
  Hdf5Lock lock;
  SilenceHdf5Errors();
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->config = config;
  impl->options = options;

  // No modification times anywhere (the file creation property list carries
  // the setting for the root group): same inputs, same bytes.
  H5PropertyList fcpl(H5Pcreate(H5P_FILE_CREATE));
  H5Pset_obj_track_times(fcpl.get(), 0);
  // The HDF5 1.10 object format: checksummed metadata (model_integrity.h).
  H5PropertyList fapl = WriterFileAccess();
  impl->file = H5File(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()));
  if (!impl->file.valid()) {
    return Hdf5Error(StatusCode::kIo, fmt::format("{}: cannot create model file", path));
  }
  hid_t file = impl->file.get();
  LOCKSTEP_RETURN_IF_ERROR(WriteConfig(file, path, config, options.dtype));

  // The whole layout is fixed here, in inventory order: groups, datasets, and
  // (allocation time EARLY) every chunk's place in the file. Writing tensors
  // later only fills chunks, so the bytes do not depend on the write order.
  H5PropertyList gcpl(H5Pcreate(H5P_GROUP_CREATE));
  H5Pset_obj_track_times(gcpl.get(), 0);
  auto ensure_parents = [&](std::string_view tensor_path) -> Status {
    size_t pos = 0;
    while ((pos = tensor_path.find('/', pos + 1)) != std::string_view::npos) {
      std::string group(tensor_path.substr(0, pos));
      if (H5Lexists(file, group.c_str(), H5P_DEFAULT) > 0) continue;
      H5Group created(H5Gcreate2(file, group.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT));
      if (!created.valid()) {
        return Hdf5Error(StatusCode::kIo, fmt::format("{}: cannot create group '{}'", path, group));
      }
    }
    return Status::Ok();
  };
  for (const TensorSpec& spec : partitioner::ModelTensors(config)) {
    LOCKSTEP_RETURN_IF_ERROR(ensure_parents(spec.path));
    const DType dtype = partitioner::IsF32Tensor(spec.role) ? DType::kF32 : options.dtype;
    H5Datatype type = MakeHdf5Type(dtype);
    // A quantized matrix is a [rows, cols / 32] dataset of blocks.
    std::vector<int64_t> stored = spec.shape;
    if (DTypeIsQuantized(dtype)) {
      if (stored[1] % kQuantBlockSize != 0) {
        return InvalidArgument(
            "{}: tensor '{}' has rows of {} values, not whole {}-value blocks: the model cannot "
            "be stored as {} (its hidden_size, intermediate_size and heads * head_dim must be "
            "multiples of {})",
            path, spec.path, stored[1], kQuantBlockSize, DTypeName(dtype), kQuantBlockSize);
      }
      stored[1] /= kQuantBlockSize;
    }
    std::vector<hsize_t> dims(stored.begin(), stored.end());
    H5Dataspace space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
    std::vector<int64_t> chunk64 = ModelChunkShape(
        stored, static_cast<size_t>(DTypeBlockBytes(dtype)), options.target_chunk_bytes);
    std::vector<hsize_t> chunk(chunk64.begin(), chunk64.end());
    // Chunked, Fletcher32 on every chunk, every chunk allocated now.
    H5PropertyList dcpl = TensorCreationProperties(chunk);
    H5Dataset dataset(H5Dcreate2(file, spec.path.c_str(), type.get(), space.get(), H5P_DEFAULT,
                                 dcpl.get(), H5P_DEFAULT));
    if (!dataset.valid()) {
      return Hdf5Error(StatusCode::kIo,
                       fmt::format("{}: cannot create tensor '{}'", path, spec.path));
    }
    LOCKSTEP_RETURN_IF_ERROR(CreateDigestAttribute(dataset.get(), path, spec.path));
    impl->index.emplace(spec.path, impl->tensors.size());
    Impl::Tensor tensor{spec, dtype, std::move(dataset), {}};
    tensor.rows_written.assign(static_cast<size_t>(spec.shape[0]), 0);
    impl->tensors.push_back(std::move(tensor));
  }
  if (options.tokenizer) {
    LOCKSTEP_ASSIGN_OR_RETURN(impl->tokenizer_digest,
                              WriteTokenizerGroup(file, path, *options.tokenizer));
  }
  impl->transfer = WriterTransfer();
  return ModelWriter(std::move(impl));
}

Status ModelWriter::WriteTensor(const TensorSpec& spec, const float* values) {
  return WriteRows(spec, 0, spec.shape.empty() ? 0 : spec.shape[0], values);
}

Result<ModelWriter::Impl::Tensor*> ModelWriter::Impl::CheckRows(const TensorSpec& spec,
                                                                int64_t row_begin,
                                                                int64_t num_rows) {
  if (closed) return FailedPrecondition("{}: writer already closed", path);
  auto it = index.find(spec.path);
  if (it == index.end()) {
    return InvalidArgument("{}: '{}' is not a tensor of this model (see ModelTensors)", path,
                           spec.path);
  }
  Tensor& tensor = tensors[it->second];
  if (spec.shape != tensor.spec.shape) {
    return InvalidArgument("{}: tensor '{}' given with shape {}, the model's is {}", path,
                           spec.path, ShapeString(spec.shape), ShapeString(tensor.spec.shape));
  }
  const int64_t rows = tensor.spec.shape[0];
  if (row_begin < 0 || num_rows < 0 || row_begin > rows || num_rows > rows - row_begin) {
    return OutOfRange("{}: rows [{}, {}) lie outside tensor '{}' of {} rows", path, row_begin,
                      row_begin + num_rows, spec.path, rows);
  }
  return &tensor;
}

Status ModelWriter::Impl::WriteStored(Tensor& tensor, int64_t row_begin, int64_t num_rows,
                                      const void* stored) {
  const TensorSpec& spec = tensor.spec;
  const int rank = static_cast<int>(spec.shape.size());
  const int64_t cols = rank == 2 ? spec.shape[1] : 1;
  Hdf5Lock lock;
  SilenceHdf5Errors();
  if (!tensor.dataset.valid()) {  // written completely before, and written again
    tensor.dataset = H5Dataset(H5Dopen2(file.get(), spec.path.c_str(), H5P_DEFAULT));
    if (!tensor.dataset.valid()) {
      return Hdf5Error(StatusCode::kIo, fmt::format("{}: cannot open tensor '{}'", path, spec.path));
    }
  }
  H5Datatype type = MakeHdf5Type(tensor.dtype);
  H5Dataspace file_space(H5Dget_space(tensor.dataset.get()));
  hsize_t start[2] = {static_cast<hsize_t>(row_begin), 0};
  hsize_t count[2] = {static_cast<hsize_t>(num_rows),
                      static_cast<hsize_t>(cols / DTypeBlockElements(tensor.dtype))};
  H5Dataspace memory_space(H5Screate_simple(rank, count, nullptr));
  H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
  if (H5Dwrite(tensor.dataset.get(), type.get(), memory_space.get(), file_space.get(),
               transfer.get(), stored) < 0) {
    return Hdf5Error(StatusCode::kIo, fmt::format("{}: cannot write tensor '{}'", path, spec.path));
  }
  const size_t row_bytes = static_cast<size_t>(DTypeBytes(tensor.dtype, cols));
  if (tensor.hash_in_order && row_begin == tensor.rows_hashed) {
    tensor.hash->Update(stored, static_cast<size_t>(num_rows) * row_bytes);
    tensor.rows_hashed += num_rows;
  } else {
    tensor.hash_in_order = false;
  }
  for (int64_t r = row_begin; r < row_begin + num_rows; ++r) {
    if (!tensor.rows_written[static_cast<size_t>(r)]) {
      tensor.rows_written[static_cast<size_t>(r)] = 1;
      ++tensor.num_rows_written;
    }
  }
  // A complete tensor is closed now: its chunk cache is flushed and freed, so
  // memory stays bounded by one tensor however many there are.
  if (tensor.num_rows_written == spec.shape[0]) tensor.dataset = H5Dataset();
  return Status::Ok();
}

Status ModelWriter::WriteRows(const TensorSpec& spec, int64_t row_begin, int64_t num_rows,
                              const float* values) {
  Impl& impl = *impl_;
  LOCKSTEP_ASSIGN_OR_RETURN(Impl::Tensor * tensor, impl.CheckRows(spec, row_begin, num_rows));
  if (num_rows == 0) return Status::Ok();
  const int64_t cols = tensor->spec.shape.size() == 2 ? tensor->spec.shape[1] : 1;
  const DType dtype = tensor->dtype;
  // Narrowed or quantized in blocks of rows to bound the extra memory.
  const int64_t block_rows =
      dtype == DType::kF32 ? num_rows : std::max<int64_t>(1, (int64_t{4} << 20) / cols);
  for (int64_t r = 0; r < num_rows; r += block_rows) {
    const int64_t n = std::min(block_rows, num_rows - r);
    const float* src = values + r * cols;
    const void* buffer = src;
    if (DTypeIsQuantized(dtype)) {
      // A non-finite value would make a block's scale Inf or NaN.
      const int64_t bad = FirstNonFinite(src, n * cols);
      if (bad >= 0) {
        return InvalidArgument(
            "{}: tensor '{}' has a non-finite value ({}) at row {}, column {}: it cannot be "
            "quantized to {}",
            impl.path, spec.path, src[bad], row_begin + r + bad / cols, bad % cols,
            DTypeName(dtype));
      }
      impl.quantized.resize(static_cast<size_t>(DTypeBytes(dtype, n * cols)));
      uint8_t* dst = impl.quantized.data();
      const int64_t row_bytes = DTypeBytes(dtype, cols);
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, n), [&](const tbb::blocked_range<int64_t>& range) {
        for (int64_t i = range.begin(); i != range.end(); ++i) {
          QuantizeRow(dtype, src + i * cols, cols, dst + i * row_bytes);
        }
      });
      buffer = dst;
    } else if (dtype != DType::kF32) {
      impl.narrow.resize(static_cast<size_t>(n * cols));
      uint16_t* dst = impl.narrow.data();
      const bool bf16 = dtype == DType::kBF16;
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, n * cols, 65536),
                        [&](const tbb::blocked_range<int64_t>& range) {
                          for (int64_t i = range.begin(); i != range.end(); ++i) {
                            dst[i] = bf16 ? F32ToBf16(src[i]) : F32ToF16(src[i]);
                          }
                        });
      buffer = dst;
    }
    LOCKSTEP_RETURN_IF_ERROR(impl.WriteStored(*tensor, row_begin + r, n, buffer));
  }
  return Status::Ok();
}

Status ModelWriter::WriteStoredRows(const TensorSpec& spec, int64_t row_begin, int64_t num_rows,
                                    const void* data) {
  Impl& impl = *impl_;
  LOCKSTEP_ASSIGN_OR_RETURN(Impl::Tensor * tensor, impl.CheckRows(spec, row_begin, num_rows));
  if (num_rows == 0) return Status::Ok();
  if (DTypeIsQuantized(tensor->dtype)) {
    const int64_t blocks_per_row = tensor->spec.shape[1] / kQuantBlockSize;
    const int64_t bad = FirstNonFiniteScale(tensor->dtype, data, num_rows * blocks_per_row);
    if (bad >= 0) {
      return InvalidArgument(
          "{}: tensor '{}' has a non-finite scale in block {} of row {}: a {} block must have a "
          "finite scale",
          impl.path, spec.path, bad % blocks_per_row, row_begin + bad / blocks_per_row,
          DTypeName(tensor->dtype));
    }
  }
  return impl.WriteStored(*tensor, row_begin, num_rows, data);
}

// The digest of a tensor whose rows did not all arrive in order: read back
// from the file in blocks of rows (bounded memory), verifying its chunk
// checksums on the way.
Result<std::string> ModelWriter::Impl::HashFromFile(const Tensor& tensor) {
  const TensorSpec& spec = tensor.spec;
  const int rank = static_cast<int>(spec.shape.size());
  const int64_t cols = rank == 2 ? spec.shape[1] : 1;
  const size_t row_bytes = static_cast<size_t>(DTypeBytes(tensor.dtype, cols));
  const int64_t block_rows =
      std::max<int64_t>(1, static_cast<int64_t>((size_t{16} << 20) / std::max<size_t>(row_bytes, 1)));
  H5Dataset dataset(H5Dopen2(file.get(), spec.path.c_str(), H5P_DEFAULT));
  if (!dataset.valid()) {
    return Hdf5Error(StatusCode::kIo, fmt::format("{}: cannot open tensor '{}'", path, spec.path));
  }
  H5Datatype type = MakeHdf5Type(tensor.dtype);
  H5Dataspace file_space(H5Dget_space(dataset.get()));
  std::vector<uint8_t> buffer;
  Sha256Digest hash;
  for (int64_t r = 0; r < spec.shape[0]; r += block_rows) {
    const int64_t n = std::min(block_rows, spec.shape[0] - r);
    buffer.resize(static_cast<size_t>(n) * row_bytes);
    hsize_t start[2] = {static_cast<hsize_t>(r), 0};
    hsize_t count[2] = {static_cast<hsize_t>(n),
                        static_cast<hsize_t>(cols / DTypeBlockElements(tensor.dtype))};
    H5Dataspace memory_space(H5Screate_simple(rank, count, nullptr));
    H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
    if (H5Dread(dataset.get(), type.get(), memory_space.get(), file_space.get(), H5P_DEFAULT,
                buffer.data()) < 0) {
      return Hdf5Error(StatusCode::kIo,
                       fmt::format("{}: cannot read back tensor '{}'", path, spec.path));
    }
    hash.Update(buffer.data(), buffer.size());
  }
  return hash.FinishHex();
}

Status ModelWriter::Close() {
  Impl& impl = *impl_;
  if (impl.closed) return FailedPrecondition("{}: writer already closed", impl.path);
  impl.closed = true;
  Hdf5Lock lock;
  SilenceHdf5Errors();
  Status status;
  for (const Impl::Tensor& tensor : impl.tensors) {
    if (tensor.num_rows_written == tensor.spec.shape[0]) continue;
    auto first = std::find(tensor.rows_written.begin(), tensor.rows_written.end(), 0);
    status = FailedPrecondition(
        "{}: tensor '{}' was not completely written ({} of {} rows, first missing row {}); the "
        "file is not a valid model",
        impl.path, tensor.spec.path, tensor.num_rows_written, tensor.spec.shape[0],
        first - tensor.rows_written.begin());
    break;
  }
  // The manifest: every tensor's digest as its attribute, and the digest of
  // the list as a root attribute (model_integrity.h).
  std::vector<std::pair<std::string, std::string>> manifest;
  for (Impl::Tensor& tensor : impl.tensors) {
    if (!status.ok()) break;
    tensor.dataset = H5Dataset();
    std::string digest;
    if (tensor.hash_in_order && tensor.rows_hashed == tensor.spec.shape[0]) {
      digest = tensor.hash->FinishHex();
    } else {
      Result<std::string> from_file = impl.HashFromFile(tensor);
      status = from_file.status();
      if (!status.ok()) break;
      digest = std::move(from_file).value();
    }
    H5Dataset dataset(H5Dopen2(impl.file.get(), tensor.spec.path.c_str(), H5P_DEFAULT));
    status = dataset.valid()
                 ? WriteDigestAttribute(dataset.get(), impl.path, tensor.spec.path, digest)
                 : Hdf5Error(StatusCode::kIo, fmt::format("{}: cannot open tensor '{}'", impl.path,
                                                          tensor.spec.path));
    manifest.push_back({tensor.spec.path, std::move(digest)});
  }
  if (status.ok() && impl.tokenizer_digest) {
    manifest.push_back({kTokenizerDataset, *impl.tokenizer_digest});
  }
  // The format name and version go last: a file without them is not a model,
  // which is what an interrupted writer leaves behind.
  if (status.ok()) {
    H5Group root(H5Gopen2(impl.file.get(), "/", H5P_DEFAULT));
    const std::string text = ManifestText(manifest);
    status = WriteStringAttribute(root.get(), impl.path, kManifestAttribute,
                                  DigestHex(text.data(), text.size()));
    if (status.ok()) status = WriteStringAttribute(root.get(), impl.path, "format", kFormatName);
    if (status.ok()) {
      status = WriteIntAttribute(root.get(), impl.path, "format_version",
                                 ModelFormatVersionFor(impl.config));
    }
  }
  for (Impl::Tensor& tensor : impl.tensors) tensor.dataset = H5Dataset();
  if (H5Fclose(impl.file.release()) < 0 && status.ok()) {
    status = Hdf5Error(StatusCode::kIo, fmt::format("{}: cannot close model file", impl.path));
  }
  return status;
}

}  // namespace lockstep::runtime
