#include "lockstep/transport/mpi_session.h"

#include <fmt/format.h>
#include <mpi.h>
#include <unistd.h>

#include <cstdio>

#include "lockstep/base/log.h"
#include "mpi_error.h"

namespace lockstep::transport {

Result<MpiSession> MpiSession::Init(int* argc, char*** argv) {
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized || finalized) {
    return FailedPrecondition("MPI is already {} in this process: create one MpiSession, in main",
                              finalized ? "finalized" : "initialized");
  }
  // SERIALIZED: any thread may call MPI, one at a time (Communicator's rule).
  int provided = 0;
  LOCKSTEP_MPI_RETURN_IF_ERROR(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided),
                               "MPI_Init_thread");
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    return FailedPrecondition(
        "MPI provides thread level {} but lockstep needs "
        "MPI_THREAD_SERIALIZED ({})",
        provided, static_cast<int>(MPI_THREAD_SERIALIZED));
  }
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  SetLogRank(rank);
  return MpiSession(rank, size);
}

MpiSession::MpiSession(MpiSession&& other) noexcept
    : world_rank_(other.world_rank_), world_size_(other.world_size_), owner_(other.owner_) {
  other.owner_ = false;
}

MpiSession::~MpiSession() {
  if (owner_) MPI_Finalize();
}

void MpiSession::Abort(const Status& status, int exit_code) const {
  // Name the rank once, also when the message already does.
  const std::string prefix = fmt::format("rank {}: ", world_rank_);
  const bool named = status.message().rfind(prefix, 0) == 0;
  std::string line =
      fmt::format("lockstep: error: {}{}\n", named ? "" : prefix, status.message());
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
  std::fflush(stdout);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  _exit(exit_code);  // MPI_Abort does not return; this is for the type system.
}

}  // namespace lockstep::transport
