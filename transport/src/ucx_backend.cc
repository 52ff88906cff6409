#include "ucx_backend.h"

#include <mpi.h>
#include <ucp/api/ucp.h>
#include <ucs/debug/log_def.h>

#include <cstdarg>
#include <unordered_map>
#include <vector>

#include "lockstep/base/log.h"
#include "mpi_backend.h"
#include "mpi_error.h"
#include "wait.h"

namespace lockstep::transport::internal {

namespace {

// The one wrapper for UCX's error space.
Status UcsStatus(ucs_status_t status, std::string_view what) {
  if (status == UCS_OK) return Status::Ok();
  return Unavailable("{}: UCX error: {}", what, ucs_status_string(status));
}

#define LOCKSTEP_UCS_RETURN_IF_ERROR(call, what) LOCKSTEP_RETURN_IF_ERROR(UcsStatus((call), (what)))

struct ContextDeleter {
  void operator()(ucp_context* context) const { ucp_cleanup(context); }
};
struct WorkerDeleter {
  void operator()(ucp_worker* worker) const { ucp_worker_destroy(worker); }
};
struct ConfigDeleter {
  void operator()(ucp_config_t* config) const { ucp_config_release(config); }
};
using UcpContext = std::unique_ptr<ucp_context, ContextDeleter>;
using UcpWorker = std::unique_ptr<ucp_worker, WorkerDeleter>;
using UcpConfig = std::unique_ptr<ucp_config_t, ConfigDeleter>;

// A worker address (released through its worker).
class WorkerAddress {
 public:
  WorkerAddress(ucp_worker_h worker, ucp_address_t* address, size_t length)
      : worker_(worker), address_(address), length_(length) {}
  WorkerAddress(const WorkerAddress&) = delete;
  WorkerAddress& operator=(const WorkerAddress&) = delete;
  ~WorkerAddress() { ucp_worker_release_address(worker_, address_); }
  const ucp_address_t* data() const { return address_; }
  size_t length() const { return length_; }

 private:
  ucp_worker_h worker_;
  ucp_address_t* address_;
  size_t length_;
};

ucs_log_func_rc_t MuteUcxLog(const char*, unsigned, const char*, ucs_log_level_t,
                             const ucs_log_component_config_t*, const char*, va_list) {
  return UCS_LOG_FUNC_RC_STOP;
}

uint64_t WireTag(int sender, uint32_t tag) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(sender)) << 32) | tag;
}
constexpr uint64_t kFullMask = ~uint64_t{0};

// What this rank knows of one peer it talks to: made on the first send to or
// receive from it (or when its worker address arrives first), so a rank holds
// state for the peers its schedule names only, never p - 1 of them.
struct Peer {
  int rank = -1;
  ucp_ep_h ep = nullptr;
  // What the endpoint's error handler saw (UCP_ERR_HANDLING_MODE_PEER
  // endpoints only); UCS_OK while healthy. Operations with a failed peer fail
  // with a message naming it, instead of UCX aborting the process.
  ucs_status_t failure = UCS_OK;
  std::vector<char> address;  // its worker address, once received (never empty then)
  bool address_sent = false;  // this rank's address was sent to it
};

// Worker addresses exchanged point to point, on demand (docs/transport.md,
// "Connections"): a rank that needs a peer's address sends its own to that
// peer and waits for the peer's; a rank that receives an address it has not
// answered answers with its own. Peer sets are symmetric (a message has a
// sender and a receiver, and both make an endpoint), so each pair exchanges
// one message each way, and a rank receives the addresses of its peers only.
//
// Progress: an address is answered only while its owner is inside this
// backend, so every wait of the backend serves (Serve): the waits for an
// address, for a send or receive (UcxOp::Test, once the op has been pending
// a while) and the teardown barrier. A rank that computes answers when it
// next waits; cycles of ranks each waiting for the next one's address cannot
// deadlock because each serves while it waits.
class AddressBook {
 public:
  // Tag of the address messages on the backend's private MPI communicator
  // (which carries nothing else but the teardown barrier).
  static constexpr int kTag = 1;
  // A worker address is a few hundred bytes; anything beyond this is not one.
  static constexpr int kMaxAddressBytes = 1 << 20;

  AddressBook(MPI_Comm comm, int rank, int size, const ucp_address_t* mine, size_t length)
      : comm_(comm),
        rank_(rank),
        size_(size),
        mine_(reinterpret_cast<const char*>(mine)),
        my_length_(static_cast<int>(length)) {}

  // The peer's state, made on first use.
  Peer& Get(int peer) {
    std::unique_ptr<Peer>& p = peers_[peer];
    if (p == nullptr) {
      p = std::make_unique<Peer>();
      p->rank = peer;
    }
    return *p;
  }

  // Receives every address that has arrived and answers each with this
  // rank's own if not yet sent; completes finished sends.
  Status Serve() {
    while (true) {
      int flag = 0;
      MPI_Status status;
      LOCKSTEP_MPI_RETURN_IF_ERROR(MPI_Iprobe(MPI_ANY_SOURCE, kTag, comm_, &flag, &status),
                                   "MPI_Iprobe(ucx address)");
      if (!flag) break;
      int count = 0;
      LOCKSTEP_MPI_RETURN_IF_ERROR(MPI_Get_count(&status, MPI_BYTE, &count),
                                   "MPI_Get_count(ucx address)");
      const int source = status.MPI_SOURCE;
      if (count <= 0 || count > kMaxAddressBytes || source < 0 || source >= size_) {
        return Internal("rank {} sent a UCX worker address of {} bytes", source, count);
      }
      Peer& peer = Get(source);
      peer.address.resize(static_cast<size_t>(count));
      LOCKSTEP_MPI_RETURN_IF_ERROR(
          MPI_Recv(peer.address.data(), count, MPI_BYTE, source, kTag, comm_, MPI_STATUS_IGNORE),
          "MPI_Recv(ucx address)");
      bytes_received_ += static_cast<uint64_t>(count);
      LOCKSTEP_RETURN_IF_ERROR(SendMine(peer));
    }
    return CompleteSends();
  }

  // Sends this rank's address to `peer` unless already sent.
  Status SendMine(Peer& peer) {
    if (peer.address_sent) return Status::Ok();
    MPI_Request request = MPI_REQUEST_NULL;
    LOCKSTEP_MPI_RETURN_IF_ERROR(
        MPI_Isend(mine_, my_length_, MPI_BYTE, peer.rank, kTag, comm_, &request),
        "MPI_Isend(ucx address)");
    peer.address_sent = true;
    sends_.push_back(request);
    return Status::Ok();
  }

  // Tests the address sends still in flight (they are small: eager).
  Status CompleteSends() {
    for (size_t i = 0; i < sends_.size();) {
      int done = 0;
      LOCKSTEP_MPI_RETURN_IF_ERROR(MPI_Test(&sends_[i], &done, MPI_STATUS_IGNORE),
                                   "MPI_Test(ucx address send)");
      if (done) {
        sends_[i] = sends_.back();
        sends_.pop_back();
      } else {
        ++i;
      }
    }
    return Status::Ok();
  }

  // Releases the sends still in flight at teardown (MPI delivers them).
  void ReleaseSends() {
    for (MPI_Request& request : sends_) MPI_Request_free(&request);
    sends_.clear();
  }

  uint64_t bytes_received() const { return bytes_received_; }
  int rank() const { return rank_; }
  int size() const { return size_; }

 private:
  MPI_Comm comm_;
  int rank_;
  int size_;
  const char* mine_;  // owned by the backend's WorkerAddress
  int my_length_;
  std::unordered_map<int, std::unique_ptr<Peer>> peers_;  // stable addresses
  std::vector<MPI_Request> sends_;
  uint64_t bytes_received_ = 0;
};

class UcxOp final : public PendingOp {
 public:
  UcxOp(ucp_worker_h worker, bool is_recv, size_t bytes, const Peer* peer, AddressBook* book)
      : worker_(worker), is_recv_(is_recv), bytes_(bytes), peer_(peer), book_(book) {}
  ~UcxOp() override {
    if (request_ == nullptr) return;
    // Not complete: withdraw a receive; a send is released and may still be
    // delivered.
    if (is_recv_) ucp_request_cancel(worker_, request_);
    ucp_request_free(request_);
  }

  ucp_tag_recv_info_t* info() { return &info_; }

  // Takes the result of ucp_tag_*_nbx.
  Status Started(ucs_status_ptr_t result) {
    if (UCS_PTR_IS_ERR(result)) {
      done_ = true;
      return UcsStatus(UCS_PTR_STATUS(result), is_recv_ ? "ucp_tag_recv_nbx" : "ucp_tag_send_nbx");
    }
    if (result == nullptr) {
      done_ = true;  // completed in place (for a receive, info_ is filled)
    } else {
      request_ = result;
    }
    return Status::Ok();
  }

  Result<bool> Test() override {
    if (!done_) {
      ucp_worker_progress(worker_);
      ucs_status_t status = is_recv_ ? ucp_tag_recv_request_test(request_, &info_)
                                     : ucp_request_check_status(request_);
      if (status == UCS_INPROGRESS) {
        // A receive from a peer whose connection failed never completes:
        // say so now rather than at the deadline.
        if (peer_->failure != UCS_OK) return PeerFailed(peer_->failure);
        // An op pending for a while may be waiting for a rank that waits for
        // this rank's address: answer (AddressBook). Ops that complete at
        // once (the steady state) never pay for the probe.
        if (++tests_ > kTestsBeforeServing) LOCKSTEP_RETURN_IF_ERROR(book_->Serve());
        return false;
      }
      ucp_request_free(request_);
      request_ = nullptr;
      done_ = true;
      if (status != UCS_OK && peer_->failure != UCS_OK) return PeerFailed(peer_->failure);
      if (status == UCS_ERR_MESSAGE_TRUNCATED) {
        return InvalidArgument(
            "the message is larger than the {} bytes posted; both sides must "
            "use the sizes of the schedule",
            bytes_);
      }
      LOCKSTEP_UCS_RETURN_IF_ERROR(status, is_recv_ ? "receive" : "send");
    }
    if (is_recv_ && info_.length != bytes_) {
      return InvalidArgument(
          "the message has {} bytes but {} were posted; both sides must use "
          "the sizes of the schedule",
          info_.length, bytes_);
    }
    return true;
  }

 private:
  Status PeerFailed(ucs_status_t status) const {
    return Unavailable("rank {} failed: its UCX connection reports '{}'", peer_->rank,
                       ucs_status_string(status));
  }

  static constexpr unsigned kTestsBeforeServing = 32;
  ucp_worker_h worker_;
  bool is_recv_;
  size_t bytes_;
  const Peer* peer_;
  AddressBook* book_;
  unsigned tests_ = 0;
  void* request_ = nullptr;
  bool done_ = false;
  ucp_tag_recv_info_t info_{};
};

class UcxBackend final : public Backend {
 public:
  UcxBackend(MpiComm bootstrap, UcpContext context, UcpWorker worker, const CommOptions& options)
      : bootstrap_(std::move(bootstrap)),
        context_(std::move(context)),
        worker_(std::move(worker)),
        options_(options) {
    MPI_Comm_rank(bootstrap_.get(), &rank_);
    MPI_Comm_size(bootstrap_.get(), &size_);
  }

  ~UcxBackend() override {
    // Every rank has finished its receives once all have entered the
    // barrier. A rank still making an endpoint to this one may wait for
    // its address meanwhile: answer while waiting.
    MPI_Request request = MPI_REQUEST_NULL;
    if (book_ != nullptr && MPI_Ibarrier(bootstrap_.get(), &request) == MPI_SUCCESS) {
      Result<bool> done = PollUntilDone(options_, nullptr, [&]() -> Result<bool> {
        LOCKSTEP_RETURN_IF_ERROR(book_->Serve());
        int flag = 0;
        LOCKSTEP_MPI_RETURN_IF_ERROR(MPI_Test(&request, &flag, MPI_STATUS_IGNORE),
                                     "ucx teardown barrier");
        return flag != 0;
      });
      if (!done.ok()) {
        LOCKSTEP_LOG_WARN("transport", "{}", done.status().message());
      } else if (!*done) {
        LOCKSTEP_LOG_WARN("transport",
                          "ucx teardown barrier: not complete after {} ms: a rank did not join",
                          options_.timeout.count());
      }
    }
    if (book_ != nullptr) book_->ReleaseSends();
    for (ucp_ep_h ep : endpoints_) {
      ucp_request_param_t param{};
      param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
      param.flags = UCP_EP_CLOSE_FLAG_FORCE;
      ucs_status_ptr_t close = ucp_ep_close_nbx(ep, &param);
      if (close != nullptr && !UCS_PTR_IS_ERR(close)) {
        while (ucp_request_check_status(close) == UCS_INPROGRESS)
          ucp_worker_progress(worker_.get());
        ucp_request_free(close);
      }
    }
    book_.reset();
    address_.reset();
  }

  // No exchange here: addresses are exchanged with the peers the schedule
  // names when it first names them (Endpoint).
  Status Connect() {
    ucp_address_t* address = nullptr;
    size_t length = 0;
    LOCKSTEP_UCS_RETURN_IF_ERROR(ucp_worker_get_address(worker_.get(), &address, &length),
                                 "ucp_worker_get_address");
    address_ = std::make_unique<WorkerAddress>(worker_.get(), address, length);
    book_ = std::make_unique<AddressBook>(bootstrap_.get(), rank_, size_, address_->data(),
                                          address_->length());
    return Status::Ok();
  }

  uint64_t bootstrap_bytes_received() const override { return book_->bytes_received(); }
  int connected_peers() const override { return static_cast<int>(endpoints_.size()); }

  BackendKind kind() const override { return BackendKind::kUcx; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Result<std::unique_ptr<PendingOp>> StartSend(int peer, uint32_t tag, const void* data,
                                               size_t bytes) override {
    if (peer == rank_) return InvalidArgument("the ucx backend does not send to itself");
    LOCKSTEP_ASSIGN_OR_RETURN(Peer * state, Endpoint(peer));
    if (state->failure != UCS_OK) {
      return Unavailable("rank {} failed: its UCX connection reports '{}'", peer,
                         ucs_status_string(state->failure));
    }
    auto op = std::make_unique<UcxOp>(worker_.get(), false, bytes, state, book_.get());
    ucp_request_param_t param{};
    LOCKSTEP_RETURN_IF_ERROR(
        op->Started(ucp_tag_send_nbx(state->ep, data, bytes, WireTag(rank_, tag), &param)));
    return std::unique_ptr<PendingOp>(std::move(op));
  }

  Result<std::unique_ptr<PendingOp>> StartRecv(int peer, uint32_t tag, void* data,
                                               size_t bytes) override {
    if (peer == rank_) return InvalidArgument("the ucx backend does not receive from itself");
    // Tag matching needs no endpoint, but the receiver makes one all the
    // same: its error handler is what reports a peer that dies while this
    // rank only receives from it (the last stage's outcomes on stage 0).
    LOCKSTEP_ASSIGN_OR_RETURN(Peer * state, Endpoint(peer));
    auto op = std::make_unique<UcxOp>(worker_.get(), true, bytes, state, book_.get());
    ucp_request_param_t param{};
    // NO_IMM_CMPL: with UCX 1.13, a receive completed in place from the
    // unexpected queue left recv_info.tag_info->length at 0 (seen when one
    // sender sends the same buffer with the same tag to two ranks), so the
    // size check needs a request to query.
    param.op_attr_mask = UCP_OP_ATTR_FIELD_RECV_INFO | UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
    param.recv_info.tag_info = op->info();
    LOCKSTEP_RETURN_IF_ERROR(op->Started(
        ucp_tag_recv_nbx(worker_.get(), data, bytes, WireTag(peer, tag), kFullMask, &param)));
    return std::unique_ptr<PendingOp>(std::move(op));
  }

 private:
  // UCX calls this from ucp_worker_progress (this thread) when the
  // connection to a peer fails.
  static void OnPeerError(void* arg, ucp_ep_h /*ep*/, ucs_status_t status) {
    Peer& peer = *static_cast<Peer*>(arg);
    if (peer.failure == UCS_OK) {
      peer.failure = status;
      LOCKSTEP_LOG_WARN("transport", "rank {}: the UCX connection failed: {}", peer.rank,
                        ucs_status_string(status));
    }
  }

  // The peer's worker address: sent for on first need (AddressBook), waited
  // for with the deadline while answering others.
  Status AwaitAddress(Peer& peer) {
    if (!peer.address.empty()) return Status::Ok();
    LOCKSTEP_RETURN_IF_ERROR(book_->SendMine(peer));
    Result<bool> done = PollUntilDone(options_, nullptr, [&]() -> Result<bool> {
      ucp_worker_progress(worker_.get());
      LOCKSTEP_RETURN_IF_ERROR(book_->Serve());
      return !peer.address.empty();
    });
    if (!done.ok()) return done.status();
    if (!*done) {
      return DeadlineExceeded(
          "connecting to world rank {} over ucx: its UCX worker address did not arrive within "
          "{} ms: that rank stopped answering or is far behind; check its log (raise "
          "--comm-timeout if start-up is only slow)",
          peer.rank, options_.timeout.count());
    }
    return Status::Ok();
  }

  // The endpoint to `peer`, made on the first send to or receive from it.
  // Peer error handling where the transport has it (tcp, ib): a peer that
  // dies is reported through OnPeerError and becomes an error naming it.
  // Without it UCX aborts the survivor with a fatal error and a backtrace.
  // UCX 1.13's shared-memory transports do not support it (ucp_ep_create:
  // "Destination is unreachable" with UCX_TLS=self,sm); there a failed peer
  // is detected by the deadline of every wait, as on the other backends.
  Result<Peer*> Endpoint(int peer) {
    if (peer < 0 || peer >= size_) {
      return InvalidArgument("world rank {} is outside the job's {} ranks", peer, size_);
    }
    Peer& state = book_->Get(peer);
    if (state.ep != nullptr) return &state;
    LOCKSTEP_RETURN_IF_ERROR(AwaitAddress(state));
    ucp_ep_params_t params{};
    params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                        UCP_EP_PARAM_FIELD_ERR_HANDLER;
    params.address = reinterpret_cast<const ucp_address_t*>(state.address.data());
    params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    params.err_handler.cb = &OnPeerError;
    params.err_handler.arg = &state;
    // UCX logs an ERROR when no transport has peer failure handling; that
    // is an expected answer here, so the probe runs with UCX's log muted.
    ucs_log_push_handler(&MuteUcxLog);
    const ucs_status_t with_handling = ucp_ep_create(worker_.get(), &params, &state.ep);
    ucs_log_pop_handler();
    if (with_handling != UCS_OK) {
      state.ep = nullptr;
      params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
      params.err_mode = UCP_ERR_HANDLING_MODE_NONE;
      LOCKSTEP_UCS_RETURN_IF_ERROR(ucp_ep_create(worker_.get(), &params, &state.ep),
                                   fmt::format("ucp_ep_create(world rank {})", peer));
    }
    endpoints_.push_back(state.ep);
    return &state;
  }

  MpiComm bootstrap_;
  UcpContext context_;
  UcpWorker worker_;
  CommOptions options_;
  std::unique_ptr<WorkerAddress> address_;  // this rank's, sent to each peer
  std::unique_ptr<AddressBook> book_;       // null until Connect
  std::vector<ucp_ep_h> endpoints_;         // made so far, one per peer messaged
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace

Result<std::unique_ptr<Backend>> CreateUcxBackend(const CommOptions& options) {
  LOCKSTEP_ASSIGN_OR_RETURN(MpiComm bootstrap, DuplicateWorld(options));

  ucp_config_t* raw_config = nullptr;
  LOCKSTEP_UCS_RETURN_IF_ERROR(ucp_config_read(nullptr, nullptr, &raw_config),
                               "ucp_config_read (check the UCX_* environment variables)");
  UcpConfig config(raw_config);
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES;
  params.features = UCP_FEATURE_TAG;
  ucp_context_h raw_context = nullptr;
  LOCKSTEP_UCS_RETURN_IF_ERROR(ucp_init(&params, config.get(), &raw_context),
                               "ucp_init (check UCX_TLS: e.g. self,sm or self,tcp)");
  UcpContext context(raw_context);

  ucp_worker_params_t worker_params{};
  worker_params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  worker_params.thread_mode = UCS_THREAD_MODE_SINGLE;
  ucp_worker_h raw_worker = nullptr;
  LOCKSTEP_UCS_RETURN_IF_ERROR(ucp_worker_create(context.get(), &worker_params, &raw_worker),
                               "ucp_worker_create");
  UcpWorker worker(raw_worker);

  auto backend = std::make_unique<UcxBackend>(std::move(bootstrap), std::move(context),
                                              std::move(worker), options);
  LOCKSTEP_RETURN_IF_ERROR(backend->Connect());
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace lockstep::transport::internal
