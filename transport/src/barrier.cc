// Barrier: dissemination. At step k each rank sends an empty message to
// rank + 2^k and receives one from rank - 2^k (mod p); after ceil(log2 p)
// steps every rank has heard, transitively, from every other.
#include "collective_run.h"

namespace lockstep::transport {

using internal::CollectiveRun;
using Transfer = CollectiveRun::Transfer;

Status Communicator::Barrier() {
  CollectiveRun run(*this, "barrier");
  const int p = size();
  const int r = rank();
  std::byte none[1];
  for (int k = 0, d = 1; d < p; ++k, d *= 2) {
    Transfer transfers[2] = {Transfer::Recv((r - d + p) % p, none, 0),
                             Transfer::Send((r + d) % p, none, 0)};
    LOCKSTEP_RETURN_IF_ERROR(run.Step(k, transfers));
  }
  return Status::Ok();
}

}  // namespace lockstep::transport
