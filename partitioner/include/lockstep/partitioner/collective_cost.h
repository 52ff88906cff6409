// Alpha-beta times of the communication transport/ actually runs (docs/determinism.md
// and docs/architecture.md, "Process layout"): what a collective costs is the sum of its steps, each
// step `latency + bytes / bandwidth` on the link between the two partners
// (intra- or inter-node), plus the local additions of a reducing step.
//
// Groups are lists of world ranks; group index i pairs with i XOR 2^j at step
// j (distance 1 first), so the group size must be a power of two. A step is
// as slow as its slowest pair: when any pair of a step crosses nodes, the
// step runs at the inter-node link's figures.
//
//   allreduce, bytes < allreduce_large_min_bytes: recursive doubling,
//     log2(p) steps, each exchanging all n bytes and adding them.
//   allreduce, larger: reduce-scatter (step j at distance 2^j exchanges and
//     adds n / 2^(j+1) bytes) then the mirrored allgather (the same distances
//     and sizes): 2 log2(p) steps, 2 n (1 - 1/p) bytes sent per rank.
//   allgather of n bytes in p equal-ish parts: recursive doubling, step j at
//     distance 2^j sends 2^j * ceil(n / p) bytes.
//   point to point: latency + n / bandwidth.
//
// The local addition of a reducing step of b bytes reads 2b and writes b at
// the chip's memory bandwidth.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lockstep/partitioner/cluster_spec.h"

namespace lockstep::partitioner {

struct CollectiveStep {
  int distance = 0;         // partner = index XOR distance
  int64_t bytes = 0;        // sent (and received) by each rank in this step
  bool inter_node = false;  // the step's slowest pair crosses nodes
  bool reduces = false;     // the received bytes are added locally
  double time_s = 0;        // latency + bytes / bandwidth (+ local addition)
};

struct CollectiveCost {
  std::string algorithm;  // "none", "recursive_doubling", "reduce_scatter_allgather",
                          // "allgather_recursive_doubling", "point_to_point"
  std::vector<CollectiveStep> steps;
  double time_s = 0;       // sum of the steps
  int64_t bytes_sent = 0;  // per rank, all steps
};

// `group`: world ranks in group order (size a power of two; size 1 costs 0).
// `bytes`: the size of the vector every rank contributes and receives.
CollectiveCost AllreduceCost(const ClusterSpec& cluster, const std::vector<int>& group,
                             int64_t bytes);
// `total_bytes`: the size of the gathered result.
CollectiveCost AllgatherCost(const ClusterSpec& cluster, const std::vector<int>& group,
                             int64_t total_bytes);
CollectiveCost PointToPointCost(const ClusterSpec& cluster, int from, int to, int64_t bytes);

// True if any pair (i, i XOR distance) of `group` lies on different nodes.
bool StepCrossesNodes(const ClusterSpec& cluster, const std::vector<int>& group, int distance);

}  // namespace lockstep::partitioner
