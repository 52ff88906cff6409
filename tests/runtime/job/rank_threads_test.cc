// --threads auto: the cores available to each rank.
#include "rank_threads.h"

#include <gtest/gtest.h>
#include <sched.h>

namespace lockstep::runtime {
namespace {

RankCpus Cpus(uint64_t host, std::initializer_list<int> cpus) {
  RankCpus r;
  r.host = host;
  for (int c : cpus) r.mask[c / 64] |= uint64_t{1} << (c % 64);
  return r;
}

TEST(RankThreadsTest, RanksSharingTheSameCpusSplitThem) {
  // mpirun --bind-to none: 2 ranks on an 8-core host see the same 8 CPUs.
  const RankCpus all8 = Cpus(1, {0, 1, 2, 3, 4, 5, 6, 7});
  EXPECT_EQ(ThreadsForRank({all8, all8}, 0), 4);
  EXPECT_EQ(ThreadsForRank({all8, all8}, 1), 4);
  // 3 ranks: 8 / 3 rounds down.
  EXPECT_EQ(ThreadsForRank({all8, all8, all8}, 2), 2);
  // More ranks than CPUs: at least one thread each.
  const RankCpus two = Cpus(1, {0, 1});
  EXPECT_EQ(ThreadsForRank({two, two, two, two}, 3), 1);
}

TEST(RankThreadsTest, BoundRanksKeepTheirOwnCpus) {
  // --bind-to core with 4 cores per rank (or Slurm --cpus-per-task 4).
  const std::vector<RankCpus> ranks = {Cpus(1, {0, 1, 2, 3}), Cpus(1, {4, 5, 6, 7}),
                                       Cpus(1, {64, 65, 66, 67, 100})};
  EXPECT_EQ(ThreadsForRank(ranks, 0), 4);
  EXPECT_EQ(ThreadsForRank(ranks, 1), 4);
  EXPECT_EQ(ThreadsForRank(ranks, 2), 5);
}

TEST(RankThreadsTest, RanksOnOtherHostsDoNotShare) {
  const RankCpus a = Cpus(1, {0, 1, 2, 3});
  const RankCpus b = Cpus(2, {0, 1, 2, 3});  // the same CPU numbers on another node
  EXPECT_EQ(ThreadsForRank({a, b}, 0), 4);
  EXPECT_EQ(ThreadsForRank({a, a, b}, 2), 4);
  EXPECT_EQ(ThreadsForRank({a, a, b}, 0), 2);
}

TEST(RankThreadsTest, OwnCpusIsTheAffinityMask) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  const RankCpus mine = OwnCpus();
  EXPECT_EQ(mine.Count(), CPU_COUNT(&set));
  EXPECT_NE(mine.host, 0u);
  EXPECT_EQ(OwnCpus(), mine);
}

}  // namespace
}  // namespace lockstep::runtime
