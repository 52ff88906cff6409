// Control-plane collectives on small records: AllReduce (a binomial tree to
// rank 0 with a caller's combine, then Broadcast) and Gather (a binomial
// tree to the root). The tree is the mirror of Broadcast's: with v = (rank -
// root) mod p, a rank's children are v + m for every power of two m below
// lowbit(v) (the root: below p), and child v + m holds the blocks [v + m,
// v + 2m) (cut at p). A rank receives from all its children in one step,
// then sends to its parent v - lowbit(v): log2(p) levels, and only the
// blocks of its own subtree. Every message of one call uses step 0 (as
// Broadcast does): a pair of ranks exchanges one message per call, and the
// receive and its send must carry the same tag.
#include <algorithm>
#include <bit>
#include <cstring>

#include "collective_run.h"

namespace lockstep::transport {

using internal::CollectiveRun;
using Transfer = CollectiveRun::Transfer;

namespace {

// Children of relative rank v in a tree of p (smallest first), and the
// number of blocks child v + m holds.
std::vector<int> Children(int v, int p) {
  const int limit = v == 0 ? static_cast<int>(std::bit_ceil(static_cast<unsigned>(p))) : (v & -v);
  std::vector<int> out;
  for (int m = 1; m < limit && v + m < p; m *= 2) out.push_back(m);
  return out;
}

int SubtreeBlocks(int v, int p) {
  const int limit = v == 0 ? p : (v & -v);
  return std::min(limit, p - v);
}

}  // namespace

Status Communicator::AllReduce(std::span<std::byte> data, const Combine& combine) {
  const int p = size();
  if (p == 1) return Status::Ok();
  {
    CollectiveRun run(*this, "allreduce-records");
    const int v = rank();
    const size_t n = data.size();
    const std::vector<int> children = Children(v, p);
    if (!children.empty()) {
      std::byte* scratch = run.Scratch(children.size() * n);
      std::vector<Transfer> recvs;
      for (size_t i = 0; i < children.size(); ++i) {
        recvs.push_back(Transfer::Recv(v + children[i], scratch + i * n, n));
      }
      LOCKSTEP_RETURN_IF_ERROR(run.Step(0, recvs));
      // Children in increasing m: each covers the next block of ranks.
      for (size_t i = 0; i < children.size(); ++i) {
        combine(data, std::span<const std::byte>(scratch + i * n, n));
      }
    }
    if (v != 0) {
      Transfer send = Transfer::Send(v - (v & -v), data.data(), n);
      LOCKSTEP_RETURN_IF_ERROR(run.Step(0, std::span(&send, 1)));
    }
  }
  return Broadcast(data, 0);
}

Status Communicator::Gather(std::span<const std::byte> mine, std::span<std::byte> all, int root) {
  CollectiveRun run(*this, "gather");
  const int p = size();
  if (root < 0 || root >= p) {
    return InvalidArgument("gather in group '{}': root {} is not a member (0..{})", name_, root,
                           p - 1);
  }
  const size_t n = mine.size();
  const int v = (rank() - root + p) % p;
  if (v == 0 && all.size() != n * static_cast<size_t>(p)) {
    return InvalidArgument("gather in group '{}': the output has {} bytes but {} ranks x {} bytes",
                           name_, all.size(), p, n);
  }
  const auto member = [&](int relative) { return (relative + root) % p; };
  // The root gathers straight into `all`, rotated so that relative block i
  // lands at member(i); others into scratch holding their subtree.
  const int blocks = SubtreeBlocks(v, p);
  std::byte* buffer = nullptr;
  std::vector<std::byte> rooted;  // the root's relative order, when root != 0
  if (v == 0) {
    if (root == 0) {
      buffer = all.data();
    } else {
      rooted.resize(n * p);
      buffer = rooted.data();
    }
  } else {
    buffer = run.Scratch(n * blocks);
  }
  if (n > 0) std::memmove(buffer, mine.data(), n);
  const std::vector<int> children = Children(v, p);
  if (!children.empty()) {
    std::vector<Transfer> recvs;
    for (int m : children) {
      recvs.push_back(Transfer::Recv(member(v + m), buffer + m * n, n * SubtreeBlocks(v + m, p)));
    }
    LOCKSTEP_RETURN_IF_ERROR(run.Step(0, recvs));
  }
  if (v != 0) {
    Transfer send = Transfer::Send(member(v - (v & -v)), buffer, n * blocks);
    LOCKSTEP_RETURN_IF_ERROR(run.Step(0, std::span(&send, 1)));
  } else if (root != 0 && n > 0) {  // n == 0: nothing to place (and memcpy wants pointers)
    for (int i = 0; i < p; ++i) {
      std::memcpy(all.data() + member(i) * n, rooted.data() + i * n, n);
    }
  }
  return Status::Ok();
}

}  // namespace lockstep::transport
