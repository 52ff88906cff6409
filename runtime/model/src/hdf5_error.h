// The one bridge from HDF5's error space to lockstep::Status.
//
// HDF5 reports failures by a negative return value and a per-thread error
// stack of messages (outermost: "unable to open file"; innermost: the cause,
// e.g. "truncated file: eof = 4096, ..."). Hdf5Error() turns the current stack
// into a one-line Status carrying HDF5's own innermost message, and clears
// the stack. Call it right after the failing HDF5 call, under Hdf5Lock.
#pragma once

#include <string_view>

#include "lockstep/base/status.h"

namespace lockstep::runtime {

// "<context>: <innermost HDF5 message> (<outermost HDF5 message>)", or
// "<context>: HDF5 call failed" if the stack is empty.
Status Hdf5Error(StatusCode code, std::string_view context);

// Turns off HDF5's automatic printing of error stacks to stderr (the errors
// reach the user as Statuses instead). Idempotent; call under Hdf5Lock
// before the first HDF5 call of an entry point.
void SilenceHdf5Errors();

}  // namespace lockstep::runtime
