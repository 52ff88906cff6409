#include "mpi_error.h"

#include <mpi.h>

namespace lockstep::transport::internal {

Status MpiStatus(int code, std::string_view what) {
  if (code == MPI_SUCCESS) return Status::Ok();
  char text[MPI_MAX_ERROR_STRING] = {0};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
  return Unavailable("{}: MPI error {}: {}", what, code, std::string_view(text, length));
}

}  // namespace lockstep::transport::internal
