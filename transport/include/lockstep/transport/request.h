// Request: the completion handle of one non-blocking stream send or receive.
//
// A Request is returned by SendStream::Send and RecvStream::Post. The buffer
// it was given belongs to the transport until the Request completes: do not
// write a send buffer or read a receive buffer before Wait() (or Test())
// reports completion. Compute may run in between; that is the point.
//
// Errors. Wait() returns DeadlineExceeded when the operation is not complete
// within the communicator's timeout (CommOptions::timeout), and the backend's
// error otherwise (a peer gone, a message of the wrong size). Every message
// names the operation, the stream and sequence, and the peer's rank, e.g.
//   "recv of stream 7 seq 12 from rank 3 (world rank 3) over mpi: no message
//    after 300 s: the peer stopped answering; check its log (raise
//    --comm-timeout if it is only slow)"
// A failed Request is complete; Wait() again returns the same error.
//
// Lifetime and ownership. Move-only. Destroying a Request that has not
// completed cancels it (a pending receive is withdrawn; a pending send may
// still be delivered) — only do that on an error path. A Request must not
// outlive the Communicator that created it.
//
// Thread safety: not thread-safe; use a Request from one thread at a time,
// the same rules as its Communicator.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>

#include "lockstep/base/status.h"

namespace lockstep::transport {

namespace internal {
class PendingOp;
struct World;
struct RequestAccess;  // src/stream.cc: makes Requests
// Identifies an operation in error messages (see wait.h).
struct OpLabel {
  enum class Kind : uint8_t { kSend, kRecv };
  Kind kind = Kind::kSend;
  const char* what = "";  // "stream", "allreduce", "allgather", ...
  uint32_t id = 0;        // stream id, or the collective's group context
  uint64_t sequence = 0;  // stream sequence, or the collective's call number
  int step = -1;          // collective step (-1 for streams)
  int peer = -1;          // peer rank in the communicator
  int peer_world = -1;    // peer world rank
  size_t bytes = 0;
};
}  // namespace internal

class Request {
 public:
  Request();  // empty: Test() and Wait() succeed at once (defined out of line:
              // PendingOp is incomplete here)
  Request(Request&& other) noexcept;
  Request& operator=(Request&& other) noexcept;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  ~Request();

  // False for an empty (default-constructed or moved-from) Request.
  bool valid() const { return op_ != nullptr; }

  // Drives progress once. Returns true once complete, false while pending,
  // or the operation's error (which completes it).
  Result<bool> Test();

  // Blocks until complete or until the communicator's timeout has passed
  // since this call began.
  Status Wait();

  // The sequence number of the message (streams).
  uint64_t sequence() const { return label_.sequence; }

 private:
  friend struct internal::RequestAccess;
  friend Status WaitAll(std::span<Request> requests);
  Request(std::unique_ptr<internal::PendingOp> op, const internal::World* world,
          internal::OpLabel label);

  std::unique_ptr<internal::PendingOp> op_;
  const internal::World* world_ = nullptr;
  internal::OpLabel label_;
  Status error_;  // the error that completed this request, if any
  bool done_ = false;
};

// Waits for every request with one deadline (the communicator's timeout from
// now), polling all of them so that progress on one does not wait for
// another. Returns the first error met; the other requests are still waited
// for or cancelled when destroyed.
Status WaitAll(std::span<Request> requests);

}  // namespace lockstep::transport
