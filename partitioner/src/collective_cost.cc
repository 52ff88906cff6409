#include "lockstep/partitioner/collective_cost.h"

#include <bit>

#include "lockstep/base/check.h"

namespace lockstep::partitioner {
namespace {

CollectiveStep MakeStep(const ClusterSpec& cluster, const std::vector<int>& group, int distance,
                        int64_t bytes, bool reduces) {
  CollectiveStep step;
  step.distance = distance;
  step.bytes = bytes;
  step.inter_node = StepCrossesNodes(cluster, group, distance);
  step.reduces = reduces;
  const LinkSpec& link = step.inter_node ? cluster.inter_node_link : cluster.intra_node_link;
  step.time_s = link.latency_s + static_cast<double>(bytes) / link.PeerBandwidth();
  if (reduces) step.time_s += 3.0 * static_cast<double>(bytes) / cluster.ChipMemoryBandwidth();
  return step;
}

CollectiveCost Sum(std::string algorithm, std::vector<CollectiveStep> steps) {
  CollectiveCost cost;
  cost.algorithm = std::move(algorithm);
  cost.steps = std::move(steps);
  for (const CollectiveStep& s : cost.steps) {
    cost.time_s += s.time_s;
    cost.bytes_sent += s.bytes;
  }
  return cost;
}

void CheckGroup(const std::vector<int>& group) {
  LOCKSTEP_CHECK(!group.empty() && std::has_single_bit(group.size()),
                 "collective group size {} is not a power of two", group.size());
}

}  // namespace

bool StepCrossesNodes(const ClusterSpec& cluster, const std::vector<int>& group, int distance) {
  for (size_t i = 0; i < group.size(); ++i) {
    size_t partner = i ^ static_cast<size_t>(distance);
    if (partner < group.size() && !cluster.SameNode(group[i], group[partner])) return true;
  }
  return false;
}

CollectiveCost AllreduceCost(const ClusterSpec& cluster, const std::vector<int>& group,
                             int64_t bytes) {
  CheckGroup(group);
  const int p = static_cast<int>(group.size());
  if (p == 1) return Sum("none", {});
  std::vector<CollectiveStep> steps;
  if (bytes < cluster.allreduce_large_min_bytes) {
    for (int d = 1; d < p; d *= 2) steps.push_back(MakeStep(cluster, group, d, bytes, true));
    return Sum("recursive_doubling", std::move(steps));
  }
  // Reduce-scatter, distance 1 first: each step sends (and adds) half of the
  // part still being reduced, n/2, n/4, ... (rounded up).
  int64_t left = bytes;
  std::vector<int64_t> sizes;
  for (int d = 1; d < p; d *= 2) {
    int64_t half = (left + 1) / 2;
    sizes.push_back(half);
    steps.push_back(MakeStep(cluster, group, d, half, true));
    left = half;
  }
  // The mirrored allgather: the same partners in reverse, sizes doubling back.
  int j = static_cast<int>(sizes.size()) - 1;
  for (int d = p / 2; d >= 1; d /= 2, --j) {
    steps.push_back(MakeStep(cluster, group, d, sizes[j], false));
  }
  return Sum("reduce_scatter_allgather", std::move(steps));
}

CollectiveCost AllgatherCost(const ClusterSpec& cluster, const std::vector<int>& group,
                             int64_t total_bytes) {
  CheckGroup(group);
  const int p = static_cast<int>(group.size());
  if (p == 1) return Sum("none", {});
  const int64_t part = (total_bytes + p - 1) / p;
  std::vector<CollectiveStep> steps;
  for (int d = 1; d < p; d *= 2) {
    steps.push_back(MakeStep(cluster, group, d, part * d, false));
  }
  return Sum("allgather_recursive_doubling", std::move(steps));
}

CollectiveCost PointToPointCost(const ClusterSpec& cluster, int from, int to, int64_t bytes) {
  CollectiveStep step;
  step.distance = 0;
  step.bytes = bytes;
  step.inter_node = !cluster.SameNode(from, to);
  const LinkSpec& link = cluster.Link(from, to);
  step.time_s = link.latency_s + static_cast<double>(bytes) / link.PeerBandwidth();
  return Sum("point_to_point", {step});
}

}  // namespace lockstep::partitioner
