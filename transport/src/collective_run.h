// CollectiveRun: the frame of one collective call — its call number, the
// steps it posts (receives first, then sends), the deadline of each step,
// and the prefix of its error messages:
//   "allreduce #4 in group 'tp0' (4 ranks): step 1: recv of 4096 bytes from
//    rank 3 (world rank 7) over mpi: not complete after 300 s: ..."
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "lockstep/transport/communicator.h"
#include "wait.h"
#include "world.h"

namespace lockstep::transport::internal {

class CollectiveRun {
 public:
  // One transfer of a step: a receive from or a send to member `peer`.
  struct Transfer {
    bool is_recv = false;
    int peer = 0;
    void* data = nullptr;  // read for a send
    size_t bytes = 0;
    static Transfer Recv(int peer, void* data, size_t bytes) { return {true, peer, data, bytes}; }
    static Transfer Send(int peer, const void* data, size_t bytes) {
      return {false, peer, const_cast<void*>(data), bytes};
    }
  };

  // Takes the communicator's next collective call number.
  CollectiveRun(Communicator& comm, const char* what);

  int rank() const { return comm_.rank_; }
  int size() const { return comm_.size(); }

  // Posts every receive, then every send, of step `step` and waits for all
  // of them (one deadline). Errors carry this collective's prefix.
  Status Step(int step, std::span<const Transfer> transfers);
  // Step in two halves: Post starts the transfers and returns; WaitPosted
  // waits for them (the deadline starts then). Between the two the caller
  // may compute (Communicator::StartAllReduceSum).
  Status Post(int step, std::span<const Transfer> transfers);
  Status WaitPosted();

  // At least `bytes` bytes of scratch, shared by the world's collectives.
  std::byte* Scratch(size_t bytes);

 private:
  Status Prefixed(const Status& status) const;

  Communicator& comm_;
  const char* what_;
  uint64_t call_;
  std::vector<OpSlot> slots_;
};

}  // namespace lockstep::transport::internal
