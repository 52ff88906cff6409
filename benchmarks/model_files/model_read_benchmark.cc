// Reading speed of a whole model file: the POSIX (sec2) driver against
// parallel HDF5's MPI-IO driver, independent and collective.
//
//   model_read_benchmark MODEL.h5 [REPEATS [OTHER.h5]]            one process
//   mpiexec -n 2 model_read_benchmark MODEL.h5 [REPEATS [OTHER.h5]]  each rank reads its
//                                                                   tp = n shard of every tensor
//
// With OTHER.h5 (the same model in another layout, e.g. without checksums:
// benchmarks/model_files/checksum_cost.sh), every mode reads both files in
// alternating passes, so that both see the same machine load, and the ratio
// column is relative to MODEL.h5's POSIX row.
//
// Every mode reads the same bytes (rank r's tensor-parallel shard of every
// tensor, tp = number of ranks; the whole model on one rank) into one reused
// buffer. The table gives, per mode, the best of REPEATS (default 3) passes:
// seconds, MB/s summed over the ranks, bytes measured by the driver-level
// counter (ModelFile::bytes_read) over the bytes asked for, and the speed
// ratio to the POSIX anchor measured in the same run. The file is read
// through the page cache: after the first pass it is usually cached, so this
// measures HDF5 + driver overhead and memory copies, not the disk.
#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "lockstep/model/model_file.h"

namespace {

using lockstep::partitioner::TensorRole;
using lockstep::runtime::ModelFile;
using lockstep::runtime::ModelFileOptions;
using lockstep::runtime::TensorInfo;
using lockstep::runtime::TensorSlice;

TensorSlice Shard(const TensorInfo& info, int rank, int tp) {
  TensorSlice s;
  s.row_end = info.shape[0];
  s.col_end = info.shape.size() == 2 ? info.shape[1] : 0;
  if (info.role == TensorRole::kColumnParallel || info.role == TensorRole::kLmHead) {
    s.row_begin = rank * info.shape[0] / tp;
    s.row_end = (rank + 1) * info.shape[0] / tp;
  } else if (info.role == TensorRole::kRowParallel || info.role == TensorRole::kEmbedding) {
    s.col_begin = rank * info.shape[1] / tp;
    s.col_end = (rank + 1) * info.shape[1] / tp;
  }
  return s;
}

struct Pass {
  double seconds = 0;
  uint64_t bytes_read = 0, bytes_requested = 0;
};

// One pass over the model; false (after printing why) on error.
bool ReadModel(const std::string& path, const ModelFileOptions& options, int rank, int tp,
               std::vector<uint8_t>* buffer, Pass* pass) {
  MPI_Barrier(MPI_COMM_WORLD);
  const auto start = std::chrono::steady_clock::now();
  auto file = ModelFile::Open(path, options);
  if (!file.ok()) {
    std::fprintf(stderr, "model_read_benchmark: %s\n", file.status().message().c_str());
    return false;
  }
  for (const TensorInfo& info : file->tensors()) {
    TensorSlice s = Shard(info, rank, tp);
    const size_t bytes = static_cast<size_t>(
        lockstep::DTypeBytes(info.dtype, s.elements(static_cast<int>(info.shape.size()))));
    if (buffer->size() < bytes) buffer->resize(bytes);
    lockstep::Status status = file->Read(info.path, s, buffer->data());
    if (!status.ok()) {
      std::fprintf(stderr, "model_read_benchmark: %s\n", status.message().c_str());
      return false;
    }
  }
  pass->bytes_read = file->bytes_read();
  pass->bytes_requested = file->bytes_requested();
  MPI_Barrier(MPI_COMM_WORLD);  // the slowest rank sets the time
  pass->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc < 2) {
    if (rank == 0) std::fprintf(stderr, "usage: model_read_benchmark MODEL.h5 [REPEATS]\n");
    MPI_Finalize();
    return 2;
  }
  std::vector<std::string> paths = {argv[1]};
  const int repeats = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
  if (argc > 3) paths.push_back(argv[3]);

  struct Mode {
    const char* name;
    ModelFileOptions options;
  };
  const Mode modes[] = {
      {"posix (sec2)", {MPI_COMM_NULL, false}},
      {"mpi-io independent", {MPI_COMM_WORLD, false}},
      {"mpi-io collective", {MPI_COMM_WORLD, true}},
  };
  std::vector<uint8_t> buffer;
  if (rank == 0) {
    for (size_t f = 0; f < paths.size(); ++f) {
      std::printf("model %s%s, %d rank(s) (tp = %d shards), best of %d passes\n",
                  paths.size() > 1 ? (f == 0 ? "A = " : "B = ") : "", paths[f].c_str(), size,
                  size, repeats);
    }
    std::printf("%-22s %10s %10s %14s %12s %8s\n", "mode", "seconds", "MB/s", "read/asked",
                "MB asked", "ratio");
  }
  double anchor = 0;
  int exit_code = 0;
  for (const Mode& mode : modes) {
    std::vector<Pass> best(paths.size());
    for (Pass& b : best) b.seconds = 1e30;
    for (int r = 0; r < repeats && exit_code == 0; ++r) {
      for (size_t f = 0; f < paths.size(); ++f) {  // alternating: the same load for both
        Pass pass;
        if (!ReadModel(paths[f], mode.options, rank, size, &buffer, &pass)) {
          exit_code = 1;
          break;
        }
        if (pass.seconds < best[f].seconds) best[f] = pass;
      }
    }
    if (exit_code != 0) break;
    for (size_t f = 0; f < paths.size(); ++f) {
      uint64_t totals[2] = {best[f].bytes_read, best[f].bytes_requested}, sums[2] = {0, 0};
      MPI_Reduce(totals, sums, 2, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
      const double mb_per_s = sums[1] / 1e6 / best[f].seconds;
      if (anchor == 0) anchor = mb_per_s;
      if (rank == 0) {
        const std::string name =
            paths.size() > 1 ? fmt::format("{} {}", mode.name, f == 0 ? "A" : "B") : mode.name;
        std::printf("%-22s %10.3f %10.0f %14.4f %12.1f %8.2f\n", name.c_str(), best[f].seconds,
                    mb_per_s, static_cast<double>(sums[0]) / static_cast<double>(sums[1]),
                    sums[1] / 1e6, mb_per_s / anchor);
      }
    }
  }
  MPI_Finalize();
  return exit_code;
}
