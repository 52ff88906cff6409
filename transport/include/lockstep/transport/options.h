// Options of a Communicator: which backend moves the bytes, how long any wait
// may take, and how a waiting rank polls.
//
// Every default is written here, in place. The `lockstep` command maps its
// flags onto these fields: --transport mpi|ucx|local -> backend,
// --comm-timeout SECONDS -> timeout.
//
// Thread safety: plain values.
#pragma once

#include <chrono>
#include <cstddef>
#include <string_view>

#include "lockstep/base/status.h"

namespace lockstep::transport {

// Which library carries the bytes. Chosen at run time; every backend gives the
// same bits for every collective (docs/determinism.md).
enum class BackendKind {
  kMpi,    // Open MPI point-to-point (MPI_Isend/MPI_Irecv); never MPI reductions
  kUcx,    // UCX UCP tag matching; worker addresses exchanged over MPI at start-up
  kLocal,  // threads in one process, one per chip (LocalFabric)
};

std::string_view BackendName(BackendKind kind);  // "mpi", "ucx", "local"
// Parses "mpi", "ucx" or "local"; anything else is InvalidArgument naming the
// value and the accepted ones. "ucx" fails with Unimplemented when lockstep
// was built without UCX (LOCKSTEP_WITH_UCX=OFF).
Result<BackendKind> ParseBackend(std::string_view name);

// Parses a --comm-timeout value: seconds as a positive decimal number
// ("300", "2.5"), or with a unit suffix "ms" / "s" / "min". Zero, negative
// and malformed values are InvalidArgument.
Result<std::chrono::milliseconds> ParseTimeout(std::string_view text);

// How AllReduceSum moves data. Both realise the same canonical tree, so they
// give the same bits; they differ only in speed.
enum class AllReduceAlgorithm {
  kAuto,                    // recursive doubling below CommOptions::allreduce_switch_bytes,
                            // reduce-scatter + allgather from it on (power-of-two groups)
  kRecursiveDoubling,       // log2(p) exchanges of the whole buffer
  kReduceScatterAllGather,  // log2(p) halving exchanges, then log2(p) doubling ones
};
std::string_view AllReduceAlgorithmName(AllReduceAlgorithm algorithm);  // "auto", "rd", "rs_ag"

struct CommOptions {
  BackendKind backend = BackendKind::kMpi;

  // Deadline of every wait: a send, receive or collective step not complete
  // after this long fails with DeadlineExceeded naming the operation and the
  // peer. Generous by default so that slow, oversubscribed runs still pass.
  std::chrono::milliseconds timeout = std::chrono::seconds(300);

  // Messages of at least this many bytes use reduce-scatter + allgather in
  // AllReduceSum with kAuto (power-of-two groups of 2 or more ranks). Chosen
  // from benchmarks/transport on the reference machine (docs/transport.md).
  size_t allreduce_switch_bytes = 64 * 1024;

  // Waiting for an op that is not complete: spin (calling the backend's
  // progress) for `spin`, then yield the core (sched_yield) until `yield`
  // has passed since the wait began, then block. Spinning gives the lowest
  // latency on dedicated cores (it is what MPI's blocking calls do);
  // yielding and blocking keep oversubscribed runs (64 ranks on 2 cores,
  // hundreds of local chips) from starving the rank that holds the data.
  // Blocking: the local backend sleeps until a peer completes the op (an
  // exact wake-up); mpi and ucx, whose progress needs this rank's calls,
  // sleep `sleep` between polls, doubling up to `max_sleep`.
  std::chrono::microseconds spin = std::chrono::microseconds(20000);
  std::chrono::microseconds yield = std::chrono::microseconds(200000);
  std::chrono::microseconds sleep = std::chrono::microseconds(20);
  std::chrono::microseconds max_sleep = std::chrono::microseconds(1000);

  // When true, creating a world replaces spin and yield by values for the
  // node: if the ranks (or local chips) on this node outnumber its cores,
  // spin = kOversubscribedSpin and yield = kOversubscribedYield (the local
  // backend: yield = spin, it blocks at once); otherwise the fields above
  // are kept. Set false to use spin/yield exactly as given.
  bool adaptive_polling = true;
  static constexpr std::chrono::microseconds kOversubscribedSpin{5};
  static constexpr std::chrono::microseconds kOversubscribedYield{200};
};

// The options from the `lockstep` command's flags: --transport NAME and
// --comm-timeout VALUE (see ParseBackend and ParseTimeout; an empty
// comm_timeout keeps the default). Other fields keep their defaults.
Result<CommOptions> CommOptionsFromFlags(std::string_view transport, std::string_view comm_timeout);

}  // namespace lockstep::transport
