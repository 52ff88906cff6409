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
//
// Counting the ranks that share a rank's CPUs costs each rank O(log p)
// bytes, not a record per rank (docs/distributed.md, "Start-up"): a tree
// reduction of the smallest distinct (host, mask) keys with their counts,
// repeated for the keys it could not hold, and an allgather of every rank's
// CPUs only when the job has more distinct keys than the rounds hold. Ranks
// with one CPU need no count and take no part.
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

// The keys one record of the counting reduction holds (enough for the
// multi-CPU keys of a job on a few hosts), its size on the wire, and the
// rounds run before the allgather; each round resolves the kSharingKeys
// smallest keys still unresolved (so up to 24 distinct multi-CPU keys, e.g.
// 24 hosts with --bind-to none or 12 two-socket hosts with --bind-to socket).
constexpr int kSharingKeys = 8;
constexpr size_t kSharingRecordBytes = 8 + kSharingKeys * (sizeof(RankCpus) + 8);
constexpr int kSharingRounds = 3;

struct SharingCount {
  int threads = 1;           // ThreadsForRank over every rank's CPUs
  int sharing = 1;           // ranks with this rank's CPUs (itself included);
                             // 1 for a rank of one CPU (not counted) unless
                             // the allgather ran
  int rounds = 0;            // reductions run (the same on every rank)
  bool allgathered = false;  // the fallback ran (the same on every rank)
};

// Every rank of `world` calls this with its CPUs (collective; the errors of
// the collectives, with their deadline): the same threads as ThreadsForRank
// given every rank's CPUs, without gathering them (file comment).
Result<SharingCount> CountSharing(transport::Communicator& world, const RankCpus& mine);

// CountSharing(world, OwnCpus()).threads.
Result<int> AutoThreads(transport::Communicator& world);

}  // namespace lockstep::runtime
