// The transport on the mpi and ucx backends, under mpiexec with 1..8 ranks
// (registered by tests/transport/CMakeLists.txt for each backend and rank
// count). Run as `transport_mpi_test --transport=mpi|ucx`. Collectives are
// bit-compared with a single-process canonical tree on every rank.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <vector>

#include "lockstep/transport/communicator.h"
#include "lockstep/transport/options.h"
#include "mpi_gtest_main.h"
#include "transport_checks.h"

namespace lockstep::transport {
namespace {

CommOptions TestOptions() {
  CommOptions options;
  auto backend = ParseBackend(lockstep::testing::TestFlag("transport", "mpi"));
  EXPECT_TRUE(backend.ok()) << backend.status().ToString();
  options.backend = backend.ok() ? *backend : BackendKind::kMpi;
  options.timeout = std::chrono::seconds(120);
  return options;
}

class MpiTransportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto world = Communicator::CreateWorld(lockstep::testing::TestSession(), TestOptions());
    ASSERT_TRUE(world.ok()) << world.status().ToString();
    world_.emplace(std::move(*world));
  }
  static void TearDownTestSuite() { world_.reset(); }
  void SetUp() override { ASSERT_TRUE(world_.has_value()); }

  static Communicator& world() { return *world_; }
  static inline std::optional<Communicator> world_;
};

TEST_F(MpiTransportTest, WorldMatchesMpi) {
  EXPECT_EQ(world().rank(), lockstep::testing::TestSession().world_rank());
  EXPECT_EQ(world().size(), lockstep::testing::TestSession().world_size());
  EXPECT_EQ(world().backend(), TestOptions().backend);
}

TEST_F(MpiTransportTest, AllReduceIsTheCanonicalTree) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{3}, size_t{1023}, size_t{1024}, size_t{70001}}) {
    for (AllReduceAlgorithm algorithm :
         {AllReduceAlgorithm::kAuto, AllReduceAlgorithm::kRecursiveDoubling,
          AllReduceAlgorithm::kReduceScatterAllGather}) {
      testing::CheckAllReduce(world(), n, algorithm, 100 + static_cast<uint32_t>(n));
    }
  }
  testing::CheckOrderMatters(world(), 1024, 1124);
}

TEST_F(MpiTransportTest, AllReduceSixteenMebibytes) {
  testing::CheckAllReduce(world(), 4 << 20, AllReduceAlgorithm::kRecursiveDoubling, 201);
  testing::CheckAllReduce(world(), 4 << 20, AllReduceAlgorithm::kReduceScatterAllGather, 202);
}

TEST_F(MpiTransportTest, AllGather) {
  for (size_t block : {size_t{0}, size_t{1}, size_t{7}, size_t{4096}}) {
    testing::CheckAllGather(world(), block, 300 + static_cast<uint32_t>(block));
  }
  testing::CheckAllGather(world(), (16 << 20) / world().size(), 399);
}

TEST_F(MpiTransportTest, Broadcast) {
  for (int root = 0; root < world().size(); ++root) {
    testing::CheckBroadcast(world(), 0, root, 400);
    testing::CheckBroadcast(world(), 1, root, 401);
    testing::CheckBroadcast(world(), 4097, root, 402);
  }
  testing::CheckBroadcast(world(), 16 << 20, world().size() - 1, 403);
}

// Connections on demand: a fresh ucx world holds no endpoint; after a ring
// exchange (send to the right, receive from the left) a rank holds endpoints
// to exactly those two peers (one when they are the same), not p - 1 -- the
// receiver makes one too, so that its peer error handler watches the sender.
// The mpi backend has no such notion (-1).
TEST(MpiTransportConnections, MadeOnDemand) {
  auto made = Communicator::CreateWorld(lockstep::testing::TestSession(), TestOptions());
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  Communicator& world = *made;
  const int p = world.size();
  const bool ucx = world.backend() == BackendKind::kUcx;
  EXPECT_EQ(world.traffic().connections, ucx ? 0 : -1);
  if (p > 1) {
    const int right = (world.rank() + 1) % p;
    const int left = (world.rank() + p - 1) % p;
    auto out = world.OpenSendStream(right, 5);
    auto in = world.OpenRecvStream(left, 5);
    ASSERT_TRUE(out.ok() && in.ok());
    uint64_t got = 0;
    const uint64_t mine = 1000 + static_cast<uint64_t>(world.rank());
    auto received = in->Post(std::span<uint64_t>(&got, 1));
    auto sent = out->Send(std::span<const uint64_t>(&mine, 1));
    ASSERT_TRUE(received.ok() && sent.ok());
    ASSERT_TRUE(received->Wait().ok());
    ASSERT_TRUE(sent->Wait().ok());
    EXPECT_EQ(got, 1000 + static_cast<uint64_t>(left));
    EXPECT_EQ(world.traffic().connections, ucx ? (p == 2 ? 1 : 2) : -1);
  }
  ASSERT_TRUE(world.Barrier().ok());
}

TEST_F(MpiTransportTest, SplitAllReduce) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{1000}, size_t{100000}})
    testing::CheckSplitAllReduce(world(), n, 300 + static_cast<uint32_t>(n));
}

TEST_F(MpiTransportTest, AllReduceRecordsAndGather) {
  testing::CheckAllReduceRecords(world(), 404);
  for (size_t block : {size_t{0}, size_t{1}, size_t{100}})
    testing::CheckGather(world(), block, 405);
}

TEST_F(MpiTransportTest, Barrier) {
  testing::CheckBarrier(world());
}

TEST_F(MpiTransportTest, InterleavedStreams) {
  testing::CheckInterleavedStreams(world(), 6, 65536);
  testing::CheckInterleavedStreams(world(), 2, 16 << 20);
}

TEST_F(MpiTransportTest, StreamSizeMismatchNamesTheStream) {
  testing::CheckStreamSizeMismatch(world());
}

TEST_F(MpiTransportTest, TensorParallelSubtreesCompleteTheTree) {
  testing::CheckTensorParallelSubtrees(world(), 4099, 500);
}

TEST_F(MpiTransportTest, LayoutGroups) {
  testing::CheckLayoutGroups(world());
}

// A second world with a short timeout: rank 1 stays silent in an allreduce,
// rank 0 must fail naming it. (The killed-rank case is transport_fault_test.)
TEST_F(MpiTransportTest, SilentPeerTimesOutWithItsName) {
  if (world().size() < 2) return;
  CommOptions options = TestOptions();
  options.timeout = std::chrono::milliseconds(1000);
  {
    auto short_world = Communicator::CreateWorld(lockstep::testing::TestSession(), options);
    ASSERT_TRUE(short_world.ok()) << short_world.status().ToString();
    testing::CheckSilentPeerTimesOut(*short_world, 1);
    ASSERT_TRUE(world().Barrier().ok());
  }
  ASSERT_TRUE(world().Barrier().ok());
}

}  // namespace
}  // namespace lockstep::transport
