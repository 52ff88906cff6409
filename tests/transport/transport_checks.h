// Checks shared by the single-process (local backend) and the multi-rank
// (mpi, ucx) transport tests. Each runs on every member of a communicator and
// reports with GoogleTest's EXPECT_* (thread-safe), naming the rank.
//
// The reference for every collective is a single-process evaluation: each
// rank can generate every rank's input (TestValue), so it computes the
// expected result on its own and compares bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "lockstep/transport/communicator.h"

namespace lockstep::transport::testing {

// A float of any sign with exponents in [-12, 12] and a full mantissa, from
// (seed, rank, index): sums of these depend on the order of addition.
float TestValue(uint32_t seed, int rank, size_t index);

// The canonical tree of docs/determinism.md over `leaves` (any count): the
// balanced tree of the next power of two, pairs in index order, missing
// leaves pruned. Written independently of transport/ (recursive).
float CanonicalTreeSum(std::span<const float> leaves);

// AllReduceSum of n floats; compares every element with CanonicalTreeSum over
// the members' inputs.
void CheckAllReduce(Communicator& comm, size_t n, AllReduceAlgorithm algorithm, uint32_t seed);

// StartAllReduceSum + Finish of n floats, with a Broadcast run between the
// two (another collective while the sum is in flight) and a second sum
// started on other data before the first finishes: the canonical tree's
// bits, as AllReduceSum gives.
void CheckSplitAllReduce(Communicator& comm, size_t n, uint32_t seed);

// The same inputs summed serially from the last rank down differ from the tree somewhere (so the
// allreduce check can fail) when the group has 3 or more ranks.
void CheckOrderMatters(const Communicator& comm, size_t n, uint32_t seed);

// AllGather of `block` bytes per rank.
void CheckAllGather(Communicator& comm, size_t block, uint32_t seed);

// Broadcast of `bytes` bytes from `root`.
void CheckBroadcast(Communicator& comm, size_t bytes, int root, uint32_t seed);

// AllReduce of records with a combine that is associative but not
// commutative (2x2 matrix products mod 2^64): every rank must get the
// product in rank order. Gather of `block` bytes per rank to every root.
// Both also check what the rank received: at most log2(p) + 1 records for
// AllReduce, its subtree's blocks for Gather.
void CheckAllReduceRecords(Communicator& comm, uint32_t seed);
void CheckGather(Communicator& comm, size_t block, uint32_t seed);

// Barrier: rank 0 enters late; nobody leaves before it entered.
void CheckBarrier(Communicator& comm);

// Streams: every rank sends `messages` messages on each of 3 streams to the
// next rank (ring) and receives from the previous one, all receives
// pre-posted, sends interleaved across streams, sizes varying per message
// (including 0 and `max_bytes`); contents checked bit for bit.
void CheckInterleavedStreams(Communicator& comm, int messages, size_t max_bytes);

// A receive posted with the wrong size fails with InvalidArgument naming the
// stream, the sequence and the sizes (group of 2 or more).
void CheckStreamSizeMismatch(Communicator& comm);

// A tensor-parallel row-parallel matmul: 64 canonical segment sums, rank r of
// a power-of-two group holding the subtree of segments [r*64/p, (r+1)*64/p);
// the allreduce of the subtree sums equals the 64-leaf tree bit for bit.
void CheckTensorParallelSubtrees(Communicator& comm, size_t outputs, uint32_t seed);

// Splits the world by a tp x pp layout (tp the largest power of two dividing
// the size, at most 4), runs an allreduce in each tp group and a stream along
// each pp group, and checks both.
void CheckLayoutGroups(Communicator& world);

// With a communicator whose timeout is short: member `silent` skips an
// allreduce; member `silent ^ 1` (its step-0 partner) must fail with
// DeadlineExceeded naming "allreduce", the step and the silent rank.
// Returns after every member is done (the silent one waits for the timeout).
void CheckSilentPeerTimesOut(Communicator& comm, int silent);

}  // namespace lockstep::transport::testing
