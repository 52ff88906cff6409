// The model format (versions 1 and 2): reading and writing lockstep model
// files (HDF5).
//
// The format is documented in docs/model-format.md. In short: the root group
// carries the configuration as attributes (format = "lockstep-model",
// format_version, and the ModelConfig fields); an optional /tokenizer
// group holds the model's tokenizer (TokenizerData: its kind and conventions
// as attributes, the tokenizer file's bytes as the uint8 dataset
// /tokenizer/data); each tensor of
// partitioner::ModelTensors() is one chunked dataset at its path, shape
// [out][in] like torch Linear, in the file's weight dtype (f32, f16, bf16,
// or q8_0 / q4_0 blocks of 32 along each row; norms and biases are always
// f32). Chunks tile both dimensions so that a row range or a
// column range (a tensor-parallel shard) is read without reading the rest.
//
// Integrity (docs/model-format.md, "Checksums"): the writer stores every
// chunk with a Fletcher32 checksum, every tensor's SHA-256 as its attribute
// `sha256`, and the digest of that manifest as the root attribute
// `manifest_sha256`, in the HDF5 1.10 format (checksummed metadata). Reads
// verify what they can: HDF5 checks the checksum of every chunk it reads, a
// read of a whole tensor is compared with its digest, and every value read
// must be finite. VerifyTensor checks a tensor completely. Files without
// checksums (older lockstep, h5py) still open; integrity() says so.
//
// Error messages are one line and start with the file name, then name the
// tensor or attribute at fault. Codes: kNotFound (missing file, attribute or
// tensor), kInvalidArgument (not HDF5, wrong format/version/type/shape/dtype,
// a config that fails Validate() or contradicts the tensors, a NaN or
// infinite weight), kDataLoss (truncated or damaged HDF5, a chunk checksum
// or tensor digest that does not match), kIo (the file system), kOutOfRange
// (a slice outside its tensor).
//
// Thread safety: the HDF5 library is not thread-safe in Debian's parallel
// build, so every call into it -- from any ModelFile or ModelWriter -- is
// serialised by one process-wide lock. Different objects may be used from
// different threads; one object must not be used by two threads at once.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lockstep/base/dtype.h"
#include "lockstep/base/status.h"
#include "lockstep/partitioner/model_config.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime {

// The newest model format version this lockstep reads; it reads every
// version from 1 on. A file is written with the lowest version that can
// express its config: 1, or 2 for q/k/v biases, a sliding window or rope
// scaling (docs/model-format.md, "Versioning").
inline constexpr int kModelFormatVersion = 2;

struct TensorInfo {
  std::string path;  // "/layers/0/attn/wq"
  partitioner::TensorRole role;
  int layer = -1;
  DType dtype = DType::kF32;   // as stored
  // [rows][cols] or [n], in values (a quantized dataset is [rows][cols / 32]
  // blocks; shape and chunk here count values all the same).
  std::vector<int64_t> shape;
  std::vector<int64_t> chunk;  // HDF5 chunk shape
  bool chunk_checksums = false;  // chunks carry Fletcher32 checksums
  std::string sha256;            // the `sha256` attribute; empty when absent
  int64_t elements() const;
  int64_t bytes() const { return DTypeBytes(dtype, elements()); }
};

// A rectangular part of a tensor: rows [row_begin, row_end) and columns
// [col_begin, col_end). For a 1-D tensor only the row range is used.
struct TensorSlice {
  int64_t row_begin = 0, row_end = 0;
  int64_t col_begin = 0, col_end = 0;
  int64_t elements(int rank) const {
    return rank == 1 ? row_end - row_begin : (row_end - row_begin) * (col_end - col_begin);
  }
};

struct ModelFileOptions {
  // With a communicator other than MPI_COMM_NULL, the file is opened with the
  // MPI-IO driver of parallel HDF5 and, with collective_reads, reads are
  // collective: every rank of the communicator must then make the same
  // sequence of Read calls. MPI_COMM_NULL: plain POSIX reads, no MPI needed.
  MPI_Comm comm = MPI_COMM_NULL;
  bool collective_reads = false;
};

// What a file carries to detect damage (docs/model-format.md, "Checksums").
struct ModelIntegrity {
  int tensors = 0;                  // of the inventory
  int tensors_with_checksums = 0;   // chunk checksums and a digest
  std::string manifest_sha256;      // the root attribute; empty when absent
  bool complete() const { return tensors_with_checksums == tensors && !manifest_sha256.empty(); }
  // The one warning line for a file that is not complete(), e.g.
  // "model.h5: no checksums (...)"; empty when complete().
  std::string Warning(std::string_view path) const;
};

// What VerifyTensor found.
struct TensorCheck {
  std::string path;
  uint64_t bytes = 0;
  Status status;  // OK, or what is wrong with the tensor (one line)
};

class ModelFile {
 public:
  ~ModelFile();
  ModelFile(ModelFile&&) noexcept;
  ModelFile& operator=(ModelFile&&) noexcept;

  // Opens `path` and checks, without reading tensor data: that it is HDF5, the
  // format name and version, the config attributes (ModelConfig::Validate),
  // and that every tensor of the inventory exists with the shape the config
  // implies and a supported dtype (norms f32, all weights one dtype, equal
  // to the weight_dtype attribute); also that the file has no lm_head when
  // tied and no layer beyond num_hidden_layers. Other datasets are ignored.
  // With options.comm set this is collective over that communicator.
  // Also checks the manifest (when present) against the tensors' digests:
  // a file whose manifest does not match them is damaged (kDataLoss).
  static Result<ModelFile> Open(const std::string& path, const ModelFileOptions& options = {});
  // The same checks on a file image in memory (HDF5's core driver; no
  // MPI): for tests and the fuzzer. `name` stands for the file in messages.
  static Result<ModelFile> OpenImage(const std::string& name, std::vector<std::byte> image);

  const std::string& path() const;
  int format_version() const;  // the file's format_version (1 or 2)
  const partitioner::ModelConfig& config() const;
  DType weight_dtype() const;  // dtype of the matrices
  const std::vector<TensorInfo>& tensors() const;
  const TensorInfo* Find(std::string_view path) const;  // nullptr if absent
  const ModelIntegrity& integrity() const;

  // Whether the file carries a tokenizer (the optional /tokenizer group,
  // whose attributes Open checked), and the tokenizer itself (read from the
  // file on each call; NotFound when there is none). Not collective: any
  // rank may call it alone.
  bool has_tokenizer() const;
  Result<TokenizerData> ReadTokenizer();

  // Reads a slice of a tensor into `dst`, in the stored dtype, row-major and
  // tightly packed ((row_end-row_begin) x (col_end-col_begin) elements;
  // DTypeBytes of that). Checks that the slice lies inside the tensor, and
  // for a quantized tensor that its columns fall on block boundaries
  // (InvalidArgument naming the tensor otherwise). An empty slice reads
  // nothing (dst may be null) but still takes part in a collective read.
  // Verifies while reading: the checksum of every chunk read (kDataLoss),
  // the tensor's digest when the slice is the whole tensor (kDataLoss), and
  // that every value is finite (kInvalidArgument naming the element).
  Status Read(std::string_view tensor_path, const TensorSlice& slice, void* dst);
  // The whole tensor.
  Status ReadAll(std::string_view tensor_path, void* dst);

  // Reads a whole tensor in blocks of rows (memory bounded by one block) and
  // checks all of it: chunk checksums, finite values and its digest. The
  // result's status is OK or names what is wrong; the returned Status is an
  // error only when the tensor is unknown. Not collective.
  Result<TensorCheck> VerifyTensor(std::string_view tensor_path);
  // The tokenizer's data against its digest (OK when there is none).
  Status VerifyTokenizer();

  // Bytes this process read from the file system for this file so far
  // (measured at the file-driver level, including HDF5 metadata and whole
  // chunks touched by a partial selection), and the bytes of the selections
  // requested. Used to prove that a rank reads only its own shards.
  // Measured as the growth of the calling thread's `rchar` counter
  // (/proc/thread-self/io) across Open and each Read: the bytes the read
  // system calls returned, page-cache hits included. Zero where /proc is
  // absent. docs/model-format.md ("Measuring reads") gives the limits.
  uint64_t bytes_read() const;
  uint64_t bytes_requested() const;

 private:
  struct Impl;
  explicit ModelFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct ModelWriterOptions {
  // For the matrices; norms are always f32. Quantized dtypes need every
  // matrix row to be whole blocks of 32 (Create checks).
  DType dtype = DType::kF32;
  // Target chunk size in bytes; chunk shapes tile rows and columns so that
  // power-of-two tensor-parallel shards up to 8 fall on chunk boundaries
  // (docs/model-format.md, "Chunking"). A chunk is at most this size.
  int64_t target_chunk_bytes = 1 << 20;
  // The model's tokenizer, stored in the /tokenizer group when set. Create
  // checks that it builds (CreateTokenizer) and that its ids fit the
  // vocabulary: tokenizer vocab_size() <= config.vocab_size (embedding rows
  // past the tokenizer's ids are padding, as in Qwen checkpoints).
  std::optional<TokenizerData> tokenizer = std::nullopt;
};

// Writes a model file tensor by tensor (memory bounded by one tensor, or by
// one row block with WriteRows).
//
// Create() lays out the whole file: attributes, groups and every dataset in
// inventory order, with all chunks allocated. Writes then only fill chunks,
// so the bytes of the file depend on the config, dtype, chunk target and
// values alone -- not on the order or the row blocks in which tensors are
// written, nor on the time (no timestamps are stored). The attributes
// `format` and `format_version` are written by Close(), last, so a file
// whose writer did not finish is refused by ModelFile::Open.
class ModelWriter {
 public:
  ~ModelWriter();
  ModelWriter(ModelWriter&&) noexcept;
  ModelWriter& operator=(ModelWriter&&) noexcept;

  // Creates (truncates) `path` and writes the config attributes.
  static Result<ModelWriter> Create(const std::string& path, const partitioner::ModelConfig& config,
                                    const ModelWriterOptions& options);

  // Writes a whole tensor given as f32 values; converts to the file dtype
  // (round to nearest even, base/dtype.h; q8_0 / q4_0 by ggml's reference
  // quantizer, base/quant_block.h, which needs finite values: a NaN or Inf
  // is InvalidArgument naming the tensor, row and column). `spec` must be
  // one of ModelTensors(config) (path and shape are checked).
  Status WriteTensor(const partitioner::TensorSpec& spec, const float* values);
  // Writes rows [row_begin, row_begin + num_rows) of a tensor (f32 values,
  // row-major). Rows may come in any order; writing a row twice overwrites.
  Status WriteRows(const partitioner::TensorSpec& spec, int64_t row_begin, int64_t num_rows,
                   const float* values);
  // Writes rows given in the tensor's stored dtype (row-major; for q8_0 /
  // q4_0: rows of blocks, copied as they are, every scale must be finite):
  // for writers that produce stored values themselves. Every write, through
  // either call, goes into the tensor's chunk checksums and digest
  // (docs/model-format.md, "Checksums").
  Status WriteStoredRows(const partitioner::TensorSpec& spec, int64_t row_begin,
                         int64_t num_rows, const void* stored);

  // Checks every tensor of the inventory was written completely, writes the
  // digests (each tensor's `sha256`, the root `manifest_sha256`) and the
  // format attributes, flushes and closes (also on error). The file is not a
  // valid model until Close() returns OK. Destroying a writer without
  // Close() closes the file, leaving it invalid.
  Status Close();

 private:
  struct Impl;
  explicit ModelWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep::runtime
