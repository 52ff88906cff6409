// AllGather: raw bytes, no arithmetic, so any order gives the same result.
// Power-of-two groups: recursive doubling (partner = rank XOR 2^j, j = 0, 1,
// ...), log2(p) steps, each doubling the contiguous run of blocks a rank
// holds. Other sizes: a ring, p - 1 steps, block (r - k) mod p travelling to
// the right neighbour at step k.
#include <bit>
#include <cstring>

#include "collective_run.h"

namespace lockstep::transport {

using internal::CollectiveRun;
using Transfer = CollectiveRun::Transfer;

Status Communicator::AllGather(std::span<const std::byte> mine, std::span<std::byte> all) {
  CollectiveRun run(*this, "allgather");
  const int p = size();
  const int r = rank();
  const size_t block = mine.size();
  if (all.size() != block * static_cast<size_t>(p)) {
    return InvalidArgument(
        "allgather in group '{}': the output has {} bytes but {} ranks x {} "
        "bytes were expected",
        name_, all.size(), p, block);
  }
  std::byte* out = all.data();
  if (block > 0 && out + r * block != mine.data())
    std::memmove(out + r * block, mine.data(), block);
  if (p == 1 || block == 0) return Status::Ok();
  Transfer transfers[2];
  if (std::has_single_bit(static_cast<unsigned>(p))) {
    for (int j = 0; (1 << j) < p; ++j) {
      const int d = 1 << j;
      const int partner = r ^ d;
      const size_t my_first = static_cast<size_t>(r & ~(d - 1));
      const size_t their_first = static_cast<size_t>(partner & ~(d - 1));
      transfers[0] = Transfer::Recv(partner, out + their_first * block, d * block);
      transfers[1] = Transfer::Send(partner, out + my_first * block, d * block);
      LOCKSTEP_RETURN_IF_ERROR(run.Step(j, transfers));
    }
    return Status::Ok();
  }
  const int right = (r + 1) % p;
  const int left = (r - 1 + p) % p;
  for (int k = 0; k < p - 1; ++k) {
    const int send_block = (r - k + p) % p;
    const int recv_block = (r - k - 1 + 2 * p) % p;
    transfers[0] = Transfer::Recv(left, out + recv_block * block, block);
    transfers[1] = Transfer::Send(right, out + send_block * block, block);
    LOCKSTEP_RETURN_IF_ERROR(run.Step(k, transfers));
  }
  return Status::Ok();
}

}  // namespace lockstep::transport
