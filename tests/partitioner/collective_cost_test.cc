#include "lockstep/partitioner/collective_cost.h"

#include <gtest/gtest.h>

#include "partitioner/test_models.h"

namespace lockstep::partitioner {
namespace {

// TestCluster: 4 chips per node; intra 1 GB/s + 1 us, inter 100 MB/s + 10 us,
// memory 10 GB/s, switch to reduce-scatter + allgather at 1000 bytes.
constexpr double kTol = 1e-15;

std::vector<int> Ranks(int first, int count) {
  std::vector<int> g(count);
  for (int i = 0; i < count; ++i) g[i] = first + i;
  return g;
}

TEST(CollectiveCostTest, SingleRankIsFree) {
  ClusterSpec c = testing::TestCluster(8);
  CollectiveCost cost = AllreduceCost(c, {3}, 1 << 20);
  EXPECT_EQ(cost.algorithm, "none");
  EXPECT_EQ(cost.time_s, 0.0);
  EXPECT_EQ(AllgatherCost(c, {3}, 1 << 20).time_s, 0.0);
}

TEST(CollectiveCostTest, RecursiveDoublingInsideANode) {
  ClusterSpec c = testing::TestCluster(8);
  CollectiveCost cost = AllreduceCost(c, Ranks(0, 4), 512);
  EXPECT_EQ(cost.algorithm, "recursive_doubling");
  ASSERT_EQ(cost.steps.size(), 2u);
  // Each step: 1 us + 512 B / 1 GB/s + local add 3 * 512 B / 10 GB/s.
  const double step = 1e-6 + 512e-9 + 3 * 512 / 1e10;
  EXPECT_NEAR(cost.steps[0].time_s, step, kTol);
  EXPECT_EQ(cost.steps[0].distance, 1);
  EXPECT_EQ(cost.steps[1].distance, 2);
  EXPECT_NEAR(cost.time_s, 2 * step, kTol);
  EXPECT_EQ(cost.bytes_sent, 1024);
}

TEST(CollectiveCostTest, RecursiveDoublingAcrossNodes) {
  ClusterSpec c = testing::TestCluster(8);
  CollectiveCost cost = AllreduceCost(c, Ranks(0, 8), 512);
  ASSERT_EQ(cost.steps.size(), 3u);
  EXPECT_FALSE(cost.steps[0].inter_node);
  EXPECT_FALSE(cost.steps[1].inter_node);
  EXPECT_TRUE(cost.steps[2].inter_node);  // distance 4 crosses from node 0 to node 1
  const double intra = 1e-6 + 512e-9 + 3 * 512 / 1e10;
  const double inter = 1e-5 + 512 / 1e8 + 3 * 512 / 1e10;
  EXPECT_NEAR(cost.time_s, 2 * intra + inter, kTol);
}

TEST(CollectiveCostTest, GroupStraddlingNodesUsesTheSlowestPair) {
  ClusterSpec c = testing::TestCluster(8);
  // Ranks 2, 3 | 4, 5: distance 1 pairs (2,3) and (4,5) stay inside, distance 2 crosses.
  CollectiveCost cost = AllreduceCost(c, Ranks(2, 4), 100);
  EXPECT_FALSE(cost.steps[0].inter_node);
  EXPECT_TRUE(cost.steps[1].inter_node);
  // Ranks 3, 4: the only pair crosses.
  EXPECT_TRUE(AllreduceCost(c, Ranks(3, 2), 100).steps[0].inter_node);
}

TEST(CollectiveCostTest, ReduceScatterAllgatherForLargeMessages) {
  ClusterSpec c = testing::TestCluster(8);
  CollectiveCost cost = AllreduceCost(c, Ranks(0, 4), 4000);
  EXPECT_EQ(cost.algorithm, "reduce_scatter_allgather");
  ASSERT_EQ(cost.steps.size(), 4u);
  // Reduce-scatter: distance 1 with 2000 B, distance 2 with 1000 B (added);
  // allgather mirrored: distance 2 with 1000 B, distance 1 with 2000 B.
  EXPECT_EQ(cost.steps[0].distance, 1);
  EXPECT_EQ(cost.steps[0].bytes, 2000);
  EXPECT_EQ(cost.steps[1].distance, 2);
  EXPECT_EQ(cost.steps[1].bytes, 1000);
  EXPECT_EQ(cost.steps[2].distance, 2);
  EXPECT_EQ(cost.steps[2].bytes, 1000);
  EXPECT_EQ(cost.steps[3].distance, 1);
  EXPECT_EQ(cost.steps[3].bytes, 2000);
  const double expected = (1e-6 + 2000e-9 + 6000 / 1e10) + (1e-6 + 1000e-9 + 3000 / 1e10) +
                          (1e-6 + 1000e-9) + (1e-6 + 2000e-9);
  EXPECT_NEAR(cost.time_s, expected, kTol);
  EXPECT_EQ(cost.bytes_sent, 2 * 4000 * 3 / 4);
  // The switch point is the spec's: 999 bytes still go by recursive doubling.
  EXPECT_EQ(AllreduceCost(c, Ranks(0, 4), 999).algorithm, "recursive_doubling");
  EXPECT_EQ(AllreduceCost(c, Ranks(0, 4), 1000).algorithm, "reduce_scatter_allgather");
}

TEST(CollectiveCostTest, AllgatherAndPointToPoint) {
  ClusterSpec c = testing::TestCluster(8);
  CollectiveCost gather = AllgatherCost(c, Ranks(0, 4), 4000);
  ASSERT_EQ(gather.steps.size(), 2u);
  EXPECT_EQ(gather.steps[0].bytes, 1000);
  EXPECT_EQ(gather.steps[1].bytes, 2000);
  EXPECT_NEAR(gather.time_s, (1e-6 + 1000e-9) + (1e-6 + 2000e-9), kTol);
  // Uneven parts: the largest part bounds each step.
  EXPECT_EQ(AllgatherCost(c, Ranks(0, 4), 4001).steps[0].bytes, 1001);
  EXPECT_NEAR(PointToPointCost(c, 0, 1, 5000).time_s, 1e-6 + 5000e-9, kTol);
  EXPECT_NEAR(PointToPointCost(c, 0, 4, 5000).time_s, 1e-5 + 5000 / 1e8, kTol);
}

TEST(CollectiveCostTest, NeverSlowerWithMoreBandwidth) {
  for (int64_t bytes : {8, 999, 1000, 65536, 1 << 22}) {
    double previous = 1e300;
    for (double scale : {0.5, 1.0, 2.0, 8.0}) {
      ClusterSpec c = testing::TestCluster(16);
      c.intra_node_link.bandwidth_bytes_per_s *= scale;
      c.inter_node_link.bandwidth_bytes_per_s *= scale;
      c.chip.memory_bandwidth_bytes_per_s *= scale;
      double t = AllreduceCost(c, Ranks(0, 16), bytes).time_s;
      EXPECT_LT(t, previous) << bytes << " bytes, scale " << scale;
      previous = t;
    }
  }
}

}  // namespace
}  // namespace lockstep::partitioner
