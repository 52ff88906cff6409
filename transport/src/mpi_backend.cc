#include "mpi_backend.h"

#include <climits>

#include "mpi_error.h"
#include "tag.h"
#include "wait.h"

namespace lockstep::transport::internal {

MpiComm::~MpiComm() {
  if (comm_ != MPI_COMM_NULL) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
}

Status WaitMpiRequest(MPI_Request* request, const CommOptions& options, std::string_view what) {
  Result<bool> done = PollUntilDone(options, nullptr, [&]() -> Result<bool> {
    int flag = 0;
    LOCKSTEP_MPI_RETURN_IF_ERROR(MPI_Test(request, &flag, MPI_STATUS_IGNORE), what);
    return flag != 0;
  });
  if (!done.ok()) return done.status();
  if (!*done) {
    // The request cannot be cancelled portably (collectives); leave it: the
    // caller ends the job.
    return DeadlineExceeded(
        "{}: not complete after {} ms: a rank did not join; check every "
        "rank's log (raise --comm-timeout if start-up is only slow)",
        what, options.timeout.count());
  }
  return Status::Ok();
}

Result<MpiComm> DuplicateWorld(const CommOptions& options) {
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Request request = MPI_REQUEST_NULL;
  LOCKSTEP_MPI_RETURN_IF_ERROR(MPI_Comm_idup(MPI_COMM_WORLD, &comm, &request),
                               "MPI_Comm_idup(MPI_COMM_WORLD)");
  LOCKSTEP_RETURN_IF_ERROR(WaitMpiRequest(&request, options, "MPI_Comm_idup(MPI_COMM_WORLD)"));
  MpiComm owned(comm);
  LOCKSTEP_MPI_RETURN_IF_ERROR(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN),
                               "MPI_Comm_set_errhandler");
  void* tag_ub = nullptr;
  int found = 0;
  LOCKSTEP_MPI_RETURN_IF_ERROR(MPI_Comm_get_attr(comm, MPI_TAG_UB, &tag_ub, &found),
                               "MPI_Comm_get_attr(MPI_TAG_UB)");
  if (!found || *static_cast<int*>(tag_ub) < static_cast<int>(kMaxTag)) {
    return FailedPrecondition(
        "this MPI's MPI_TAG_UB is {} but lockstep needs 2^31-1 (Open MPI's UCX "
        "PML allows 2^23-1): run with `--mca pml ob1`, or use --transport ucx",
        found ? *static_cast<int*>(tag_ub) : -1);
  }
  return owned;
}

namespace {

class MpiOp final : public PendingOp {
 public:
  MpiOp(bool is_recv, size_t bytes) : is_recv_(is_recv), bytes_(bytes) {}
  ~MpiOp() override {
    if (request_ == MPI_REQUEST_NULL) return;
    // Not complete: withdraw a receive; let a send finish in the background.
    if (is_recv_) MPI_Cancel(&request_);
    MPI_Request_free(&request_);
  }

  MPI_Request* request() { return &request_; }

  Result<bool> Test() override {
    if (request_ == MPI_REQUEST_NULL) return true;
    int flag = 0;
    MPI_Status status;
    int code = MPI_Test(&request_, &flag, &status);
    if (code == MPI_ERR_TRUNCATE ||
        (code == MPI_ERR_IN_STATUS && status.MPI_ERROR == MPI_ERR_TRUNCATE)) {
      return InvalidArgument(
          "the message is larger than the {} bytes posted; both sides must "
          "use the sizes of the schedule",
          bytes_);
    }
    LOCKSTEP_MPI_RETURN_IF_ERROR(code, is_recv_ ? "MPI_Irecv" : "MPI_Isend");
    if (!flag) return false;
    if (is_recv_) {
      int count = 0;
      MPI_Get_count(&status, MPI_BYTE, &count);
      if (static_cast<size_t>(count) != bytes_) {
        return InvalidArgument(
            "the message has {} bytes but {} were posted; both sides must use "
            "the sizes of the schedule",
            count, bytes_);
      }
    }
    return true;
  }

 private:
  MPI_Request request_ = MPI_REQUEST_NULL;
  bool is_recv_;
  size_t bytes_;
};

class MpiBackend final : public Backend {
 public:
  explicit MpiBackend(MpiComm comm) : comm_(std::move(comm)) {
    MPI_Comm_rank(comm_.get(), &rank_);
    MPI_Comm_size(comm_.get(), &size_);
  }

  BackendKind kind() const override { return BackendKind::kMpi; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Result<std::unique_ptr<PendingOp>> StartSend(int peer, uint32_t tag, const void* data,
                                               size_t bytes) override {
    if (bytes > static_cast<size_t>(INT_MAX)) {
      return InvalidArgument("a message of {} bytes is above the 2 GiB limit of the mpi backend",
                             bytes);
    }
    auto op = std::make_unique<MpiOp>(false, bytes);
    LOCKSTEP_MPI_RETURN_IF_ERROR(MPI_Isend(data, static_cast<int>(bytes), MPI_BYTE, peer,
                                           static_cast<int>(tag), comm_.get(), op->request()),
                                 "MPI_Isend");
    return std::unique_ptr<PendingOp>(std::move(op));
  }

  Result<std::unique_ptr<PendingOp>> StartRecv(int peer, uint32_t tag, void* data,
                                               size_t bytes) override {
    if (bytes > static_cast<size_t>(INT_MAX)) {
      return InvalidArgument("a message of {} bytes is above the 2 GiB limit of the mpi backend",
                             bytes);
    }
    auto op = std::make_unique<MpiOp>(true, bytes);
    LOCKSTEP_MPI_RETURN_IF_ERROR(MPI_Irecv(data, static_cast<int>(bytes), MPI_BYTE, peer,
                                           static_cast<int>(tag), comm_.get(), op->request()),
                                 "MPI_Irecv");
    return std::unique_ptr<PendingOp>(std::move(op));
  }

 private:
  MpiComm comm_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace

Result<std::unique_ptr<Backend>> CreateMpiBackend(const CommOptions& options) {
  LOCKSTEP_ASSIGN_OR_RETURN(MpiComm comm, DuplicateWorld(options));
  return std::unique_ptr<Backend>(std::make_unique<MpiBackend>(std::move(comm)));
}

}  // namespace lockstep::transport::internal
