// The one small interface every backend implements: tagged, non-blocking
// point-to-point messages between world ranks with exact matching.
//
// Matching rules (the same for mpi, ucx and local): a receive names its
// sender and a 31-bit tag (tag.h); it matches only a message from that
// sender with that tag, and messages with the same (sender, tag) match in the
// order they were sent. There are no wildcards. A receive whose message has a
// different size than posted fails (InvalidArgument) when it completes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "lockstep/base/status.h"
#include "lockstep/transport/options.h"

namespace lockstep::transport::internal {

class WakeSignal;

// One posted send or receive. Destroying it before completion cancels it.
class PendingOp {
 public:
  virtual ~PendingOp() = default;
  // Drives the backend's progress once and reports completion: true when
  // complete, false while pending, or the error that completed it.
  virtual Result<bool> Test() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendKind kind() const = 0;
  virtual int rank() const = 0;  // world rank
  virtual int size() const = 0;  // world size

  // Starts sending bytes [data, data+bytes) to world rank `peer`. The buffer
  // stays the caller's responsibility until the op completes.
  virtual Result<std::unique_ptr<PendingOp>> StartSend(int peer, uint32_t tag, const void* data,
                                                       size_t bytes) = 0;
  // Starts receiving exactly `bytes` bytes from world rank `peer`.
  virtual Result<std::unique_ptr<PendingOp>> StartRecv(int peer, uint32_t tag, void* data,
                                                       size_t bytes) = 0;

  // The signal that moves when one of this rank's ops may have completed
  // (wake_signal.h), or null when the backend cannot tell (its ops complete
  // only while this rank drives progress): a waiter then blocks on it instead
  // of sleeping and polling (wait.h).
  virtual WakeSignal* wake_signal() { return nullptr; }
};

}  // namespace lockstep::transport::internal
