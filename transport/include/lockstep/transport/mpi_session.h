// MpiSession: MPI_Init_thread and MPI_Finalize scoped to one object that
// lives in main().
//
//   int main(int argc, char** argv) {
//     auto session = lockstep::transport::MpiSession::Init(&argc, &argv);
//     if (!session.ok()) { ...print...; return 1; }
//     ...
//     if (!status.ok()) session->Abort(status);   // ends every rank of the job
//   }                                              // MPI_Finalize here
//
// MPI is initialised with MPI_THREAD_SERIALIZED: any thread may call into a
// Communicator, one at a time. The session sets the rank shown in log lines.
//
// Failure semantics: a rank that fails must not return from main normally
// while its peers wait for it (MPI_Finalize would then hang or the peers
// would wait for their deadline). Abort() prints one line
// "lockstep: error: <message>" and calls MPI_Abort, which makes mpirun end
// every rank of the job with a non-zero exit.
//
// Thread safety: create and destroy on the main thread; the accessors are
// const and may be called from any thread.
#pragma once

#include "lockstep/base/status.h"

namespace lockstep::transport {

class MpiSession {
 public:
  // Calls MPI_Init_thread (once per process; a second live session is
  // FailedPrecondition). Errors name the MPI error string.
  static Result<MpiSession> Init(int* argc, char*** argv);

  MpiSession(MpiSession&& other) noexcept;
  MpiSession& operator=(MpiSession&&) = delete;
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  ~MpiSession();  // MPI_Finalize (when this object owns the initialisation)

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }

  // Prints "lockstep: error: <status message>" on stderr (with the rank) and
  // ends the whole job through MPI_Abort(exit_code). Never returns.
  [[noreturn]] void Abort(const Status& status, int exit_code = 1) const;

 private:
  MpiSession(int rank, int size) : world_rank_(rank), world_size_(size), owner_(true) {}
  int world_rank_ = 0;
  int world_size_ = 1;
  bool owner_ = false;
};

}  // namespace lockstep::transport
