// Model format v1 reader (ModelFile; the writer is model_writer.cc). The
// format is specified in docs/model-format.md; the tensor inventory in
// partitioner/model_config.h.
#include "lockstep/model/model_file.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <span>

#include "hdf5_attribute.h"
#include "hdf5_dtype.h"
#include "hdf5_error.h"
#include "hdf5_handle.h"
#include "lockstep/base/check.h"
#include "lockstep/model/chunk_shape.h"
#include "model_attributes.h"
#include "read_counter.h"
#include "tokenizer_group.h"

namespace lockstep::runtime {
namespace {

using partitioner::ModelConfig;
using partitioner::TensorRole;
using partitioner::TensorSpec;

// The config fields that determine a tensor's shape, for error messages.
std::string ShapeFormula(const TensorSpec& spec) {
  const std::string_view path = spec.path;
  auto ends_with = [&](std::string_view suffix) { return path.ends_with(suffix); };
  if (spec.role == TensorRole::kEmbedding || spec.role == TensorRole::kLmHead) {
    return "[vocab_size, hidden_size]";
  }
  if (spec.role == TensorRole::kNorm) return "[hidden_size]";
  if (ends_with("/wq")) return "[num_attention_heads * head_dim, hidden_size]";
  if (ends_with("/wk") || ends_with("/wv")) return "[num_key_value_heads * head_dim, hidden_size]";
  if (ends_with("/wo")) return "[hidden_size, num_attention_heads * head_dim]";
  if (ends_with("/w_down")) return "[hidden_size, intermediate_size]";
  return "[intermediate_size, hidden_size]";  // w_gate, w_up
}

// H5Lexists needs every intermediate group to exist; check the path one
// component at a time.
bool PathExists(hid_t file, std::string_view path) {
  size_t pos = 0;
  while (true) {
    pos = path.find('/', pos + 1);
    std::string prefix(path.substr(0, pos));
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (pos == std::string_view::npos) return true;
  }
}

// Checks one dataset of the inventory and describes it.
Result<TensorInfo> InspectTensor(hid_t file, std::string_view file_name, const TensorSpec& spec) {
  const std::string expected = fmt::format("{} = {}", ShapeString(spec.shape), ShapeFormula(spec));
  if (!PathExists(file, spec.path)) {
    return NotFound("{}: tensor '{}' is missing (expected a dataset of shape {})", file_name,
                    spec.path, expected);
  }
  H5Dataset dataset(H5Dopen2(file, spec.path.c_str(), H5P_DEFAULT));
  if (!dataset.valid()) {
    return Hdf5Error(StatusCode::kInvalidArgument,
                     fmt::format("{}: '{}' is not a readable dataset", file_name, spec.path));
  }
  H5Dataspace space(H5Dget_space(dataset.get()));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<int64_t> shape;
  if (rank >= 0) {
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    shape.assign(dims.begin(), dims.end());
  }
  H5Datatype type(H5Dget_type(dataset.get()));
  std::optional<DType> dtype = ClassifyHdf5Type(type.get());
  if (!dtype) {
    return InvalidArgument(
        "{}: tensor '{}' has an unsupported datatype, {}; expected f32, f16, bf16, or the q8_0 / "
        "q4_0 block compounds (little-endian, see docs/model-format.md)",
        file_name, spec.path, DescribeHdf5Type(type.get()));
  }
  // A quantized matrix is stored as [rows, cols / 32] blocks.
  std::vector<int64_t> stored = spec.shape;
  if (DTypeIsQuantized(*dtype)) {
    if (spec.shape.size() != 2) {
      return InvalidArgument("{}: tensor '{}' is {}, but only weight matrices can be quantized",
                             file_name, spec.path, DTypeName(*dtype));
    }
    if (spec.shape[1] % kQuantBlockSize != 0) {
      return InvalidArgument(
          "{}: tensor '{}' is {}, but its rows of {} = {} values are not whole blocks of {}",
          file_name, spec.path, DTypeName(*dtype), ShapeFormula(spec), spec.shape[1],
          kQuantBlockSize);
    }
    stored[1] = spec.shape[1] / kQuantBlockSize;
    if (shape.size() == 2 && shape[0] == stored[0] && shape[1] != stored[1]) {
      return InvalidArgument(
          "{}: tensor '{}' is {} with {} blocks per row, but the config attributes imply rows "
          "of {} values = {} blocks of {} ({}); the block count contradicts the shape",
          file_name, spec.path, DTypeName(*dtype), shape[1], spec.shape[1], stored[1],
          kQuantBlockSize, expected);
    }
  }
  if (shape != stored) {
    return InvalidArgument(
        "{}: tensor '{}' has shape {}{}, but the config attributes imply {}; the config "
        "contradicts the tensors",
        file_name, spec.path, ShapeString(shape),
        DTypeIsQuantized(*dtype) ? " (blocks of 32)" : "", expected);
  }
  TensorInfo info;
  info.path = spec.path;
  info.role = spec.role;
  info.layer = spec.layer;
  info.dtype = *dtype;
  info.shape = spec.shape;
  H5PropertyList dcpl(H5Dget_create_plist(dataset.get()));
  if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
    std::vector<hsize_t> chunk(shape.size());
    H5Pget_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
    info.chunk.assign(chunk.begin(), chunk.end());
    if (DTypeIsQuantized(*dtype)) info.chunk[1] *= kQuantBlockSize;  // in values, like shape
  }
  return info;
}

// The checks that need no HDF5 open: the file exists, is regular and has the
// HDF5 signature (H5Fis_hdf5 looks for the signature only; it tells "not
// HDF5" apart from "HDF5 but damaged", which H5Fopen reports).
Status CheckFileBeforeOpen(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    const int error = errno;
    if (error == ENOENT) return NotFound("{}: model file not found", path);
    return IoError("{}: cannot open model file: {}", path, std::strerror(error));
  }
  if (!S_ISREG(st.st_mode)) return InvalidArgument("{}: not a regular file", path);
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  H5Eclear2(H5E_DEFAULT);
  if (is_hdf5 == 0) {
    return InvalidArgument("{}: not an HDF5 file (no HDF5 signature); expected a lockstep model",
                           path);
  }
  return Status::Ok();
}

// The whole of Open() but the byte counting.
Status OpenAndValidate(const std::string& path, const ModelFileOptions& options, H5File* file,
                       ModelConfig* config, DType* weight_dtype, std::vector<TensorInfo>* tensors,
                       bool* has_tokenizer) {
  H5PropertyList fapl(H5Pcreate(H5P_FILE_ACCESS));
  if (options.comm != MPI_COMM_NULL) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      return FailedPrecondition("{}: ModelFileOptions.comm is set but MPI is not initialized",
                                path);
    }
    // H5Fopen is collective: if the file is missing on one rank only (no
    // shared file system), the others must not wait for it in H5Fopen.
    Status local = CheckFileBeforeOpen(path);
    int local_ok = local.ok() ? 1 : 0, all_ok = 0;
    MPI_Allreduce(&local_ok, &all_ok, 1, MPI_INT, MPI_MIN, options.comm);
    if (!local.ok()) return local;
    if (!all_ok) {
      return FailedPrecondition("{}: another rank of the communicator cannot open this file", path);
    }
    if (H5Pset_fapl_mpio(fapl.get(), options.comm, MPI_INFO_NULL) < 0) {
      return Hdf5Error(StatusCode::kIo, fmt::format("{}: cannot set up MPI-IO", path));
    }
  } else {
    LOCKSTEP_RETURN_IF_ERROR(CheckFileBeforeOpen(path));
  }
  H5Eclear2(H5E_DEFAULT);
  *file = H5File(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()));
  if (!file->valid()) {
    return Hdf5Error(StatusCode::kDataLoss,
                     fmt::format("{}: damaged or truncated HDF5 file", path));
  }
  H5Group root(H5Gopen2(file->get(), "/", H5P_DEFAULT));
  if (!root.valid()) {
    return Hdf5Error(StatusCode::kDataLoss, fmt::format("{}: cannot open the root group", path));
  }

  // format / format_version first: they say whether the rest is meaningful.
  if (!HasAttribute(root.get(), "format")) {
    return InvalidArgument(
        "{}: not a lockstep model: root attribute 'format' is missing (a file whose writer did "
        "not finish lacks it too)",
        path);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(std::string format, ReadStringAttribute(root.get(), path, "format"));
  if (format != kFormatName) {
    return InvalidArgument("{}: attribute 'format' is '{}', expected '{}'", path, format,
                           kFormatName);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(int64_t version, ReadIntAttribute(root.get(), path, "format_version"));
  if (version != kModelFormatVersion) {
    return InvalidArgument(
        "{}: attribute 'format_version' is {}, this lockstep reads version {}; convert the model "
        "again or use a matching lockstep",
        path, version, kModelFormatVersion);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(*config, ReadConfig(root.get(), path));
  LOCKSTEP_ASSIGN_OR_RETURN(std::string dtype_name,
                            ReadStringAttribute(root.get(), path, "weight_dtype"));
  Result<DType> declared_dtype = ParseDType(dtype_name);
  if (!declared_dtype.ok()) {
    return InvalidArgument(
        "{}: attribute 'weight_dtype' is '{}', expected f32, f16, bf16, q8_0 or q4_0", path,
        dtype_name);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(std::string rope_layout,
                            ReadStringAttribute(root.get(), path, "rope_layout"));
  if (rope_layout != kRopeLayout) {
    return InvalidArgument(
        "{}: attribute 'rope_layout' is '{}', only '{}' (Hugging Face rotate-half pairing) is "
        "supported; permute the rows of wq and wk when converting",
        path, rope_layout, kRopeLayout);
  }
  if (Status valid = config->Validate(); !valid.ok()) {
    return valid.WithContext(fmt::format("{}: invalid config attributes", path));
  }

  // Every tensor of the inventory, in file order.
  tensors->clear();
  const TensorInfo* first_matrix = nullptr;
  for (const TensorSpec& spec : partitioner::ModelTensors(*config)) {
    LOCKSTEP_ASSIGN_OR_RETURN(TensorInfo info, InspectTensor(file->get(), path, spec));
    tensors->push_back(std::move(info));
  }
  for (const TensorInfo& info : *tensors) {
    if (info.role == TensorRole::kNorm) {
      if (info.dtype != DType::kF32) {
        return InvalidArgument("{}: tensor '{}' is {}; norm weights must be f32", path, info.path,
                               DTypeName(info.dtype));
      }
      continue;
    }
    if (first_matrix == nullptr) {
      first_matrix = &info;
    } else if (info.dtype != first_matrix->dtype) {
      return InvalidArgument(
          "{}: tensor '{}' is {} but '{}' is {}: all weight matrices must have one dtype", path,
          info.path, DTypeName(info.dtype), first_matrix->path, DTypeName(first_matrix->dtype));
    }
  }
  *weight_dtype = first_matrix->dtype;
  if (*declared_dtype != *weight_dtype) {
    return InvalidArgument("{}: attribute 'weight_dtype' is {} but the weight matrices are {}",
                           path, dtype_name, DTypeName(*weight_dtype));
  }

  // Tensors the config says should not be there.
  if (config->tie_word_embeddings && PathExists(file->get(), partitioner::kLmHeadPath)) {
    return InvalidArgument(
        "{}: attribute 'tie_word_embeddings' is 1 but the file has a tensor '{}'; the config "
        "contradicts the tensors",
        path, partitioner::kLmHeadPath);
  }
  const std::string extra_layer = fmt::format("/layers/{}", config->num_layers);
  if (PathExists(file->get(), extra_layer)) {
    return InvalidArgument(
        "{}: attribute 'num_hidden_layers' is {} but the file has a group '{}'; the config "
        "contradicts the tensors",
        path, config->num_layers, extra_layer);
  }

  // The optional tokenizer: its attributes now, its bytes on demand.
  *has_tokenizer = PathExists(file->get(), kTokenizerGroup);
  if (*has_tokenizer) {
    LOCKSTEP_RETURN_IF_ERROR(ReadTokenizerAttributes(file->get(), path).status());
  }
  return Status::Ok();
}

}  // namespace

int64_t TensorInfo::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------
// ModelFile
// ---------------------------------------------------------------------------

struct ModelFile::Impl {
  ~Impl() {
    Hdf5Lock lock;
    transfer = H5PropertyList();
    file = H5File();
  }

  std::string path;
  ModelFileOptions options;
  ModelConfig config;
  DType weight_dtype = DType::kF32;
  std::vector<TensorInfo> tensors;
  std::map<std::string, size_t, std::less<>> index;  // path -> position in tensors
  H5File file;
  H5PropertyList transfer;  // dataset transfer property list for reads
  uint64_t bytes_read = 0;
  uint64_t bytes_requested = 0;
  bool has_tokenizer = false;
};

ModelFile::ModelFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelFile::~ModelFile() = default;
ModelFile::ModelFile(ModelFile&&) noexcept = default;
ModelFile& ModelFile::operator=(ModelFile&&) noexcept = default;

Result<ModelFile> ModelFile::Open(const std::string& path, const ModelFileOptions& options) {
  Hdf5Lock lock;
  SilenceHdf5Errors();
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->options = options;
  {
    ReadCounter counter(&impl->bytes_read);
    LOCKSTEP_RETURN_IF_ERROR(OpenAndValidate(path, options, &impl->file, &impl->config,
                                             &impl->weight_dtype, &impl->tensors,
                                             &impl->has_tokenizer));
  }
  for (size_t i = 0; i < impl->tensors.size(); ++i) impl->index.emplace(impl->tensors[i].path, i);
  impl->transfer = H5PropertyList(H5Pcreate(H5P_DATASET_XFER));
  if (options.comm != MPI_COMM_NULL && options.collective_reads) {
    if (H5Pset_dxpl_mpio(impl->transfer.get(), H5FD_MPIO_COLLECTIVE) < 0) {
      return Hdf5Error(StatusCode::kIo,
                       fmt::format("{}: cannot set up collective MPI-IO reads", path));
    }
  }
  return ModelFile(std::move(impl));
}

const std::string& ModelFile::path() const {
  return impl_->path;
}
const ModelConfig& ModelFile::config() const {
  return impl_->config;
}
DType ModelFile::weight_dtype() const {
  return impl_->weight_dtype;
}
const std::vector<TensorInfo>& ModelFile::tensors() const {
  return impl_->tensors;
}
uint64_t ModelFile::bytes_read() const {
  return impl_->bytes_read;
}
uint64_t ModelFile::bytes_requested() const {
  return impl_->bytes_requested;
}

bool ModelFile::has_tokenizer() const {
  return impl_->has_tokenizer;
}

Result<TokenizerData> ModelFile::ReadTokenizer() {
  if (!impl_->has_tokenizer) {
    return NotFound(
        "{}: the model file has no tokenizer (no group '{}'); embed one with `lockstep synth "
        "--tokenizer FILE` or convert the model with its tokenizer",
        impl_->path, kTokenizerGroup);
  }
  Hdf5Lock lock;
  SilenceHdf5Errors();
  ReadCounter counter(&impl_->bytes_read);
  return ReadTokenizerGroup(impl_->file.get(), impl_->path);
}

const TensorInfo* ModelFile::Find(std::string_view path) const {
  auto it = impl_->index.find(path);
  return it == impl_->index.end() ? nullptr : &impl_->tensors[it->second];
}

Status ModelFile::Read(std::string_view tensor_path, const TensorSlice& slice, void* dst) {
  const TensorInfo* info = Find(tensor_path);
  if (info == nullptr) {
    return NotFound("{}: no tensor '{}' in this model", impl_->path, tensor_path);
  }
  const int rank = static_cast<int>(info->shape.size());
  const bool rows_ok =
      0 <= slice.row_begin && slice.row_begin <= slice.row_end && slice.row_end <= info->shape[0];
  const bool cols_ok = rank == 1 || (0 <= slice.col_begin && slice.col_begin <= slice.col_end &&
                                     slice.col_end <= info->shape[1]);
  if (!rows_ok || !cols_ok) {
    std::string range = fmt::format("rows [{}, {})", slice.row_begin, slice.row_end);
    if (rank == 2) range += fmt::format(" x cols [{}, {})", slice.col_begin, slice.col_end);
    return OutOfRange("{}: slice {} lies outside tensor '{}' of shape {}", impl_->path, range,
                      info->path, ShapeString(info->shape));
  }
  const int64_t elements = slice.elements(rank);
  const bool quantized = DTypeIsQuantized(info->dtype);
  if (quantized && (slice.col_begin % kQuantBlockSize != 0 || slice.col_end % kQuantBlockSize != 0)) {
    return InvalidArgument(
        "{}: columns [{}, {}) of tensor '{}' cut its {}-value {} blocks; a split of a quantized "
        "tensor must fall on block boundaries",
        impl_->path, slice.col_begin, slice.col_end, info->path, kQuantBlockSize,
        DTypeName(info->dtype));
  }
  // Quantized tensors are stored as blocks: the hyperslab's columns count blocks.
  const int64_t unit = quantized ? kQuantBlockSize : 1;

  Hdf5Lock lock;
  SilenceHdf5Errors();
  ReadCounter counter(&impl_->bytes_read);
  H5Dataset dataset(H5Dopen2(impl_->file.get(), info->path.c_str(), H5P_DEFAULT));
  if (!dataset.valid()) {
    return Hdf5Error(StatusCode::kIo,
                     fmt::format("{}: cannot open tensor '{}'", impl_->path, info->path));
  }
  H5Dataspace file_space(H5Dget_space(dataset.get()));
  H5Dataspace memory_space;
  if (elements == 0) {
    // Still a read call: in collective mode every rank must take part.
    const hsize_t one = 1;
    memory_space = H5Dataspace(H5Screate_simple(1, &one, nullptr));
    H5Sselect_none(memory_space.get());
    H5Sselect_none(file_space.get());
  } else {
    hsize_t start[2] = {static_cast<hsize_t>(slice.row_begin),
                        static_cast<hsize_t>(slice.col_begin / unit)};
    hsize_t count[2] = {static_cast<hsize_t>(slice.row_end - slice.row_begin),
                        static_cast<hsize_t>((slice.col_end - slice.col_begin) / unit)};
    memory_space = H5Dataspace(H5Screate_simple(rank, count, nullptr));
    H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
  }
  // Memory type = file type: HDF5 copies the stored bytes, no conversion.
  H5Datatype type(H5Dget_type(dataset.get()));
  if (H5Dread(dataset.get(), type.get(), memory_space.get(), file_space.get(),
              impl_->transfer.get(), dst) < 0) {
    return Hdf5Error(StatusCode::kIo,
                     fmt::format("{}: cannot read tensor '{}'", impl_->path, info->path));
  }
  impl_->bytes_requested += static_cast<uint64_t>(DTypeBytes(info->dtype, elements));
  return Status::Ok();
}

Status ModelFile::ReadAll(std::string_view tensor_path, void* dst) {
  const TensorInfo* info = Find(tensor_path);
  if (info == nullptr) {
    return NotFound("{}: no tensor '{}' in this model", impl_->path, tensor_path);
  }
  TensorSlice all;
  all.row_end = info->shape[0];
  all.col_end = info->shape.size() == 2 ? info->shape[1] : 0;
  return Read(tensor_path, all, dst);
}

}  // namespace lockstep::runtime
