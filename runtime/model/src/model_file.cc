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
#include "lockstep/base/dtype.h"
#include "lockstep/base/quant_block.h"
#include "lockstep/model/chunk_shape.h"
#include "model_attributes.h"
#include "model_integrity.h"
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
  if (ends_with("/bq")) return "[num_attention_heads * head_dim]";
  if (ends_with("/bk") || ends_with("/bv")) return "[num_key_value_heads * head_dim]";
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
    info.chunk_checksums = HasFletcher32(dcpl.get());
  }
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<std::string> digest,
                            ReadDigestAttribute(dataset.get(), file_name, spec.path));
  if (digest) info.sha256 = std::move(*digest);
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

// The manifest against the tensors' digests (model_integrity.h).
Status CheckManifest(hid_t root, const std::string& path, const std::vector<TensorInfo>& tensors,
                     const std::optional<std::string>& tokenizer_digest, bool has_tokenizer,
                     ModelIntegrity* integrity) {
  integrity->tensors = static_cast<int>(tensors.size());
  integrity->tensors_with_checksums = 0;
  for (const TensorInfo& t : tensors) {
    if (t.chunk_checksums && !t.sha256.empty()) ++integrity->tensors_with_checksums;
  }
  if (!HasAttribute(root, kManifestAttribute)) return Status::Ok();
  LOCKSTEP_ASSIGN_OR_RETURN(std::string manifest,
                            ReadStringAttribute(root, path, kManifestAttribute));
  std::vector<std::pair<std::string, std::string>> entries;
  for (const TensorInfo& t : tensors) {
    if (t.sha256.empty()) {
      return DataLoss(
          "{}: tensor '{}' has no sha256 attribute but the file has a manifest: the file is "
          "damaged or was edited",
          path, t.path);
    }
    entries.push_back({t.path, t.sha256});
  }
  if (has_tokenizer) {
    if (!tokenizer_digest) {
      return DataLoss(
          "{}: dataset '{}' has no sha256 attribute but the file has a manifest: the file is "
          "damaged or was edited",
          path, kTokenizerDataset);
    }
    entries.push_back({kTokenizerDataset, *tokenizer_digest});
  }
  const std::string text = ManifestText(entries);
  if (DigestHex(text.data(), text.size()) != manifest) {
    return DataLoss(
        "{}: the tensors' sha256 attributes do not match the root attribute '{}': the file is "
        "damaged or was edited (`lockstep verify {}` checks every tensor)",
        path, kManifestAttribute, path);
  }
  integrity->manifest_sha256 = std::move(manifest);
  return Status::Ok();
}

// The whole of Open() but the byte counting. `image` (may be null): open
// that file image in memory instead of the file at `path`.
Status OpenAndValidate(const std::string& path, const ModelFileOptions& options,
                       const std::vector<std::byte>* image, H5File* file, int* format_version,
                       ModelConfig* config, DType* weight_dtype, std::vector<TensorInfo>* tensors,
                       bool* has_tokenizer, ModelIntegrity* integrity) {
  H5PropertyList fapl(H5Pcreate(H5P_FILE_ACCESS));
  if (image != nullptr) {
    if (H5Pset_fapl_core(fapl.get(), 1 << 16, /*backing_store=*/0) < 0 ||
        H5Pset_file_image(fapl.get(), const_cast<std::byte*>(image->data()), image->size()) < 0) {
      return Hdf5Error(StatusCode::kIo, fmt::format("{}: cannot set up the file image", path));
    }
  } else if (options.comm != MPI_COMM_NULL) {
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
  if (image != nullptr && image->empty()) {
    return InvalidArgument("{}: not an HDF5 file (empty)", path);
  }
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
  if (version < 1 || version > kModelFormatVersion) {
    return InvalidArgument(
        "{}: attribute 'format_version' is {}, this lockstep reads versions 1 to {}; convert the "
        "model again or use a matching lockstep",
        path, version, kModelFormatVersion);
  }
  *format_version = static_cast<int>(version);
  LOCKSTEP_ASSIGN_OR_RETURN(*config, ReadConfig(root.get(), path));
  if (version < ModelFormatVersionFor(*config)) {
    return InvalidArgument(
        "{}: attribute 'format_version' is {}, but the file has q/k/v biases, a sliding window or "
        "rope scaling, which need format version {} (a version-{} reader would ignore them)",
        path, version, ModelFormatVersionFor(*config), version);
  }
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
    if (partitioner::IsF32Tensor(info.role)) {
      if (info.dtype != DType::kF32) {
        return InvalidArgument("{}: tensor '{}' is {}; norm weights and biases must be f32", path,
                               info.path, DTypeName(info.dtype));
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
  std::optional<std::string> tokenizer_digest;
  if (*has_tokenizer) {
    LOCKSTEP_RETURN_IF_ERROR(ReadTokenizerAttributes(file->get(), path, &tokenizer_digest).status());
  }
  return CheckManifest(root.get(), path, *tensors, tokenizer_digest, *has_tokenizer, integrity);
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
  int format_version = 1;
  ModelConfig config;
  DType weight_dtype = DType::kF32;
  std::vector<TensorInfo> tensors;
  std::map<std::string, size_t, std::less<>> index;  // path -> position in tensors
  H5File file;
  H5PropertyList transfer;  // dataset transfer property list for reads
  uint64_t bytes_read = 0;
  uint64_t bytes_requested = 0;
  bool has_tokenizer = false;
  ModelIntegrity integrity;

  // `image`: OpenImage's file image (HDF5 copies it), else null.
  static Result<ModelFile> Open(const std::string& path, const ModelFileOptions& options,
                                const std::vector<std::byte>* image);
  // Read() without the argument checks; `whole`: compare with the digest.
  Status ReadChecked(const TensorInfo& info, const TensorSlice& slice, void* dst, bool whole);
};

ModelFile::ModelFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelFile::~ModelFile() = default;
ModelFile::ModelFile(ModelFile&&) noexcept = default;
ModelFile& ModelFile::operator=(ModelFile&&) noexcept = default;

Result<ModelFile> ModelFile::Open(const std::string& path, const ModelFileOptions& options) {
  return Impl::Open(path, options, nullptr);
}

Result<ModelFile> ModelFile::OpenImage(const std::string& name, std::vector<std::byte> image) {
  return Impl::Open(name, ModelFileOptions{}, &image);
}

Result<ModelFile> ModelFile::Impl::Open(const std::string& path, const ModelFileOptions& options,
                                        const std::vector<std::byte>* image) {
  Hdf5Lock lock;
  SilenceHdf5Errors();
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->options = options;
  {
    ReadCounter counter(&impl->bytes_read);
    LOCKSTEP_RETURN_IF_ERROR(OpenAndValidate(path, options, image, &impl->file,
                                             &impl->format_version, &impl->config,
                                             &impl->weight_dtype, &impl->tensors,
                                             &impl->has_tokenizer, &impl->integrity));
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
int ModelFile::format_version() const {
  return impl_->format_version;
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
const ModelIntegrity& ModelFile::integrity() const {
  return impl_->integrity;
}

std::string ModelIntegrity::Warning(std::string_view path) const {
  if (complete()) return "";
  if (tensors_with_checksums == 0 && manifest_sha256.empty()) {
    return fmt::format(
        "{}: the file has no checksums (written by an older lockstep or another tool): damaged "
        "tensor data cannot be detected and ranks cannot check that they read the same file; "
        "`lockstep convert` and `lockstep synth` write checksummed files "
        "(docs/model-format.md, \"Checksums\")",
        path);
  }
  return fmt::format(
      "{}: only {} of {} tensors have checksums{}: damage to the others cannot be detected "
      "(docs/model-format.md, \"Checksums\")",
      path, tensors_with_checksums, tensors, manifest_sha256.empty() ? " and there is no manifest" : "");
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
  if (DTypeIsQuantized(info->dtype) && rank == 2 &&
      (slice.col_begin % kQuantBlockSize != 0 || slice.col_end % kQuantBlockSize != 0)) {
    return InvalidArgument(
        "{}: columns [{}, {}) of tensor '{}' cut its {}-value {} blocks; a split of a quantized "
        "tensor must fall on block boundaries",
        impl_->path, slice.col_begin, slice.col_end, info->path, kQuantBlockSize,
        DTypeName(info->dtype));
  }
  const bool whole = slice.row_begin == 0 && slice.row_end == info->shape[0] &&
                     (rank == 1 || (slice.col_begin == 0 && slice.col_end == info->shape[1]));
  return impl_->ReadChecked(*info, slice, dst, whole);
}

Status ModelFile::Impl::ReadChecked(const TensorInfo& info, const TensorSlice& slice, void* dst,
                                    bool whole) {
  const int rank = static_cast<int>(info.shape.size());
  const int64_t elements = slice.elements(rank);
  const bool quantized = DTypeIsQuantized(info.dtype);
  // Quantized tensors are stored as blocks: the hyperslab's columns count blocks.
  const int64_t unit = quantized ? kQuantBlockSize : 1;
  const size_t bytes = static_cast<size_t>(DTypeBytes(info.dtype, elements));
  {
    Hdf5Lock lock;
    SilenceHdf5Errors();
    ReadCounter counter(&bytes_read);
    H5Dataset dataset(H5Dopen2(file.get(), info.path.c_str(), H5P_DEFAULT));
    if (!dataset.valid()) {
      return Hdf5Error(StatusCode::kIo,
                       fmt::format("{}: cannot open tensor '{}'", path, info.path));
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
    if (H5Dread(dataset.get(), type.get(), memory_space.get(), file_space.get(), transfer.get(),
                dst) < 0) {
      if (Hdf5StackHasChecksumError()) {
        H5Eclear2(H5E_DEFAULT);
        return DataLoss(
            "{}: tensor '{}': a chunk's checksum does not match its data (Fletcher32): the file "
            "is damaged (`lockstep verify {}` lists every damaged tensor)",
            path, info.path, path);
      }
      return Hdf5Error(StatusCode::kDataLoss,
                       fmt::format("{}: cannot read tensor '{}'", path, info.path));
    }
  }
  bytes_requested += bytes;
  if (elements == 0) return Status::Ok();
  // Finite values only: a NaN or an infinity would spread through every
  // token silently.
  if (quantized) {
    const int64_t bad = FirstNonFiniteScale(info.dtype, dst, elements / kQuantBlockSize);
    if (bad >= 0) {
      const int64_t width_blocks =
          rank == 2 ? (slice.col_end - slice.col_begin) / kQuantBlockSize : elements / kQuantBlockSize;
      const float scale = F16ToF32(QuantBlockScaleBits(info.dtype, dst, bad));
      return InvalidArgument(
          "{}: tensor '{}' has a non-finite scale ({}) in block {} of row {}: the {} weights are "
          "damaged; lockstep refuses non-finite weights",
          path, info.path, scale, slice.col_begin / kQuantBlockSize + bad % width_blocks,
          slice.row_begin + bad / width_blocks, DTypeName(info.dtype));
    }
  } else {
    const int64_t bad = FindNonFinite(info.dtype, dst, elements);
    if (bad >= 0) {
      uint32_t bits = 0;
      std::memcpy(&bits, static_cast<const uint8_t*>(dst) + bad * DTypeSize(info.dtype),
                  DTypeSize(info.dtype));
      const bool nan = info.dtype == DType::kF32    ? (bits & 0x007fffffu) != 0
                       : info.dtype == DType::kF16 ? (bits & 0x03ffu) != 0
                                                   : (bits & 0x007fu) != 0;
      std::string where;
      if (rank == 1) {
        where = fmt::format("[{}]", slice.row_begin + bad);
      } else {
        const int64_t width = slice.col_end - slice.col_begin;
        where =
            fmt::format("[{}, {}]", slice.row_begin + bad / width, slice.col_begin + bad % width);
      }
      return InvalidArgument(
          "{}: tensor '{}' holds {} at {}; lockstep refuses non-finite weights (the checkpoint or "
          "its conversion is broken)",
          path, info.path, nan ? "a NaN" : "an infinity", where);
    }
  }
  if (whole && !info.sha256.empty()) {
    const std::string digest = DigestHex(dst, bytes);
    if (digest != info.sha256) {
      return DataLoss(
          "{}: tensor '{}' does not match its sha256 attribute: the file is damaged or was "
          "edited (`lockstep verify {}` lists every damaged tensor)",
          path, info.path, path);
    }
  }
  return Status::Ok();
}

Result<TensorCheck> ModelFile::VerifyTensor(std::string_view tensor_path) {
  const TensorInfo* info = Find(tensor_path);
  if (info == nullptr) {
    return NotFound("{}: no tensor '{}' in this model", impl_->path, tensor_path);
  }
  TensorCheck check;
  check.path = info->path;
  check.bytes = static_cast<uint64_t>(info->bytes());
  const int rank = static_cast<int>(info->shape.size());
  const int64_t cols = rank == 2 ? info->shape[1] : 1;
  const size_t row_bytes = static_cast<size_t>(DTypeBytes(info->dtype, cols));
  // Blocks of whole chunk rows near 64 MiB: each chunk is read once.
  int64_t block_rows = std::max<int64_t>(
      1, static_cast<int64_t>((size_t{64} << 20) / std::max<size_t>(row_bytes, 1)));
  if (!info->chunk.empty() && info->chunk[0] > 0) {
    block_rows = std::max<int64_t>(1, block_rows / info->chunk[0]) * info->chunk[0];
  }
  std::vector<uint8_t> buffer;
  Sha256Digest hash;
  for (int64_t r = 0; r < info->shape[0]; r += block_rows) {
    TensorSlice slice;
    slice.row_begin = r;
    slice.row_end = std::min(info->shape[0], r + block_rows);
    slice.col_end = rank == 2 ? cols : 0;
    buffer.resize(static_cast<size_t>(slice.row_end - r) * row_bytes);
    check.status = impl_->ReadChecked(*info, slice, buffer.data(), /*whole=*/false);
    if (!check.status.ok()) return check;
    hash.Update(buffer.data(), buffer.size());
  }
  if (!info->sha256.empty() && hash.FinishHex() != info->sha256) {
    check.status = DataLoss("{}: tensor '{}' does not match its sha256 attribute", impl_->path,
                            info->path);
  }
  return check;
}

Status ModelFile::VerifyTokenizer() {
  if (!impl_->has_tokenizer) return Status::Ok();
  return ReadTokenizer().status();
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
