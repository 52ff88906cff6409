#include "rank_threads.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <span>
#include <string_view>

#include "lockstep/base/check.h"

namespace lockstep::runtime {

int RankCpus::Count() const {
  int n = 0;
  for (uint64_t word : mask) n += std::popcount(word);
  return n;
}

RankCpus OwnCpus() {
  RankCpus cpus;
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) name[0] = '\0';
  uint64_t hash = 1469598103934665603ull;  // FNV-1a 64
  for (char c : std::string_view(name)) {
    hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  cpus.host = hash;
  cpu_set_t set;
  CPU_ZERO(&set);
  const int limit = static_cast<int>(cpus.mask.size() * 64);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < std::min(limit, CPU_SETSIZE); ++c) {
      if (CPU_ISSET(c, &set)) cpus.mask[c / 64] |= uint64_t{1} << (c % 64);
    }
  }
  if (cpus.Count() == 0) {
    const long online = std::clamp<long>(sysconf(_SC_NPROCESSORS_ONLN), 1, limit);
    for (int c = 0; c < online; ++c) cpus.mask[c / 64] |= uint64_t{1} << (c % 64);
  }
  return cpus;
}

int ThreadsForRank(const std::vector<RankCpus>& ranks, int rank) {
  const RankCpus& mine = ranks[static_cast<size_t>(rank)];
  const int sharing = static_cast<int>(std::count(ranks.begin(), ranks.end(), mine));
  return std::max(1, mine.Count() / std::max(1, sharing));
}

namespace {

bool KeyLess(const RankCpus& a, const RankCpus& b) {
  if (a.host != b.host) return a.host < b.host;
  return a.mask < b.mask;
}

struct KeyCount {
  RankCpus key;
  int32_t count = 0;
  int32_t unused = 0;  // no padding bytes on the wire
};

// The smallest kSharingKeys keys of a block of ranks with the number of the
// block's ranks holding each, and whether the block had more keys. Merging
// keeps the smallest keys of the union, so the kept counts are exact: a key
// among the smallest of the whole world is among the smallest of every block
// that holds it, and no block dropped any of its ranks.
struct SharingRecord {
  int32_t keys = 0;
  int32_t overflow = 0;  // 1: the block held more than kSharingKeys keys
  KeyCount entry[kSharingKeys];
};
static_assert(sizeof(SharingRecord) == kSharingRecordBytes);

void CombineSharing(std::span<std::byte> lower_bytes, std::span<const std::byte> upper_bytes) {
  SharingRecord lower;
  SharingRecord upper;
  std::memcpy(&lower, lower_bytes.data(), sizeof lower);
  std::memcpy(&upper, upper_bytes.data(), sizeof upper);
  SharingRecord out;
  out.overflow = lower.overflow | upper.overflow;
  const int32_t nl = std::clamp(lower.keys, 0, kSharingKeys);
  const int32_t nu = std::clamp(upper.keys, 0, kSharingKeys);
  int32_t l = 0;
  int32_t u = 0;
  while (l < nl || u < nu) {
    KeyCount next;
    if (u == nu || (l < nl && KeyLess(lower.entry[l].key, upper.entry[u].key))) {
      next = lower.entry[l++];
    } else if (l == nl || KeyLess(upper.entry[u].key, lower.entry[l].key)) {
      next = upper.entry[u++];
    } else {  // the same key on both sides
      next = lower.entry[l++];
      next.count += upper.entry[u++].count;
    }
    if (out.keys == kSharingKeys) {
      out.overflow = 1;
      break;
    }
    out.entry[out.keys++] = next;
  }
  std::memcpy(lower_bytes.data(), &out, sizeof out);
}

}  // namespace

Result<SharingCount> CountSharing(transport::Communicator& world, const RankCpus& mine) {
  SharingCount result;
  // One CPU (or none): one thread, however many ranks share it.
  bool resolved = mine.Count() <= 1;
  for (int round = 0; round < kSharingRounds; ++round) {
    SharingRecord record;
    if (!resolved) {
      record.keys = 1;
      record.entry[0].key = mine;
      record.entry[0].count = 1;
    }
    LOCKSTEP_RETURN_IF_ERROR(world.AllReduce(
        std::as_writable_bytes(std::span<SharingRecord>(&record, 1)), CombineSharing));
    ++result.rounds;
    if (!resolved) {
      for (int32_t i = 0; i < std::clamp(record.keys, 0, kSharingKeys); ++i) {
        if (record.entry[i].key == mine) {
          result.sharing = record.entry[i].count;
          resolved = true;
          break;
        }
      }
    }
    // No overflow: every rank that took part found its key. Every rank sees
    // the same record, so all leave the loop at the same round.
    if (record.overflow == 0) {
      LOCKSTEP_CHECK(resolved, "rank {}: its CPUs are missing from a complete count", world.rank());
      result.threads = std::max(1, mine.Count() / std::max(1, result.sharing));
      return result;
    }
  }
  // More distinct keys than the rounds resolve: every rank's CPUs, as before.
  std::vector<RankCpus> all(static_cast<size_t>(world.size()));
  LOCKSTEP_RETURN_IF_ERROR(world.AllGather(std::as_bytes(std::span<const RankCpus>(&mine, 1)),
                                           std::as_writable_bytes(std::span<RankCpus>(all))));
  result.allgathered = true;
  result.sharing = static_cast<int>(std::count(all.begin(), all.end(), mine));
  result.threads = ThreadsForRank(all, world.rank());
  return result;
}

Result<int> AutoThreads(transport::Communicator& world) {
  LOCKSTEP_ASSIGN_OR_RETURN(SharingCount count, CountSharing(world, OwnCpus()));
  return count.threads;
}

}  // namespace lockstep::runtime
