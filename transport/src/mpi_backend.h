// The `mpi` backend: MPI_Isend / MPI_Irecv on a private duplicate of
// MPI_COMM_WORLD with MPI_ERRORS_RETURN, completion by MPI_Test. No MPI
// collective touches data; the only MPI collectives are the start-up ones
// (MPI_Comm_idup), themselves waited for with a deadline.
#pragma once

#include <mpi.h>

#include <memory>

#include "backend.h"
#include "lockstep/base/status.h"
#include "lockstep/transport/options.h"

namespace lockstep::transport::internal {

// An owned MPI communicator (MPI_Comm_free on destruction).
class MpiComm {
 public:
  MpiComm() = default;
  explicit MpiComm(MPI_Comm comm) : comm_(comm) {}
  MpiComm(MpiComm&& other) noexcept : comm_(other.comm_) { other.comm_ = MPI_COMM_NULL; }
  MpiComm& operator=(MpiComm&&) = delete;
  ~MpiComm();
  MPI_Comm get() const { return comm_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

// Duplicates MPI_COMM_WORLD (collective, bounded by options.timeout) and sets
// MPI_ERRORS_RETURN on the copy.
Result<MpiComm> DuplicateWorld(const CommOptions& options);

// The mpi backend's check that the MPI allows every lockstep tag (MPI_TAG_UB
// >= 2^23 - 1, tag.h): FailedPrecondition naming the limit otherwise.
Status CheckTagRange(const MpiComm& comm);

// Waits for an MPI request with a deadline; `what` names it in errors.
Status WaitMpiRequest(MPI_Request* request, const CommOptions& options, std::string_view what);

Result<std::unique_ptr<Backend>> CreateMpiBackend(const CommOptions& options);

}  // namespace lockstep::transport::internal
