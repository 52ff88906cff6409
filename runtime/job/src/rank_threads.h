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
// bytes, not a record per rank (docs/distributed.md, "Start-up"). First a
// reduction up the binomial tree (and broadcast) of the kSharingKeys
// smallest distinct (host, mask) keys with their counts: merging keeps the
// smallest keys of the union, so their counts are exact (a key among the
// smallest of the world is among the smallest of every block holding it).
// That settles a job of few keys (one host under --bind-to none, a few
// hosts, a few sockets). When the world held more keys, the ranks whose key
// did not fit count it along a butterfly over the largest power of two P <=
// p (ranks P..p-1 hand their key to rank r - P first): at round j a rank
// sends its partner across bit j the keys whose home (a hash of the key
// modulo P) differs from its own rank in bit j, merging what it receives,
// so each key reaches its home with its total; the totals go back the same
// way. A rank then receives about one key per round, not one per rank.
// Ranks with one CPU need no count and send no key.
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
// multi-CPU keys of a job on a few hosts) and its size on the wire.
constexpr int kSharingKeys = 8;
constexpr size_t kSharingRecordBytes = 8 + kSharingKeys * (sizeof(RankCpus) + 8);
// The stream id of the butterfly's messages (distinct from the pipeline's,
// 1..4, and ScatterBytes', 8).
inline constexpr uint32_t kSharingStream = 9;

struct SharingCount {
  int threads = 1;      // ThreadsForRank over every rank's CPUs
  int sharing = 1;      // ranks with this rank's CPUs (itself included);
                        // 1 for a rank of one CPU (not counted)
  bool routed = false;  // the butterfly ran (the same on every rank)
};

// Every rank of `world` calls this with its CPUs (collective; the errors of
// the collectives, with their deadline): the same threads as ThreadsForRank
// given every rank's CPUs, without gathering them (file comment). Call it
// at most once at a time per world (it uses stream kSharingStream).
// `capacity` (1..kSharingKeys, the same on every rank) is the keys a record
// keeps; tests lower it to run the butterfly with few ranks.
Result<SharingCount> CountSharing(transport::Communicator& world, const RankCpus& mine,
                                  int capacity = kSharingKeys);

// CountSharing(world, OwnCpus()).threads.
Result<int> AutoThreads(transport::Communicator& world);

}  // namespace lockstep::runtime
