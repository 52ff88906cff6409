// Broadcast: a binomial tree rooted at `root`, raw bytes. With v = (rank -
// root) mod p, a rank receives from v - lowbit(v) and then sends to v + m for
// every power of two m below lowbit(v) (for the root: below p), largest first,
// so the far half of the tree starts earliest.
#include <bit>

#include "collective_run.h"

namespace lockstep::transport {

using internal::CollectiveRun;
using Transfer = CollectiveRun::Transfer;

Status Communicator::Broadcast(std::span<std::byte> data, int root) {
  CollectiveRun run(*this, "broadcast");
  const int p = size();
  if (root < 0 || root >= p) {
    return InvalidArgument("broadcast in group '{}': root {} is not a member (0..{})", name_, root,
                           p - 1);
  }
  if (p == 1) return Status::Ok();
  const int v = (rank() - root + p) % p;
  const auto member = [&](int relative) { return (relative + root) % p; };
  int limit = static_cast<int>(std::bit_ceil(static_cast<unsigned>(p)));
  if (v != 0) {
    const int low = v & -v;
    Transfer recv = Transfer::Recv(member(v - low), data.data(), data.size());
    LOCKSTEP_RETURN_IF_ERROR(run.Step(0, std::span(&recv, 1)));
    limit = low;
  }
  std::vector<Transfer> sends;
  for (int m = limit / 2; m >= 1; m /= 2) {
    if (v + m < p) sends.push_back(Transfer::Send(member(v + m), data.data(), data.size()));
  }
  if (!sends.empty()) LOCKSTEP_RETURN_IF_ERROR(run.Step(0, sends));
  return Status::Ok();
}

}  // namespace lockstep::transport
