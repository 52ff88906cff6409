// The one wrapper for MPI's error space: an MPI return code to a Status that
// carries MPI's own error string and what was being done.
#pragma once

#include <string_view>

#include "lockstep/base/status.h"

namespace lockstep::transport::internal {

// OK for MPI_SUCCESS; otherwise Unavailable (a peer or the fabric failed)
// "<what>: MPI error <code>: <MPI_Error_string>".
Status MpiStatus(int code, std::string_view what);

}  // namespace lockstep::transport::internal

// Returns from the enclosing function (Status or Result) if an MPI call fails.
#define LOCKSTEP_MPI_RETURN_IF_ERROR(call, what) \
  LOCKSTEP_RETURN_IF_ERROR(::lockstep::transport::internal::MpiStatus((call), (what)))
