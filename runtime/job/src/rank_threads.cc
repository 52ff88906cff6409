#include "rank_threads.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <span>
#include <string_view>

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

Result<int> AutoThreads(transport::Communicator& world) {
  const RankCpus mine = OwnCpus();
  std::vector<RankCpus> all(static_cast<size_t>(world.size()));
  LOCKSTEP_RETURN_IF_ERROR(world.AllGather(std::as_bytes(std::span<const RankCpus>(&mine, 1)),
                                           std::as_writable_bytes(std::span<RankCpus>(all))));
  return ThreadsForRank(all, world.rank());
}

}  // namespace lockstep::runtime
