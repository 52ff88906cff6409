// transport_bench: latency and bandwidth of lockstep's transport, like
// nccl-tests, with Open MPI measured in the same run as the anchor.
//
//   mpiexec -n 2 transport_bench --transport=mpi|ucx|local [--algorithm=auto|rd|rs_ag|all]
//           [--min-bytes=8] [--max-bytes=16777216] [--reps=15]
//           [--spin-us=N] [--yield-us=N] [--switch-bytes=N]   (CommOptions fields)
//
// For each size (powers of two from --min-bytes to --max-bytes):
//   ping-pong:  rank 0 sends, rank 1 sends back (a stream each way, receives
//               pre-posted); time = round trip / 2. Anchor: MPI_Send/MPI_Recv
//               of the same bytes between the same ranks.
//   allreduce:  AllReduceSum of size/4 floats on every rank. Anchor:
//               MPI_Allreduce(MPI_IN_PLACE, MPI_FLOAT, MPI_SUM) — only as a
//               yardstick: its summation order is not lockstep's.
// Columns: size, count, algorithm, time (us), algbw and busbw (GB/s;
// busbw = algbw * 2(p-1)/p for allreduce, as nccl-tests), #wrong (elements
// whose bits differ from the single-process canonical tree, checked once per
// size on separate inputs), the anchor's time and the ratio time/anchor
// (below 1 is faster than MPI).
//
// Each figure is the best of --reps repetitions (default 15; the machine may
// be shared), each timing enough iterations for ~3 ms; lockstep's and MPI's
// repetitions alternate so both see the same load. The local backend runs
// two chips as threads of rank 0 (the other ranks wait), so its anchor is
// still inter-process MPI, measured after it.
#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "lockstep/transport/communicator.h"
#include "lockstep/transport/local_fabric.h"
#include "lockstep/transport/mpi_session.h"
#include "lockstep/transport/options.h"

namespace {

using namespace lockstep::transport;
using Clock = std::chrono::steady_clock;

std::string Flag(int argc, char** argv, std::string_view name, std::string_view fallback) {
  std::string prefix = "--" + std::string(name) + "=";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg(argv[i]);
    if (arg.starts_with(prefix)) return std::string(arg.substr(prefix.size()));
  }
  return std::string(fallback);
}

int Iterations(size_t bytes) {
  // ~3 ms per repetition at ~5 GB/s plus ~3 us per operation: short
  // repetitions, many of them, so the best one falls in a quiet moment.
  double per_op_us = 3.0 + static_cast<double>(bytes) / 5000.0;
  return std::clamp(static_cast<int>(3000.0 / per_op_us), 2, 1000);
}

// The same inputs as tests/transport: floats whose sums depend on order.
float Value(int rank, size_t i) {
  uint64_t x = (uint64_t(rank) << 40) ^ i;
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  uint32_t bits = (static_cast<uint32_t>(x >> 63) << 31) |
                  (static_cast<uint32_t>(127 - 12 + (x >> 32) % 25) << 23) |
                  (static_cast<uint32_t>(x) & 0x7fffff);
  return std::bit_cast<float>(bits);
}

float Tree(const std::vector<float>& leaves, size_t first, size_t width) {
  if (width == 1) return leaves[first];
  float left = Tree(leaves, first, width / 2);
  if (first + width / 2 >= leaves.size()) return left;
  return left + Tree(leaves, first + width / 2, width / 2);
}

struct Row {
  double time_us = 1e30;  // best of the repetitions
  double anchor_us = 1e30;
  size_t wrong = 0;
  std::string algorithm;
};

double Since(Clock::time_point start, int iters) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / iters;
}

// ---- one repetition of each measurement -----------------------------------

// Round trip / 2 of `iters` ping-pongs between members 0 and 1 on streams.
double PingPongRep(Communicator& comm, SendStream& out, RecvStream& in,
                   std::vector<std::byte>& send, std::vector<std::byte>& recv, int iters) {
  Clock::time_point start = Clock::now();
  for (int it = 0; it < iters; ++it) {
    Request r = std::move(in.Post(std::span<std::byte>(recv))).value();
    if (comm.rank() == 0) {
      Request s = std::move(out.Send(std::span<const std::byte>(send))).value();
      if (!s.Wait().ok() || !r.Wait().ok()) std::abort();
    } else {
      if (!r.Wait().ok()) std::abort();
      Request s = std::move(out.Send(std::span<const std::byte>(send))).value();
      if (!s.Wait().ok()) std::abort();
    }
  }
  return Since(start, iters) / 2;
}

double MpiPingPongRep(std::vector<std::byte>& buffer, int iters) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const int bytes = static_cast<int>(buffer.size());
  Clock::time_point start = Clock::now();
  for (int it = 0; it < iters; ++it) {
    if (rank == 0) {
      MPI_Send(buffer.data(), bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
      MPI_Recv(buffer.data(), bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else {
      MPI_Recv(buffer.data(), bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(buffer.data(), bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
    }
  }
  return Since(start, iters) / 2;
}

double AllReduceRep(Communicator& comm, std::vector<float>& data, AllReduceAlgorithm algorithm,
                    int iters) {
  if (!comm.Barrier().ok()) std::abort();
  Clock::time_point start = Clock::now();
  for (int it = 0; it < iters; ++it) {
    if (!comm.AllReduceSum(data, algorithm).ok()) std::abort();
  }
  return Since(start, iters);
}

double MpiAllReduceRep(std::vector<float>& data, int iters) {
  MPI_Barrier(MPI_COMM_WORLD);
  Clock::time_point start = Clock::now();
  for (int it = 0; it < iters; ++it) {
    MPI_Allreduce(MPI_IN_PLACE, data.data(), static_cast<int>(data.size()), MPI_FLOAT, MPI_SUM,
                  MPI_COMM_WORLD);
  }
  return Since(start, iters);
}

// Elements of an allreduce whose bits differ from the canonical tree, on
// inputs whose sums depend on the order.
size_t AllReduceWrong(Communicator& comm, size_t n, AllReduceAlgorithm algorithm) {
  const int p = comm.size();
  std::vector<float> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = Value(comm.world_rank(), i);
  if (!comm.AllReduceSum(data, algorithm).ok()) std::abort();
  std::vector<float> leaves(p);
  size_t wrong = 0;
  for (size_t i = 0; i < n; ++i) {
    for (int r = 0; r < p; ++r) leaves[r] = Value(comm.WorldRankOf(r), i);
    float expected = Tree(leaves, 0, std::bit_ceil(static_cast<size_t>(p)));
    if (std::bit_cast<uint32_t>(expected) != std::bit_cast<uint32_t>(data[i])) ++wrong;
  }
  return wrong;
}

std::string UsedAlgorithm(const Communicator& comm, size_t bytes, AllReduceAlgorithm algorithm) {
  if (algorithm == AllReduceAlgorithm::kAuto) {
    algorithm = std::has_single_bit(static_cast<unsigned>(comm.size())) &&
                        bytes >= comm.options().allreduce_switch_bytes
                    ? AllReduceAlgorithm::kReduceScatterAllGather
                    : AllReduceAlgorithm::kRecursiveDoubling;
  }
  return std::string(AllReduceAlgorithmName(algorithm));
}

// Measures lockstep (comm; for the local backend a chip thread of rank 0)
// and, when `with_anchor`, MPI in alternating repetitions so that both see
// the same machine load. rows[s][0] is ping-pong, rows[s][1 + a] allreduce
// with algorithms[a].
void Measure(Communicator& comm, bool with_anchor, const std::vector<size_t>& sizes,
             const std::vector<AllReduceAlgorithm>& algorithms, int reps,
             std::vector<std::vector<Row>>& rows) {
  const bool pinger = comm.rank() <= 1;
  std::optional<SendStream> out;
  std::optional<RecvStream> in;
  if (pinger) {
    out.emplace(std::move(comm.OpenSendStream(1 - comm.rank(), 1)).value());
    in.emplace(std::move(comm.OpenRecvStream(1 - comm.rank(), 1)).value());
  }
  for (size_t s = 0; s < sizes.size(); ++s) {
    const size_t bytes = sizes[s];
    const int iters = Iterations(bytes);
    std::vector<Row> line(1 + algorithms.size());
    // Ping-pong.
    std::vector<std::byte> send(bytes), recv(bytes);
    for (size_t i = 0; i < bytes; ++i) send[i] = static_cast<std::byte>(i * 7 + comm.rank());
    line[0].algorithm = "stream";
    for (int rep = 0; rep <= reps; ++rep) {  // repetition 0 warms up
      if (!comm.Barrier().ok()) std::abort();
      double ours = pinger ? PingPongRep(comm, *out, *in, send, recv, iters) : 0;
      if (rep > 0) line[0].time_us = std::min(line[0].time_us, ours);
      if (with_anchor) {
        MPI_Barrier(MPI_COMM_WORLD);
        double anchor = pinger ? MpiPingPongRep(recv, iters) : 0;
        if (rep > 0) line[0].anchor_us = std::min(line[0].anchor_us, anchor);
      }
    }
    if (pinger) {
      // The last message received was the peer's pattern (the anchor wrote
      // into recv afterwards, so check with one more exchange).
      PingPongRep(comm, *out, *in, send, recv, 1);
      for (size_t i = 0; i < bytes; ++i) {
        if (recv[i] != static_cast<std::byte>(i * 7 + (1 - comm.rank()))) ++line[0].wrong;
      }
    }
    // Allreduce: correctness once, then timing on zeros (which stay zero).
    std::vector<float> data(bytes / sizeof(float), 0.0f);
    for (size_t a = 0; a < algorithms.size(); ++a) {
      Row& row = line[1 + a];
      row.algorithm = UsedAlgorithm(comm, bytes, algorithms[a]);
      row.wrong = AllReduceWrong(comm, data.size(), algorithms[a]);
      for (int rep = 0; rep <= reps; ++rep) {
        double ours = AllReduceRep(comm, data, algorithms[a], iters);
        if (rep > 0) row.time_us = std::min(row.time_us, ours);
        if (with_anchor) {
          double anchor = MpiAllReduceRep(data, iters);
          if (rep > 0) row.anchor_us = std::min(row.anchor_us, anchor);
        }
      }
    }
    if (comm.rank() == 0) rows[s] = std::move(line);
  }
}

// The anchors alone (for the local backend, whose chips are threads).
void MeasureAnchors(const std::vector<size_t>& sizes, size_t num_algorithms, int reps,
                    std::vector<std::vector<Row>>& rows) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  for (size_t s = 0; s < sizes.size(); ++s) {
    const int iters = Iterations(sizes[s]);
    std::vector<std::byte> buffer(sizes[s]);
    std::vector<float> data(sizes[s] / sizeof(float), 0.0f);
    double pp = 1e30, ar = 1e30;
    for (int rep = 0; rep <= reps; ++rep) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t = rank <= 1 ? MpiPingPongRep(buffer, iters) : 0;
      if (rep > 0) pp = std::min(pp, t);
      t = MpiAllReduceRep(data, iters);
      if (rep > 0) ar = std::min(ar, t);
    }
    if (rank == 0) {
      rows[s][0].anchor_us = pp;
      for (size_t a = 0; a < num_algorithms; ++a) rows[s][1 + a].anchor_us = ar;
    }
  }
}

std::string SizeText(size_t bytes) {
  if (bytes >= (1 << 20)) return fmt::format("{}M", bytes >> 20);
  if (bytes >= (1 << 10)) return fmt::format("{}K", bytes >> 10);
  return fmt::format("{}", bytes);
}

}  // namespace

int main(int argc, char** argv) {
  auto session = MpiSession::Init(&argc, &argv);
  if (!session.ok()) {
    std::fprintf(stderr, "lockstep: error: %s\n", session.status().message().c_str());
    return 1;
  }
  const int rank = session->world_rank();
  const int size = session->world_size();
  auto backend = ParseBackend(Flag(argc, argv, "transport", "mpi"));
  if (!backend.ok()) session->Abort(backend.status());
  const std::string algorithm_flag = Flag(argc, argv, "algorithm", "auto");
  std::vector<AllReduceAlgorithm> algorithms;
  if (algorithm_flag == "auto" || algorithm_flag == "all")
    algorithms.push_back(AllReduceAlgorithm::kAuto);
  if (algorithm_flag == "rd" || algorithm_flag == "all")
    algorithms.push_back(AllReduceAlgorithm::kRecursiveDoubling);
  if (algorithm_flag == "rs_ag" || algorithm_flag == "all")
    algorithms.push_back(AllReduceAlgorithm::kReduceScatterAllGather);
  if (algorithms.empty())
    session->Abort(lockstep::InvalidArgument("--algorithm must be auto, rd, rs_ag or all"));
  const size_t min_bytes = std::stoull(Flag(argc, argv, "min-bytes", "8"));
  const size_t max_bytes = std::stoull(Flag(argc, argv, "max-bytes", "16777216"));
  const int reps = std::stoi(Flag(argc, argv, "reps", "15"));
  if (size < 2)
    session->Abort(lockstep::InvalidArgument("run with at least 2 ranks (mpiexec -n 2)"));

  CommOptions options;
  options.backend = *backend;
  options.spin = std::chrono::microseconds(
      std::stoll(Flag(argc, argv, "spin-us", std::to_string(options.spin.count()))));
  options.yield = std::chrono::microseconds(
      std::stoll(Flag(argc, argv, "yield-us", std::to_string(options.yield.count()))));
  options.allreduce_switch_bytes =
      std::stoull(Flag(argc, argv, "switch-bytes", std::to_string(options.allreduce_switch_bytes)));
  std::vector<size_t> sizes;
  for (size_t b = min_bytes; b <= max_bytes; b *= 2) sizes.push_back(b);

  std::vector<std::vector<Row>> rows(sizes.size());
  if (*backend == BackendKind::kLocal) {
    if (rank == 0) {
      auto results = RunLocal(2, options, [&](Communicator& comm) {
        Measure(comm, false, sizes, algorithms, reps, rows);
        return lockstep::Status::Ok();
      });
      for (const auto& status : results) {
        if (!status.ok()) session->Abort(status);
      }
    }
    // The other ranks wait without spinning (MPI_Barrier busy-polls and would
    // take a core from rank 0's chip threads).
    MPI_Request request;
    MPI_Ibarrier(MPI_COMM_WORLD, &request);
    for (int done = 0; !done;) {
      MPI_Test(&request, &done, MPI_STATUS_IGNORE);
      if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    MeasureAnchors(sizes, algorithms.size(), reps, rows);
  } else {
    auto world = Communicator::CreateWorld(*session, options);
    if (!world.ok()) session->Abort(world.status());
    Measure(*world, true, sizes, algorithms, reps, rows);
  }
  if (rank != 0) return 0;

  const double bus_factor = 2.0 * (size - 1) / size;
  std::printf(
      "# transport_bench: backend %s, %d ranks, best of %d repetitions; anchors: Open MPI "
      "in the same run; spin %lld us, yield %lld us, switch %zu bytes\n",
      std::string(BackendName(*backend)).c_str(), size, reps,
      static_cast<long long>(options.spin.count()), static_cast<long long>(options.yield.count()),
      options.allreduce_switch_bytes);
  std::printf("# ping-pong (one-way time = round trip / 2); anchor MPI_Send/MPI_Recv\n");
  std::printf("#%10s %10s %7s %10s %9s %9s %7s | %10s %7s\n", "size", "count", "algo", "time(us)",
              "algbw", "busbw", "#wrong", "mpi(us)", "ratio");
  for (size_t s = 0; s < sizes.size(); ++s) {
    const Row& r = rows[s][0];
    double gbs = sizes[s] / r.time_us / 1e3;
    std::printf(" %10s %10zu %7s %10.2f %9.3f %9.3f %7zu | %10.2f %7.2f\n",
                SizeText(sizes[s]).c_str(), sizes[s], r.algorithm.c_str(), r.time_us, gbs, gbs,
                r.wrong, r.anchor_us, r.time_us / r.anchor_us);
  }
  std::printf(
      "# allreduce-sum f32 (canonical tree); anchor MPI_Allreduce (not deterministic "
      "across sizes; a yardstick only)\n");
  std::printf("#%10s %10s %7s %10s %9s %9s %7s | %10s %7s\n", "size", "count", "algo", "time(us)",
              "algbw", "busbw", "#wrong", "mpi(us)", "ratio");
  for (size_t s = 0; s < sizes.size(); ++s) {
    for (size_t a = 0; a < algorithms.size(); ++a) {
      const Row& r = rows[s][1 + a];
      double algbw = sizes[s] / r.time_us / 1e3;
      std::printf(" %10s %10zu %7s %10.2f %9.3f %9.3f %7zu | %10.2f %7.2f\n",
                  SizeText(sizes[s]).c_str(), sizes[s] / sizeof(float), r.algorithm.c_str(),
                  r.time_us, algbw, algbw * bus_factor, r.wrong, r.anchor_us,
                  r.time_us / r.anchor_us);
    }
  }
  return 0;
}
