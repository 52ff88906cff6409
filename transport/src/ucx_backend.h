// The `ucx` backend: UCX's UCP tag-matching API directly. One UCP context and
// one worker per rank (UCS_THREAD_MODE_SINGLE). Connections are made on
// demand: on the first send to or receive from a peer, the two ranks exchange
// worker addresses point to point over MPI (bounded by the timeout; every wait
// of the backend answers such requests) and an endpoint is created to that
// peer only, with UCP_ERR_HANDLING_MODE_PEER where
// the transport supports it (tcp, ib): a peer whose connection fails is then
// reported by UCX's error handler, and every operation with it fails with
// "rank N failed: its UCX connection reports '...'" instead of UCX aborting
// the process with a fatal error and a backtrace. UCX 1.13's shared-memory
// transports do not support peer error handling; there a failed peer is
// detected by the deadline of every wait.
//
// The 64-bit UCP tag is (sender world rank << 32) | 23-bit lockstep tag (tag.h) and is
// matched with a full mask: the sender is part of the tag because UCP
// matches tags alone (no source field), and no bit is a wildcard.
//
// Transports come from UCX's own environment (UCX_TLS, UCX_NET_DEVICES...),
// read by ucp_config_read. docs/transport.md lists the settings tested:
// UCX_TLS=self,sm (shared memory) and UCX_TLS=self,tcp UCX_NET_DEVICES=lo.
//
// Teardown is collective: the destructor waits (up to the timeout) on an
// MPI_Ibarrier so that no rank closes its endpoints while a peer still
// receives, then force-closes the endpoints.
#pragma once

#include <memory>

#include "backend.h"
#include "lockstep/base/status.h"
#include "lockstep/transport/options.h"

namespace lockstep::transport::internal {

Result<std::unique_ptr<Backend>> CreateUcxBackend(const CommOptions& options);

}  // namespace lockstep::transport::internal
