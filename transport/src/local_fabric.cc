#include "lockstep/transport/local_fabric.h"

#include <thread>

#include "local_backend.h"
#include "lockstep/base/log.h"

namespace lockstep::transport {

Result<std::shared_ptr<LocalFabric>> LocalFabric::Create(int num_chips) {
  if (num_chips < 1) return InvalidArgument("local fabric of {} chips: need at least 1", num_chips);
  return std::shared_ptr<LocalFabric>(new LocalFabric(num_chips));
}

LocalFabric::LocalFabric(int num_chips) {
  mailboxes_.reserve(num_chips);
  for (int i = 0; i < num_chips; ++i) {
    mailboxes_.push_back(std::make_unique<internal::LocalMailbox>());
  }
}

LocalFabric::~LocalFabric() = default;

std::vector<Status> RunLocal(int num_chips, const CommOptions& options,
                             const std::function<Status(Communicator&)>& fn) {
  std::vector<Status> results(num_chips > 0 ? num_chips : 1);
  Result<std::shared_ptr<LocalFabric>> fabric = LocalFabric::Create(num_chips);
  if (!fabric.ok()) {
    results[0] = fabric.status();
    return results;
  }
  std::vector<std::thread> threads;
  threads.reserve(num_chips);
  for (int rank = 0; rank < num_chips; ++rank) {
    threads.emplace_back([&, rank] {
      Result<Communicator> comm = Communicator::CreateLocal(*fabric, rank, options);
      if (!comm.ok()) {
        results[rank] = comm.status();
        return;
      }
      results[rank] = fn(*comm);
    });
  }
  for (std::thread& t : threads) t.join();
  return results;
}

}  // namespace lockstep::transport
