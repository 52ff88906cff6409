#include "lockstep/transport/communicator.h"

#include <algorithm>
#include <cstdlib>

#include "local_backend.h"
#include "lockstep/base/log.h"
#include "lockstep/transport/local_fabric.h"
#include "lockstep/transport/mpi_session.h"
#include "mpi_backend.h"
#include "tag.h"
#include "wait.h"
#include "world.h"
#ifdef LOCKSTEP_HAVE_UCX
#include "ucx_backend.h"
#endif

namespace lockstep::transport {

namespace {
std::vector<int> Iota(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

Status CheckOptions(const CommOptions& options) {
  if (options.timeout.count() <= 0) {
    return InvalidArgument("--comm-timeout must be positive (got {} ms)", options.timeout.count());
  }
  return Status::Ok();
}
}  // namespace

Communicator::Communicator(std::shared_ptr<internal::World> world, std::vector<int> members,
                           int rank, uint32_t context, std::string name)
    : world_(std::move(world)),
      members_(std::move(members)),
      rank_(rank),
      context_(context),
      name_(std::move(name)) {}

Communicator::Communicator(Communicator&&) noexcept = default;
Communicator& Communicator::operator=(Communicator&&) noexcept = default;
Communicator::~Communicator() = default;

Result<Communicator> Communicator::CreateWorld(const MpiSession& session,
                                               const CommOptions& options) {
  LOCKSTEP_RETURN_IF_ERROR(CheckOptions(options));
  auto world = std::make_shared<internal::World>();
  // Ranks on this node: Open MPI says so; otherwise assume all of them.
  int ranks_on_node = session.world_size();
  if (const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE"); local != nullptr) {
    ranks_on_node = std::max(1, std::atoi(local));
  }
  world->options = internal::AdaptPolling(options, ranks_on_node, /*can_block=*/false);
  switch (options.backend) {
    case BackendKind::kMpi: {
      LOCKSTEP_ASSIGN_OR_RETURN(world->backend, internal::CreateMpiBackend(world->options));
      break;
    }
    case BackendKind::kUcx: {
#ifdef LOCKSTEP_HAVE_UCX
      LOCKSTEP_ASSIGN_OR_RETURN(world->backend, internal::CreateUcxBackend(world->options));
      break;
#else
      return Unimplemented("--transport ucx: this lockstep was built without UCX");
#endif
    }
    case BackendKind::kLocal:
      return InvalidArgument(
          "--transport local runs every chip as a thread of one process: "
          "start it without mpirun (RunLocal), not as an MPI world");
  }
  const int rank = world->backend->rank();
  const int size = world->backend->size();
  if (rank != session.world_rank() || size != session.world_size()) {
    return Internal("backend sees rank {} of {} but MPI_COMM_WORLD says {} of {}", rank, size,
                    session.world_rank(), session.world_size());
  }
  LOCKSTEP_LOG_DEBUG("transport", "world of {} ranks over {}", size, BackendName(options.backend));
  return Communicator(std::move(world), Iota(size), rank, 0, "world");
}

Result<Communicator> Communicator::CreateLocal(std::shared_ptr<LocalFabric> fabric, int rank,
                                               const CommOptions& options) {
  LOCKSTEP_RETURN_IF_ERROR(CheckOptions(options));
  auto world = std::make_shared<internal::World>();
  const int size = fabric->num_chips();
  LOCKSTEP_ASSIGN_OR_RETURN(world->backend, internal::CreateLocalBackend(std::move(fabric), rank));
  world->options = internal::AdaptPolling(options, size, world->backend->wake_signal() != nullptr);
  world->options.backend = BackendKind::kLocal;
  return Communicator(std::move(world), Iota(size), rank, 0, "world");
}

int Communicator::world_rank() const {
  return members_[rank_];
}
BackendKind Communicator::backend() const {
  return world_->backend->kind();
}
const CommOptions& Communicator::options() const {
  return world_->options;
}

Result<Communicator> Communicator::Split(const std::vector<std::vector<int>>& groups,
                                         std::string_view name) {
  if (world_->next_context > internal::kMaxContext) {
    return ResourceExhausted("group '{}': more than {} groups were created in this world", name,
                             internal::kMaxContext);
  }
  const uint32_t context = world_->next_context++;
  const int me = world_rank();
  int found_group = -1;
  int found_rank = -1;
  std::vector<int> seen;
  for (size_t g = 0; g < groups.size(); ++g) {
    for (size_t i = 0; i < groups[g].size(); ++i) {
      int w = groups[g][i];
      if (std::find(members_.begin(), members_.end(), w) == members_.end()) {
        return InvalidArgument("group '{}{}' lists world rank {}, which is not in '{}'", name, g, w,
                               name_);
      }
      if (std::find(seen.begin(), seen.end(), w) != seen.end()) {
        return InvalidArgument("groups '{}': world rank {} is listed twice", name, w);
      }
      seen.push_back(w);
      if (w == me) {
        found_group = static_cast<int>(g);
        found_rank = static_cast<int>(i);
      }
    }
  }
  if (found_group < 0) {
    return InvalidArgument("groups '{}': world rank {} is in none of the {} groups", name, me,
                           groups.size());
  }
  return Communicator(world_, groups[found_group], found_rank, context,
                      std::string(name) + std::to_string(found_group));
}

Result<SendStream> Communicator::OpenSendStream(int peer, uint32_t stream_id) const {
  if (peer < 0 || peer >= size() || peer == rank_) {
    return InvalidArgument("send stream {} in '{}': peer rank {} must be another member (0..{})",
                           stream_id, name_, peer, size() - 1);
  }
  if (stream_id > kMaxStreamId) {
    return InvalidArgument("stream id {} is above the maximum {}", stream_id, kMaxStreamId);
  }
  return SendStream(world_.get(), peer, members_[peer], stream_id);
}

Result<RecvStream> Communicator::OpenRecvStream(int peer, uint32_t stream_id) const {
  if (peer < 0 || peer >= size() || peer == rank_) {
    return InvalidArgument("recv stream {} in '{}': peer rank {} must be another member (0..{})",
                           stream_id, name_, peer, size() - 1);
  }
  if (stream_id > kMaxStreamId) {
    return InvalidArgument("stream id {} is above the maximum {}", stream_id, kMaxStreamId);
  }
  return RecvStream(world_.get(), peer, members_[peer], stream_id);
}

}  // namespace lockstep::transport
