// --threads auto under mpirun (--transport=mpi|ucx): the counting of the
// ranks that share a rank's CPUs (CountSharing) over the real backend gives
// ThreadsForRank over every rank's CPUs, for simulated hosts and masks and
// for the ranks' own affinity masks.
#include <gtest/gtest.h>

#include <algorithm>
#include <span>
#include <vector>

#include "lockstep/base/check.h"
#include "lockstep/transport/communicator.h"
#include "mpi_gtest_main.h"
#include "rank_threads.h"

namespace lockstep::runtime {
namespace {

using lockstep::testing::TestFlag;
using lockstep::testing::TestSession;

RankCpus Cpus(uint64_t host, std::initializer_list<int> cpus) {
  RankCpus r;
  r.host = host;
  for (int c : cpus) r.mask[c / 64] |= uint64_t{1} << (c % 64);
  return r;
}

transport::Communicator World() {
  Result<transport::CommOptions> options =
      transport::CommOptionsFromFlags(TestFlag("transport", "mpi"), "60");
  LOCKSTEP_CHECK(options.ok(), "{}", options.status().message());
  Result<transport::Communicator> world =
      transport::Communicator::CreateWorld(TestSession(), *options);
  LOCKSTEP_CHECK(world.ok(), "{}", world.status().message());
  return std::move(world).value();
}

TEST(CountSharingMpiTest, SimulatedHostsWithOverlappingMasks) {
  transport::Communicator world = World();
  const int p = world.size();
  // Rank r's simulated CPUs: hosts of 3 ranks, masks that are equal,
  // overlapping or single CPUs, the same numbers on different hosts.
  std::vector<RankCpus> keys;
  for (int r = 0; r < p; ++r) {
    const uint64_t host = static_cast<uint64_t>(r % 3);
    switch (r % 4) {
      case 0:
        keys.push_back(Cpus(host, {0, 1, 2, 3}));
        break;
      case 1:
        keys.push_back(Cpus(host, {2, 3, 4, 5}));
        break;
      case 2:
        keys.push_back(Cpus(host, {0, 1, 2, 3}));
        break;
      default:
        keys.push_back(Cpus(host, {7}));
        break;
    }
  }
  // The reduction alone, then the butterfly (records of 1 key; 5 ranks: 4
  // and one folded).
  for (int capacity : {kSharingKeys, 1}) {
    Result<SharingCount> count =
        CountSharing(world, keys[static_cast<size_t>(world.rank())], capacity);
    ASSERT_TRUE(count.ok()) << count.status().message();
    EXPECT_EQ(count->threads, ThreadsForRank(keys, world.rank())) << "capacity " << capacity;
    EXPECT_EQ(count->sharing,
              keys[static_cast<size_t>(world.rank())].Count() > 1
                  ? std::count(keys.begin(), keys.end(), keys[static_cast<size_t>(world.rank())])
                  : 1)
        << "capacity " << capacity;
    EXPECT_EQ(count->routed, capacity == 1 && p > 2) << "capacity " << capacity;
  }
}

TEST(CountSharingMpiTest, OwnCpusGiveTheAllgatheredCount) {
  transport::Communicator world = World();
  const RankCpus mine = OwnCpus();
  std::vector<RankCpus> all(static_cast<size_t>(world.size()));
  ASSERT_TRUE(world
                  .AllGather(std::as_bytes(std::span<const RankCpus>(&mine, 1)),
                             std::as_writable_bytes(std::span<RankCpus>(all)))
                  .ok());
  Result<int> threads = AutoThreads(world);
  ASSERT_TRUE(threads.ok()) << threads.status().message();
  EXPECT_EQ(*threads, ThreadsForRank(all, world.rank()));
}

}  // namespace
}  // namespace lockstep::runtime
