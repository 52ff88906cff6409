// LocalFabric: the `local` backend — many chips in one process, one thread
// per chip, messages copied between threads' buffers.
//
// Used by unit tests and to simulate many chips (64 and more) without
// mpirun. It follows the same matching rules as the MPI and UCX backends
// (exact (sender, tag) matching, per-sender order) and gives the same bits.
//
//   std::vector<Status> results = RunLocal(8, options, [&](Communicator& comm) {
//     return comm.AllReduceSum(data_of(comm.rank()));
//   });
//
// Thread safety: a LocalFabric is shared by its chips' threads; each chip's
// Communicator is used by that chip's thread only.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/transport/communicator.h"
#include "lockstep/transport/options.h"

namespace lockstep::transport {

namespace internal {
class LocalMailbox;
}

class LocalFabric {
 public:
  // num_chips >= 1.
  static Result<std::shared_ptr<LocalFabric>> Create(int num_chips);
  ~LocalFabric();

  int num_chips() const { return static_cast<int>(mailboxes_.size()); }
  internal::LocalMailbox& mailbox(int chip) { return *mailboxes_[chip]; }

 private:
  explicit LocalFabric(int num_chips);
  std::vector<std::unique_ptr<internal::LocalMailbox>> mailboxes_;
};

// Runs fn on num_chips threads, thread r with the world communicator of chip
// r, and returns every chip's Status (index = rank). A chip whose
// communicator cannot be created gets that error. Returns when every thread
// has finished; a chip that waits for a finished peer ends at its deadline.
std::vector<Status> RunLocal(int num_chips, const CommOptions& options,
                             const std::function<Status(Communicator&)>& fn);

}  // namespace lockstep::transport
