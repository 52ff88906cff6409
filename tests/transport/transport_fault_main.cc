// A job in which one rank fails in the middle of an allreduce, for
// fault_test.sh. Every rank runs allreduces in a loop; at call 20, rank 1
//   --mode=stall: stops itself (SIGSTOP): it stops answering but stays alive,
//                 so its peers must notice by their deadline;
//   --mode=kill:  kills itself (SIGKILL), as a crashed node would.
//   --stop-at=N:  fail at call N instead of 20; 0 fails before rank 1's first
//                 message, so under ucx its peers wait for its worker address
//                 (connections are made on first use) and must name it.
//   --mode=kill-sender: no allreduce: rank 1 streams messages to rank 0,
//                 which only receives from it (it never sends to rank 1:
//                 the last stage's outcomes on stage 0), and kills itself
//                 at message 20. Under UCX with peer error handling (tcp)
//                 rank 0 must learn it from its connection, not from the
//                 deadline: the endpoint it made to receive watches the peer.
// A rank whose allreduce fails ends the job through MpiSession::Abort.
// Exits 0 only if no failure was ever seen (which fault_test.sh treats as a
// test failure).
//
//   transport_fault_main --transport=mpi|ucx --mode=stall|kill --comm-timeout=2
#include <signal.h>

#include <cstdio>
#include <span>
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
  const int stop_at = std::stoi(Flag(argc, argv, "stop-at", "20"));

  auto world = Communicator::CreateWorld(*session, options);
  if (!world.ok()) session->Abort(world.status());
  std::vector<float> data(4096);
  if (mode == "kill-sender") {
    if (world->rank() == 1) {
      auto out = world->OpenSendStream(0, 7);
      if (!out.ok()) session->Abort(out.status());
      for (int message = 0; message < 100000; ++message) {
        if (message == 20) raise(SIGKILL);
        auto sent = out->Send(std::span<const float>(data));
        if (!sent.ok()) session->Abort(sent.status());
        lockstep::Status status = sent->Wait();
        if (!status.ok()) session->Abort(status);
      }
    } else if (world->rank() == 0) {
      auto in = world->OpenRecvStream(1, 7);
      if (!in.ok()) session->Abort(in.status());
      for (int message = 0; message < 100000; ++message) {
        auto received = in->Post(std::span<float>(data));
        if (!received.ok()) session->Abort(received.status());
        lockstep::Status status = received->Wait();
        if (!status.ok()) session->Abort(status);
      }
    }
    std::printf("no failure seen\n");
    return 0;
  }
  for (int call = 0; call < 100000; ++call) {
    if (call == stop_at && world->rank() == 1) raise(mode == "kill" ? SIGKILL : SIGSTOP);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i % 7) * 0.5f;
    lockstep::Status status = world->AllReduceSum(data);
    if (!status.ok()) session->Abort(status);
  }
  std::printf("no failure seen\n");
  return 0;
}
