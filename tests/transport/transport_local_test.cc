// The transport on the local backend: every chip a thread of this process.
// Unit tests (no mpirun): collectives bit-compared with a single-process
// canonical tree for 1..8 and 64 chips, streams, groups, errors.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>
#include <vector>

#include "lockstep/transport/communicator.h"
#include "lockstep/transport/local_fabric.h"
#include "lockstep/transport/options.h"
#include "lockstep/transport/rank_layout.h"
#include "tag.h"
#include "transport_checks.h"

namespace lockstep::transport {
namespace {

using testing::CanonicalTreeSum;

CommOptions LocalOptions() {
  CommOptions options;
  options.backend = BackendKind::kLocal;
  options.timeout = std::chrono::seconds(60);
  // Many threads on 2 cores: yield early, sleep soon.
  options.spin = std::chrono::microseconds(5);
  options.yield = std::chrono::microseconds(200);
  return options;
}

void RunOnChips(int chips, const std::function<void(Communicator&)>& body,
                CommOptions options = LocalOptions()) {
  std::vector<Status> results = RunLocal(chips, options, [&](Communicator& comm) {
    body(comm);
    return Status::Ok();
  });
  for (size_t r = 0; r < results.size(); ++r) {
    EXPECT_TRUE(results[r].ok()) << "chip " << r << ": " << results[r].ToString();
  }
}

double ProcessCpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// 255 local chips waiting 300 ms for a slow one, on a node with far fewer
// cores: waiting chips block (docs/transport.md, "Polling"), so together
// they use less than one core; with fixed 20 us sleeps they kept every core
// busy waking up (load average above 200 with 576 chips).
TEST(PollingTest, WaitingChipsLeaveTheCoresIdle) {
  const int chips = 256;
  if (std::thread::hardware_concurrency() * 8 > static_cast<unsigned>(chips)) {
    GTEST_SKIP() << "needs at least 8 chips per core to be oversubscribed";
  }
  CommOptions options;
  options.backend = BackendKind::kLocal;
  options.timeout = std::chrono::seconds(60);  // adaptive polling: the defaults
  const double cpu0 = ProcessCpuSeconds();
  const auto wall0 = std::chrono::steady_clock::now();
  RunOnChips(
      chips,
      [](Communicator& comm) {
        if (comm.rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
        EXPECT_TRUE(comm.Barrier().ok());
      },
      options);
  const double cpu = ProcessCpuSeconds() - cpu0;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  std::printf("%d chips, one 300 ms late: %.3f s wall, %.3f s CPU (%.2f cores)\n", chips, wall, cpu,
              cpu / wall);
  EXPECT_GE(wall, 0.3);
  EXPECT_LT(cpu, 0.8 * wall) << "the waiting chips kept the cores busy";
}

TEST(CanonicalTreeTest, ReferenceShapes) {
  const float a = 1e8f, b = 1.0f, c = -1e8f, d = 1.0f;
  float leaves[] = {a, b, c, d};
  EXPECT_EQ(CanonicalTreeSum(std::span<const float>(leaves, 4)), (a + b) + (c + d));
  EXPECT_EQ(CanonicalTreeSum(std::span<const float>(leaves, 3)), (a + b) + c);
  float six[] = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(CanonicalTreeSum(six), ((1.f + 2.f) + (3.f + 4.f)) + (5.f + 6.f));
  EXPECT_EQ(CanonicalTreeSum(std::span<const float>(six, 1)), 1.f);
}

TEST(OptionsTest, ParseBackendAndTimeout) {
  EXPECT_EQ(*ParseBackend("mpi"), BackendKind::kMpi);
  EXPECT_EQ(*ParseBackend("local"), BackendKind::kLocal);
  EXPECT_FALSE(ParseBackend("nccl").ok());
  EXPECT_NE(ParseBackend("nccl").status().message().find("mpi, ucx or local"), std::string::npos);
  EXPECT_EQ(ParseTimeout("300")->count(), 300000);
  EXPECT_EQ(ParseTimeout("2.5")->count(), 2500);
  EXPECT_EQ(ParseTimeout("500ms")->count(), 500);
  EXPECT_EQ(ParseTimeout("2min")->count(), 120000);
  EXPECT_EQ(ParseTimeout("10s")->count(), 10000);
  EXPECT_FALSE(ParseTimeout("0").ok());
  EXPECT_FALSE(ParseTimeout("-3").ok());
  EXPECT_FALSE(ParseTimeout("abc").ok());
  EXPECT_FALSE(ParseTimeout("").ok());
  auto options = CommOptionsFromFlags("local", "2.5");
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->backend, BackendKind::kLocal);
  EXPECT_EQ(options->timeout.count(), 2500);
  EXPECT_EQ(CommOptionsFromFlags("mpi", "")->timeout, CommOptions().timeout);
  EXPECT_FALSE(CommOptionsFromFlags("mpi", "soon").ok());
}

// Every tag fits Open MPI's UCX PML (MPI_TAG_UB = 2^23 - 1), and stream and
// collective tags never collide.
TEST(TagTest, EveryTagFitsTheUcxPmlRange) {
  EXPECT_EQ(internal::kMaxTag, 8388607u);
  for (uint32_t id = 0; id <= kMaxStreamId; ++id) {
    for (uint64_t seq : {uint64_t{0}, uint64_t{65535}, uint64_t{65536}, uint64_t{1} << 40}) {
      const uint32_t tag = internal::StreamTag(id, seq);
      EXPECT_LE(tag, internal::kMaxTag);
      EXPECT_EQ(tag >> 22, 0u);
      EXPECT_EQ((tag >> 16) & 63, id);
    }
  }
  for (uint32_t context = 0; context <= internal::kMaxContext; ++context) {
    for (uint64_t call : {uint64_t{0}, uint64_t{1023}, uint64_t{1} << 33}) {
      for (int step : {0, 63}) {
        const uint32_t tag = internal::CollectiveTag(context, call, step);
        EXPECT_LE(tag, internal::kMaxTag);
        EXPECT_EQ(tag >> 22, 1u);
        EXPECT_EQ((tag >> 16) & 63, context);
      }
    }
  }
}

TEST(TagTest, AtMostSixtyThreeSplitsPerWorld) {
  RunOnChips(1, [](Communicator& comm) {
    for (uint32_t i = 0; i < internal::kMaxContext; ++i) {
      ASSERT_TRUE(comm.Split({{0}}, "g").ok()) << i;
    }
    auto one_more = comm.Split({{0}}, "g");
    EXPECT_EQ(one_more.status().code(), StatusCode::kResourceExhausted);
  });
}

TEST(RankLayoutTest, GroupsFollowWorldRankFormula) {
  auto layout = RankLayout::Create(4, 3);
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(layout->WorldRank(2, 1), 9);
  EXPECT_EQ(layout->Stage(9), 2);
  EXPECT_EQ(layout->TpRank(9), 1);
  auto tp = layout->TpGroups();
  ASSERT_EQ(tp.size(), 3u);
  EXPECT_EQ(tp[1], (std::vector<int>{4, 5, 6, 7}));
  auto pp = layout->PpGroups();
  ASSERT_EQ(pp.size(), 4u);
  EXPECT_EQ(pp[1], (std::vector<int>{1, 5, 9}));
  EXPECT_FALSE(RankLayout::Create(0, 2).ok());
}

class LocalCollectivesTest : public ::testing::TestWithParam<int> {};

TEST_P(LocalCollectivesTest, AllReduceIsTheCanonicalTree) {
  const int chips = GetParam();
  RunOnChips(chips, [](Communicator& comm) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{3}, size_t{1023}, size_t{1024}, size_t{70001}}) {
      for (AllReduceAlgorithm algorithm :
           {AllReduceAlgorithm::kAuto, AllReduceAlgorithm::kRecursiveDoubling,
            AllReduceAlgorithm::kReduceScatterAllGather}) {
        testing::CheckAllReduce(comm, n, algorithm, 1 + static_cast<uint32_t>(n));
      }
    }
    testing::CheckOrderMatters(comm, 1024, 1025);
  });
}

TEST_P(LocalCollectivesTest, AllGatherBroadcastBarrier) {
  const int chips = GetParam();
  RunOnChips(chips, [](Communicator& comm) {
    for (size_t block : {size_t{0}, size_t{1}, size_t{7}, size_t{4096}}) {
      testing::CheckAllGather(comm, block, 3);
    }
    for (int root = 0; root < comm.size(); root += (comm.size() > 8 ? 7 : 1)) {
      testing::CheckBroadcast(comm, 4097, root, 4);
    }
    testing::CheckBroadcast(comm, 0, 0, 5);
    testing::CheckBarrier(comm);
  });
}

TEST_P(LocalCollectivesTest, SplitAllReduce) {
  RunOnChips(GetParam(), [](Communicator& comm) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{1000}, size_t{100000}})
      testing::CheckSplitAllReduce(comm, n, 30 + static_cast<uint32_t>(n));
  });
}

TEST_P(LocalCollectivesTest, AllReduceRecordsAndGather) {
  RunOnChips(GetParam(), [](Communicator& comm) {
    testing::CheckAllReduceRecords(comm, 6);
    for (size_t block : {size_t{0}, size_t{1}, size_t{100}}) testing::CheckGather(comm, block, 7);
  });
}

TEST_P(LocalCollectivesTest, InterleavedStreams) {
  RunOnChips(GetParam(),
             [](Communicator& comm) { testing::CheckInterleavedStreams(comm, 5, 65536); });
}

TEST_P(LocalCollectivesTest, TensorParallelSubtreesCompleteTheTree) {
  RunOnChips(GetParam(),
             [](Communicator& comm) { testing::CheckTensorParallelSubtrees(comm, 4099, 21); });
}

TEST_P(LocalCollectivesTest, LayoutGroups) {
  RunOnChips(GetParam(), [](Communicator& comm) { testing::CheckLayoutGroups(comm); });
}

INSTANTIATE_TEST_SUITE_P(Chips, LocalCollectivesTest, ::testing::Values(1, 2, 3, 4, 5, 6, 8),
                         [](const auto& info) { return "chips" + std::to_string(info.param); });

// 64 chips in one process: the scale the runtime simulates.
TEST(LocalSixtyFourChipsTest, CollectivesAndStreams) {
  RunOnChips(64, [](Communicator& comm) {
    for (size_t n : {size_t{1}, size_t{1023}, size_t{16384}}) {
      testing::CheckAllReduce(comm, n, AllReduceAlgorithm::kRecursiveDoubling, 31);
      testing::CheckAllReduce(comm, n, AllReduceAlgorithm::kReduceScatterAllGather, 32);
    }
    testing::CheckOrderMatters(comm, 256, 33);
    testing::CheckAllGather(comm, 1000, 34);
    testing::CheckBroadcast(comm, 100000, 63, 35);
    testing::CheckAllReduceRecords(comm, 37);
    testing::CheckGather(comm, 48, 38);
    testing::CheckInterleavedStreams(comm, 3, 4096);
    testing::CheckTensorParallelSubtrees(comm, 1000, 36);
    testing::CheckLayoutGroups(comm);
    testing::CheckBarrier(comm);
  });
}

TEST(LocalCollectivesTest, SixteenMebibytes) {
  RunOnChips(4, [](Communicator& comm) {
    testing::CheckAllReduce(comm, 4 << 20, AllReduceAlgorithm::kAuto, 41);
    testing::CheckAllReduce(comm, 4 << 20, AllReduceAlgorithm::kRecursiveDoubling, 42);
    testing::CheckAllGather(comm, 4 << 20, 43);
    testing::CheckBroadcast(comm, 16 << 20, 1, 44);
    testing::CheckInterleavedStreams(comm, 2, 16 << 20);
  });
}

TEST(LocalErrorsTest, StreamSizeMismatchNamesTheStream) {
  RunOnChips(2, [](Communicator& comm) { testing::CheckStreamSizeMismatch(comm); });
}

TEST(LocalErrorsTest, SilentPeerTimesOutWithItsName) {
  CommOptions options = LocalOptions();
  options.timeout = std::chrono::milliseconds(300);
  for (int chips : {2, 4, 5}) {
    RunOnChips(
        chips, [](Communicator& comm) { testing::CheckSilentPeerTimesOut(comm, 1); }, options);
  }
}

TEST(LocalErrorsTest, StreamRecvTimesOutNamingStreamAndPeer) {
  CommOptions options = LocalOptions();
  options.timeout = std::chrono::milliseconds(200);
  RunOnChips(
      3,
      [](Communicator& comm) {
        if (comm.rank() != 2) return;
        auto in = comm.OpenRecvStream(0, 9);
        ASSERT_TRUE(in.ok());
        std::vector<float> buffer(8);
        auto request = in->Post(std::span<float>(buffer));
        ASSERT_TRUE(request.ok());
        Status status = request->Wait();
        EXPECT_EQ(status.code(), StatusCode::kDeadlineExceeded);
        EXPECT_NE(status.message().find("recv of stream 9 seq 0 (32 bytes) from rank 0 (world "
                                        "rank 0) over local: not complete after 0.2 s"),
                  std::string::npos)
            << status.message();
        // A failed request stays failed.
        EXPECT_EQ(request->Wait().code(), StatusCode::kDeadlineExceeded);
      },
      options);
}

TEST(LocalErrorsTest, BadArguments) {
  RunOnChips(2, [](Communicator& comm) {
    EXPECT_FALSE(comm.OpenSendStream(comm.rank(), 1).ok());
    EXPECT_FALSE(comm.OpenSendStream(2, 1).ok());
    EXPECT_FALSE(comm.OpenRecvStream(1 - comm.rank(), kMaxStreamId + 1).ok());
    std::vector<std::byte> mine(4), all(7);
    EXPECT_EQ(comm.AllGather(mine, all).code(), StatusCode::kInvalidArgument);
    std::vector<std::byte> data(4);
    EXPECT_EQ(comm.Broadcast(data, 5).code(), StatusCode::kInvalidArgument);
    EXPECT_FALSE(comm.Split({{0}}, "x").ok() && comm.rank() == 1);
    auto twice = comm.Split({{0, 1}, {1}}, "y");
    EXPECT_FALSE(twice.ok());
  });
  EXPECT_FALSE(LocalFabric::Create(0).ok());
}

}  // namespace
}  // namespace lockstep::transport
