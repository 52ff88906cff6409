// A job in which one rank fails in the middle of an allreduce, for
// fault_test.sh. Every rank runs allreduces in a loop; at call 20, rank 1
//   --mode=stall: stops itself (SIGSTOP): it stops answering but stays alive,
//                 so its peers must notice by their deadline;
//   --mode=kill:  kills itself (SIGKILL), as a crashed node would.
// A rank whose allreduce fails ends the job through MpiSession::Abort.
// Exits 0 only if no failure was ever seen (which fault_test.sh treats as a
// test failure).
//
//   transport_fault_main --transport=mpi|ucx --mode=stall|kill --comm-timeout=2
#include <signal.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/transport/communicator.h"
#include "lockstep/transport/mpi_session.h"
#include "lockstep/transport/options.h"

namespace {
std::string Flag(int argc, char** argv, std::string_view name, std::string_view fallback) {
  std::string prefix = "--" + std::string(name) + "=";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg(argv[i]);
    if (arg.starts_with(prefix)) return std::string(arg.substr(prefix.size()));
  }
  return std::string(fallback);
}
}  // namespace

int main(int argc, char** argv) {
  using namespace lockstep::transport;
  auto session = MpiSession::Init(&argc, &argv);
  if (!session.ok()) {
    std::fprintf(stderr, "lockstep: error: %s\n", session.status().message().c_str());
    return 1;
  }
  CommOptions options;
  auto backend = ParseBackend(Flag(argc, argv, "transport", "mpi"));
  if (!backend.ok()) session->Abort(backend.status());
  options.backend = *backend;
  auto timeout = ParseTimeout(Flag(argc, argv, "comm-timeout", "2"));
  if (!timeout.ok()) session->Abort(timeout.status());
  options.timeout = *timeout;
  const std::string mode = Flag(argc, argv, "mode", "stall");

  auto world = Communicator::CreateWorld(*session, options);
  if (!world.ok()) session->Abort(world.status());
  std::vector<float> data(4096);
  for (int call = 0; call < 100000; ++call) {
    if (call == 20 && world->rank() == 1) raise(mode == "kill" ? SIGKILL : SIGSTOP);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i % 7) * 0.5f;
    lockstep::Status status = world->AllReduceSum(data);
    if (!status.ok()) session->Abort(status);
  }
  std::printf("no failure seen\n");
  return 0;
}
