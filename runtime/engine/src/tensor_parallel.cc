#include "lockstep/engine/tensor_parallel.h"

#include <utility>

namespace lockstep::runtime {
namespace {

// A sum already complete (the default StartAllReduceSum).
class DoneSum final : public PendingSum {
 public:
  Status Finish() override { return Status::Ok(); }
};

class TransportPendingSum final : public PendingSum {
 public:
  explicit TransportPendingSum(transport::PendingAllReduce pending)
      : pending_(std::move(pending)) {}
  Status Finish() override { return pending_.Finish(); }

 private:
  transport::PendingAllReduce pending_;
};

}  // namespace

Result<std::unique_ptr<PendingSum>> TensorParallelGroup::StartAllReduceSum(std::span<float> data) {
  LOCKSTEP_RETURN_IF_ERROR(AllReduceSum(data));
  return std::unique_ptr<PendingSum>(std::make_unique<DoneSum>());
}

Result<std::unique_ptr<PendingSum>> TransportTpGroup::StartAllReduceSum(std::span<float> data) {
  LOCKSTEP_ASSIGN_OR_RETURN(transport::PendingAllReduce pending, comm_.StartAllReduceSum(data));
  return std::unique_ptr<PendingSum>(std::make_unique<TransportPendingSum>(std::move(pending)));
}

}  // namespace lockstep::runtime
