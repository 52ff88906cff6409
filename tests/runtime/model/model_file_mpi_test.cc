// Model files under parallel HDF5: every rank reads its tensor-parallel shard
// through MPI-IO, independently and collectively, and gets the same bytes as
// a plain POSIX read of that shard. Runs under mpiexec (ctest label mpi).
#include <gtest/gtest.h>
#include <mpi.h>

#include <filesystem>

#include "lockstep/model/model_file.h"
#include "lockstep/model/synth.h"

namespace lockstep::runtime {
namespace {

using partitioner::TensorRole;

int Rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}
int Size() {
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

// Set once by main() before the tests run.
std::string& ModelPathStorage() {
  static std::string* path = new std::string;
  return *path;
}
const std::string& SharedModel() {
  return ModelPathStorage();
}

}  // namespace

// Rank 0 writes the model; every rank learns its path. Collective.
std::string MakeSharedModel() {
  char buffer[4096] = {};
  if (Rank() == 0) {
    std::string dir = (std::filesystem::temp_directory_path() / "lockstep_mpi_XXXXXX").string();
    if (mkdtemp(dir.data()) == nullptr) std::abort();
    std::string file = dir + "/model.h5";
    partitioner::ModelConfig config;
    config.name = "mpi-test";
    config.vocab_size = 300;
    config.hidden_size = 256;
    config.intermediate_size = 704;
    config.num_layers = 2;
    config.num_heads = 8;
    config.num_kv_heads = 4;
    config.head_dim = 32;
    Status status = SynthesizeModel(config, DType::kBF16, 77, file);
    if (!status.ok()) std::abort();
    std::snprintf(buffer, sizeof(buffer), "%s", file.c_str());
  }
  MPI_Bcast(buffer, sizeof(buffer), MPI_CHAR, 0, MPI_COMM_WORLD);
  ModelPathStorage() = buffer;
  return buffer;
}

namespace {

// This rank's part of a tensor when the world is one tp group.
TensorSlice Shard(const TensorInfo& info, int rank, int tp) {
  TensorSlice s;
  s.row_end = info.shape[0];
  s.col_end = info.shape.size() == 2 ? info.shape[1] : 0;
  switch (info.role) {
    case TensorRole::kColumnParallel:
    case TensorRole::kLmHead:
      s.row_begin = rank * info.shape[0] / tp;
      s.row_end = (rank + 1) * info.shape[0] / tp;
      break;
    case TensorRole::kRowParallel:
    case TensorRole::kEmbedding:
      s.col_begin = rank * info.shape[1] / tp;
      s.col_end = (rank + 1) * info.shape[1] / tp;
      break;
    case TensorRole::kNorm:
      break;
  }
  return s;
}

void ExpectShardsEqualPosixReads(bool collective) {
  const std::string& path = SharedModel();
  const int rank = Rank(), tp = Size();

  // Reference: the POSIX driver, no MPI involved.
  std::vector<std::vector<uint8_t>> expected;
  {
    Result<ModelFile> posix = ModelFile::Open(path);
    ASSERT_TRUE(posix.ok()) << posix.status().ToString();
    for (const TensorInfo& info : posix->tensors()) {
      TensorSlice s = Shard(info, rank, tp);
      expected.emplace_back(s.elements(static_cast<int>(info.shape.size())) *
                            DTypeSize(info.dtype));
      ASSERT_TRUE(posix->Read(info.path, s, expected.back().data()).ok());
    }
  }

  ModelFileOptions options;
  options.comm = MPI_COMM_WORLD;
  options.collective_reads = collective;
  Result<ModelFile> file = ModelFile::Open(path, options);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  uint64_t requested = 0;
  for (size_t t = 0; t < file->tensors().size(); ++t) {
    const TensorInfo& info = file->tensors()[t];
    TensorSlice s = Shard(info, rank, tp);
    std::vector<uint8_t> got(expected[t].size(), 0xab);
    // Every rank makes the same sequence of calls (collective mode needs it).
    ASSERT_TRUE(file->Read(info.path, s, got.data()).ok()) << info.path;
    EXPECT_TRUE(got == expected[t]) << info.path << " on rank " << rank;
    requested += got.size();
  }
  // Odd ranks ask for nothing: a collective read with an empty selection
  // must not hang or fail.
  const TensorInfo& wq = file->tensors()[2];
  TensorSlice some{0, rank % 2 == 0 ? 4 : 0, 0, wq.shape[1]};
  std::vector<uint8_t> rows(static_cast<size_t>(some.elements(2)) * 2 + 1);
  EXPECT_TRUE(file->Read(wq.path, some, rows.data()).ok());
  requested += static_cast<uint64_t>(some.elements(2)) * 2;

  EXPECT_EQ(file->bytes_requested(), requested);
  EXPECT_GT(file->bytes_read(), 0u);
}

TEST(ModelFileMpiTest, IndependentReadsMatchPosix) {
  ExpectShardsEqualPosixReads(false);
}
TEST(ModelFileMpiTest, CollectiveReadsMatchPosix) {
  ExpectShardsEqualPosixReads(true);
}

TEST(ModelFileMpiTest, OpenErrorsReachEveryRank) {
  ModelFileOptions options;
  options.comm = MPI_COMM_WORLD;
  Result<ModelFile> file = ModelFile::Open(SharedModel() + ".missing", options);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), StatusCode::kNotFound);
}

// The file is missing on some ranks only (think: no shared file system).
// Every rank must get an error; none may wait in the collective H5Fopen.
TEST(ModelFileMpiTest, FileMissingOnOneRankFailsEverywhereWithoutHanging) {
  ModelFileOptions options;
  options.comm = MPI_COMM_WORLD;
  const std::string path = Rank() == 0 ? SharedModel() : SharedModel() + ".not-here";
  Result<ModelFile> file = ModelFile::Open(path, options);
  ASSERT_FALSE(file.ok());
  if (Rank() == 0) {
    EXPECT_EQ(file.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(file.status().message().find("another rank"), std::string::npos);
  } else {
    EXPECT_EQ(file.status().code(), StatusCode::kNotFound);
  }
}

}  // namespace
}  // namespace lockstep::runtime

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const std::string path = lockstep::runtime::MakeSharedModel();
  // Every rank prints its own results, so a failure on any rank is visible.
  int failed = RUN_ALL_TESTS();
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    std::error_code ignored;
    std::filesystem::remove_all(std::filesystem::path(path).parent_path(), ignored);
  }
  MPI_Finalize();
  return any_failed;
}
