// --threads auto: the cores available to each rank.
#include "rank_threads.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <bit>
#include <mutex>
#include <vector>

#include "lockstep/transport/local_fabric.h"

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

// CountSharing on local chips (the real transport, one thread per chip),
// chip r with the CPUs keys[r]: every chip's count against ThreadsForRank
// over all of them, and what each chip received.
struct ChipCount {
  SharingCount count;
  uint64_t bytes = 0;  // received during the count
};

std::vector<ChipCount> CountOnChips(const std::vector<RankCpus>& keys,
                                    int capacity = kSharingKeys) {
  const int p = static_cast<int>(keys.size());
  std::vector<ChipCount> out(static_cast<size_t>(p));
  transport::CommOptions options;
  options.timeout = std::chrono::seconds(60);
  const std::vector<Status> statuses =
      transport::RunLocal(p, options, [&](transport::Communicator& chip) -> Status {
        const uint64_t before = chip.traffic().bytes_received;
        LOCKSTEP_ASSIGN_OR_RETURN(
            SharingCount c, CountSharing(chip, keys[static_cast<size_t>(chip.rank())], capacity));
        out[static_cast<size_t>(chip.rank())] = {c, chip.traffic().bytes_received - before};
        return Status::Ok();
      });
  for (int r = 0; r < p; ++r) {
    EXPECT_TRUE(statuses[static_cast<size_t>(r)].ok())
        << "chip " << r << ": " << statuses[static_cast<size_t>(r)].message();
  }
  for (int r = 0; r < p; ++r) {
    const ChipCount& c = out[static_cast<size_t>(r)];
    EXPECT_EQ(c.count.threads, ThreadsForRank(keys, r)) << "chip " << r << " of " << p;
    if (keys[static_cast<size_t>(r)].Count() > 1) {
      EXPECT_EQ(c.count.sharing, std::count(keys.begin(), keys.end(), keys[static_cast<size_t>(r)]))
          << "chip " << r << " of " << p;
    }
    // Every chip ran the same collectives.
    EXPECT_EQ(c.count.routed, out[0].count.routed) << "chip " << r;
  }
  return out;
}

TEST(CountSharingTest, SeveralHostsWithOverlappingMasks) {
  // 13 chips (not a power of two) on 3 simulated hosts: identical masks,
  // masks that overlap them without being equal, the same CPU numbers on
  // another host, and single CPUs (not counted).
  const RankCpus a = Cpus(1, {0, 1, 2, 3});
  const RankCpus b = Cpus(1, {2, 3, 4, 5});              // overlaps a
  const RankCpus c = Cpus(1, {0, 1, 2, 3, 4, 5, 6, 7});  // holds a and b
  const RankCpus d = Cpus(2, {0, 1, 2, 3});              // a's CPUs on host 2
  const RankCpus e = Cpus(3, {0, 1});
  const RankCpus one = Cpus(2, {5});
  const std::vector<RankCpus> keys = {a, b, a, c, d, one, a, b, e, d, one, e, e};
  const std::vector<ChipCount> out = CountOnChips(keys);
  EXPECT_EQ(out[0].count.sharing, 3);
  EXPECT_EQ(out[0].count.threads, 1);  // 4 CPUs over 3 ranks
  EXPECT_EQ(out[3].count.threads, 8);
  EXPECT_EQ(out[4].count.threads, 2);
  EXPECT_EQ(out[8].count.threads, 1);  // 2 CPUs over 3 ranks: at least 1
  EXPECT_FALSE(out[0].count.routed);
  // Worlds of several sizes (every tree shape), and the same keys along the
  // butterfly (records of 1 or 2 keys), folding ranks beyond a power of two.
  for (int p : {1, 2, 3, 5, 8, 13}) {
    const std::vector<RankCpus> some(keys.begin(), keys.begin() + p);
    CountOnChips(some);
    for (int capacity : {1, 2}) {
      const std::vector<ChipCount> routed = CountOnChips(some, capacity);
      if (p >= 5) {
        EXPECT_TRUE(routed[0].count.routed) << p << " chips, capacity " << capacity;
      }
    }
  }
}

TEST(CountSharingTest, MoreKeysThanARecordAreRoutedToTheirHome) {
  // 20 distinct multi-CPU keys (5 hosts x 4 overlapping masks, each held by
  // 1 or 2 chips), given to the chips in an order that mixes hosts; 30
  // chips (16 + 14 folded) and a power of two of them.
  for (int p : {30, 32}) {
    std::vector<RankCpus> keys;
    for (int i = 0; i < p; ++i) {
      const int k = (i * 7) % 20;
      keys.push_back(Cpus(static_cast<uint64_t>(100 + k % 5), {k / 5 * 2, k / 5 * 2 + 1, 9}));
    }
    EXPECT_TRUE(CountOnChips(keys)[0].count.routed) << p << " chips";
  }
}

TEST(CountSharingTest, DistinctKeysCostAFewKeysPerChip) {
  // --bind-to core with two hyperthreads per core, or --cpus-per-task 2:
  // every chip has its own 2-CPU key (64 keys on 2 hosts). The butterfly
  // brings each chip about one key per round, where the allgather brought
  // p - 1 of them.
  constexpr int p = 64;
  std::vector<RankCpus> keys;
  for (int i = 0; i < p; ++i) keys.push_back(Cpus(static_cast<uint64_t>(i % 2), {i, i + 64}));
  const std::vector<ChipCount> out = CountOnChips(keys);
  EXPECT_TRUE(out[0].count.routed);
  std::vector<uint64_t> bytes;
  for (const ChipCount& c : out) {
    EXPECT_EQ(c.count.threads, 2);
    EXPECT_EQ(c.count.sharing, 1);
    bytes.push_back(c.bytes);
  }
  std::sort(bytes.begin(), bytes.end());
  const uint64_t allgather = (p - 1) * sizeof(RankCpus);
  EXPECT_LT(bytes[p / 2], allgather / 2) << "median";
  EXPECT_LT(bytes.back(), allgather) << "max";
}

TEST(CountSharingTest, SingleCpuRanksNeedNoCount) {
  // --bind-to core: 64 chips each on CPU r % 16 of 4 hosts; no key is sent.
  std::vector<RankCpus> keys;
  for (int r = 0; r < 64; ++r) keys.push_back(Cpus(static_cast<uint64_t>(r / 16), {r % 16}));
  const std::vector<ChipCount> out = CountOnChips(keys);
  EXPECT_FALSE(out[0].count.routed);
  for (const ChipCount& c : out) EXPECT_EQ(c.count.threads, 1);
}

TEST(CountSharingTest, BytesPerChipDoNotGrowWithTheChipCount) {
  // --bind-to none on one host: one key. A chip receives one record from
  // each child in the reduction tree and one in the broadcast, never a
  // record per chip: the median is the same at 8 and 64 chips, the leader
  // (log2 p children) receives log2 p records.
  std::vector<uint64_t> medians;
  for (int p : {8, 64}) {
    const std::vector<ChipCount> out =
        CountOnChips(std::vector<RankCpus>(p, Cpus(1, {0, 1, 2, 3})));
    std::vector<uint64_t> bytes;
    int log2p = 0;
    while ((1 << log2p) < p) ++log2p;
    for (int r = 0; r < p; ++r) {
      const ChipCount& c = out[static_cast<size_t>(r)];
      EXPECT_EQ(c.count.threads, 1);
      EXPECT_EQ(c.count.sharing, p);
      const int children = r == 0 ? log2p : std::countr_zero(static_cast<unsigned>(r));
      EXPECT_EQ(c.bytes, (children + (r == 0 ? 0 : 1)) * kSharingRecordBytes)
          << "chip " << r << " of " << p;
      bytes.push_back(c.bytes);
    }
    std::sort(bytes.begin(), bytes.end());
    medians.push_back(bytes[bytes.size() / 2]);
    // The allgather this replaces: p - 1 records of sizeof(RankCpus) each
    // (at 64 chips already more than the leader receives now).
    if (p == 64) {
      EXPECT_LT(bytes.back(), (p - 1) * sizeof(RankCpus));
    }
  }
  EXPECT_EQ(medians[0], medians[1]);
}

}  // namespace
}  // namespace lockstep::runtime
