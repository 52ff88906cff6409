// How many compute threads each rank of a job runs when `lockstep run
// --threads` is left at auto: the cores available to the rank.
//
// A rank may run on the CPUs of its affinity mask (what a cpuset, taskset,
// Slurm's --cpus-per-task or mpirun's --bind-to allow it). Ranks on one host
// whose masks are identical share those CPUs (mpirun --bind-to none, or
// chips simulated as threads of one process); ranks bound to their own
// cores do not. So a rank gets the CPUs of its mask divided by the number of
// ranks on its host with the same mask, at least 1. The thread count never
// changes the bits (docs/determinism.md), only the speed.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/transport/communicator.h"

namespace lockstep::runtime {

// A rank's host and CPUs, fixed size for an allgather.
struct RankCpus {
  uint64_t host = 0;                // hash of the host name
  std::array<uint64_t, 16> mask{};  // CPUs 0..1023, bit c of word c / 64
  int Count() const;                // CPUs in the mask
  bool operator==(const RankCpus&) const = default;
};

// The calling thread's CPU affinity and host (sched_getaffinity; every CPU
// the machine has online when that fails).
RankCpus OwnCpus();

// The threads of rank `rank` given every rank's CPUs (see the file comment).
int ThreadsForRank(const std::vector<RankCpus>& ranks, int rank);

// Every rank of `world` calls this: allgathers the ranks' CPUs and returns
// this rank's thread count.
Result<int> AutoThreads(transport::Communicator& world);

}  // namespace lockstep::runtime
