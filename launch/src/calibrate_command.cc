// `lockstep calibrate`: measure this host and write the `host` chip spec.
//
//   lockstep calibrate [--output FILE] [--threads N] [--quick]
//   mpirun -np 2 lockstep calibrate [--transport mpi|ucx]   (also the links)
//
// Measures, with the kernels' own probes (kernels/probe.h): the FMA peak
// (f32) and the memory read bandwidth of `threads` threads, i.e. of the whole
// host, which the ranks of a job on it share (shared_by_node); and what the
// kernels reach on it -- the matmul rate against the token count of a call
// (weights streamed from memory; per weight dtype and thread count) and the
// attention rate -- which the cost model uses instead of the FMA peak. Under mpirun
// with 2 or more ranks, ranks 0 and 1 also ping-pong over the transport
// (ordered streams) to measure the latency (8-byte messages) and bandwidth
// (4 MiB) of the link between them, recorded as the intra-node link when they
// share a host and as the inter-node link otherwise. Unmeasured fields keep
// the defaults of the `host` preset (docs/partitioner.md). Rank 0 writes the
// spec, by default where `lockstep plan --chip host` looks for it.
#include <sched.h>
#include <unistd.h>

#include <oneapi/tbb/global_control.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "command.h"
#include "flag_bounds.h"
#include "host_spec.h"
#include "launcher.h"
#include "lockstep/base/plural.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/kernels/probe.h"
#include "lockstep/partitioner/chip_presets.h"
#include "lockstep/partitioner/plan_report.h"
#include "lockstep/transport/communicator.h"
#include "lockstep/transport/mpi_session.h"
#include "lockstep/transport/options.h"

namespace lockstep::launch {
namespace {

using partitioner::ClusterSpec;
using partitioner::ElementType;
using partitioner::FormatBytes;
using partitioner::FormatSeconds;
using Clock = std::chrono::steady_clock;

struct CalibrateOptions {
  std::string output;       // default: DefaultHostSpecPath()
  int threads = 0;          // 0: every hardware thread
  bool quick = false;       // smaller probes (tests): less accurate
  bool no_kernels = false;  // skip the matmul and attention tables (the cost model then uses peaks)
  std::string transport = "mpi";
  int64_t memory_bytes = 0;  // 0: the physical memory
};

int64_t PhysicalMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? int64_t{pages} * page : 0;
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

struct LinkMeasurement {
  double latency_s = 0;              // one way, 8 bytes
  double bandwidth_bytes_per_s = 0;  // one way, large messages
  bool same_host = true;
};

// Ping-pong between world ranks 0 and 1: `iterations` round trips of `bytes`,
// after a few unmeasured ones. Returns the best one-way time (half a round
// trip). Other ranks do nothing.
Result<double> PingPong(transport::Communicator& world, size_t bytes, int iterations,
                        uint32_t stream_base) {
  const int peer = 1 - world.rank();
  LOCKSTEP_ASSIGN_OR_RETURN(transport::SendStream out, world.OpenSendStream(peer, stream_base));
  LOCKSTEP_ASSIGN_OR_RETURN(transport::RecvStream in, world.OpenRecvStream(peer, stream_base));
  std::vector<std::byte> send(bytes, std::byte{1});
  std::vector<std::byte> recv(bytes);
  double best = 1e300;
  const int warmup = 3;
  for (int i = 0; i < warmup + iterations; ++i) {
    const auto start = Clock::now();
    LOCKSTEP_ASSIGN_OR_RETURN(transport::Request r, in.Post(std::span<std::byte>(recv)));
    if (world.rank() == 0) {
      LOCKSTEP_ASSIGN_OR_RETURN(transport::Request s, out.Send(std::span<const std::byte>(send)));
      LOCKSTEP_RETURN_IF_ERROR(s.Wait());
      LOCKSTEP_RETURN_IF_ERROR(r.Wait());
    } else {
      LOCKSTEP_RETURN_IF_ERROR(r.Wait());
      LOCKSTEP_ASSIGN_OR_RETURN(transport::Request s, out.Send(std::span<const std::byte>(send)));
      LOCKSTEP_RETURN_IF_ERROR(s.Wait());
    }
    const double round_trip = std::chrono::duration<double>(Clock::now() - start).count();
    if (i >= warmup) best = std::min(best, round_trip / 2);
  }
  return best;
}

// Ranks 0 and 1 ping-pong; every rank of `world` calls this.
Result<LinkMeasurement> MeasureLink(transport::Communicator& world, const CalibrateOptions& o) {
  // Which host each rank is on: a fixed-size name per rank.
  constexpr size_t kNameBytes = 64;
  std::vector<std::byte> mine(kNameBytes);
  const std::string host = HostName();
  std::memcpy(mine.data(), host.data(), std::min(host.size(), kNameBytes - 1));
  std::vector<std::byte> all(kNameBytes * world.size());
  LOCKSTEP_RETURN_IF_ERROR(
      world.AllGather(std::span<const std::byte>(mine), std::span<std::byte>(all)));

  LinkMeasurement link;
  link.same_host = std::equal(all.begin(), all.begin() + kNameBytes, all.begin() + kNameBytes);
  if (world.rank() <= 1) {
    const size_t large = size_t{4} << 20;
    LOCKSTEP_ASSIGN_OR_RETURN(link.latency_s, PingPong(world, 8, o.quick ? 200 : 2000, 1));
    LOCKSTEP_ASSIGN_OR_RETURN(double large_s, PingPong(world, large, o.quick ? 5 : 20, 2));
    // alpha-beta: one way = latency + bytes / bandwidth.
    link.bandwidth_bytes_per_s =
        static_cast<double>(large) / std::max(large_s - link.latency_s, 1e-9);
  }
  LOCKSTEP_RETURN_IF_ERROR(world.Barrier());
  return link;
}

struct HostFigures {
  int threads = 1;
  kernels::Isa isa = kernels::Isa::kScalar;
  kernels::MemoryBandwidth bandwidth;
  // Read bandwidth with 1, 2, 4, ... threads below `threads`: a rank that runs
  // fewer threads than the host has cores reaches only part of `bandwidth`.
  std::map<int, double> read_by_threads;
  double flops = 0;
  // The kernels' rates (ChipSpec::matmul_flops, attention_flops).
  std::map<ElementType, std::map<int, std::map<int64_t, double>>> matmul_flops;
  // ChipSpec::bf16_compute_matmul_flops: bf16 weights under --compute bf16.
  std::map<int, std::map<int64_t, double>> bf16_compute_matmul_flops;
  std::map<int, double> attention_flops;
  // ChipSpec::decode_attention_flops: one decode step of a batch.
  std::map<int, double> decode_attention_flops;
  // ChipSpec::matmul_concurrency: tokens -> rate of one thread while every
  // thread runs its own matmul, over the 1-thread rate alone (bf16 weights).
  std::map<int64_t, double> matmul_concurrency;
  // ChipSpec::matmul_concurrency_by_type: the same for the other types.
  std::map<ElementType, std::map<int64_t, double>> matmul_concurrency_by_type;
};

// The thread counts the tables are measured at: 1, 2, 4, ... below `threads`,
// and `threads`.
std::vector<int> ThreadCounts(int threads) {
  std::vector<int> counts;
  for (int n = 1; n < threads; n *= 2) counts.push_back(n);
  counts.push_back(threads);
  return counts;
}

// The attention probe's workload: one 256-token prefill of a Llama-sized
// layer slice (32 query heads over 4 KV heads of 64), counted as the cost
// model counts attention flops (docs/partitioner.md, "Operators").
constexpr int kAttentionHeads = 32, kAttentionKvHeads = 4, kAttentionHeadDim = 64;
double AttentionFlops(int queries) {
  const double visits = static_cast<double>(queries) * (queries + 1) / 2;
  return kAttentionHeads * visits * (4.0 * kAttentionHeadDim + 5.0);
}

void MeasureKernels(const CalibrateOptions& o, HostFigures* h) {
  const std::vector<int64_t> tokens = o.quick
                                          ? std::vector<int64_t>{1, 16, 64}
                                          : std::vector<int64_t>{1, 2, 4, 8, 16, 32, 64, 128, 256};
  // Every weight type the runtime executes: a plan times a model's matmuls
  // with its own type's rates (quantized ones run on integer dot products).
  const std::vector<DType> dtypes =
      o.quick
          ? std::vector<DType>{DType::kBF16, DType::kQ8_0}
          : std::vector<DType>{DType::kBF16, DType::kF16, DType::kF32, DType::kQ8_0, DType::kQ4_0};
  kernels::MatmulProbe probe;
  probe.footprint = o.quick ? size_t{64} << 20 : size_t{1} << 30;
  probe.min_time_s = o.quick ? 0.05 : 0.25;
  // The probe's rates at every thread count into `table` (threads -> tokens).
  auto measure = [&](const std::string& what, std::map<int, std::map<int64_t, double>>* table) {
    for (int n : ThreadCounts(h->threads)) {
      std::fprintf(stderr, "calibrate: %s matmuls of 1..%lld tokens (%d of %d threads)...\n",
                   what.c_str(), static_cast<long long>(tokens.back()), n, h->threads);
      const std::vector<double> rates = kernels::MeasureMatmulFlops(h->isa, n, probe, tokens);
      for (size_t i = 0; i < tokens.size(); ++i) (*table)[n][tokens[i]] = rates[i];
    }
  };
  for (DType dtype : dtypes) {
    probe.dtype = dtype;
    measure(std::string(DTypeName(dtype)), &h->matmul_flops[partitioner::FromDType(dtype)]);
    if (dtype == DType::kBF16) {
      // The bf16 compute (--compute bf16): its own kernels and rates.
      probe.compute = kernels::Compute::kBf16;
      measure("bf16-compute", &h->bf16_compute_matmul_flops);
      probe.compute = kernels::Compute::kFloat;
    }
    if (h->threads > 1) {
      // Ranks sharing the host each run their own matmuls: what they cost
      // each other, against the 1-thread rates just measured alone (bf16:
      // matmul_concurrency; every other type its own, since their kernels
      // load a core otherwise).
      std::fprintf(stderr, "calibrate: %s matmuls of 1..%lld tokens, %d threads at once...\n",
                   std::string(DTypeName(dtype)).c_str(), static_cast<long long>(tokens.back()),
                   h->threads);
      const std::vector<double> rates =
          kernels::MeasureConcurrentMatmulFlops(h->isa, h->threads, probe, tokens);
      const auto& alone = h->matmul_flops[partitioner::FromDType(dtype)][1];
      auto& factors = dtype == DType::kBF16
                          ? h->matmul_concurrency
                          : h->matmul_concurrency_by_type[partitioner::FromDType(dtype)];
      for (size_t i = 0; i < tokens.size(); ++i) {
        factors[tokens[i]] = rates[i] / alone.at(tokens[i]);
      }
    }
  }
  const int queries = o.quick ? 64 : 256;
  for (int n : ThreadCounts(h->threads)) {
    std::fprintf(stderr, "calibrate: attention, %d-token prefill (%d of %d threads)...\n", queries,
                 n, h->threads);
    const double seconds = kernels::MeasureAttentionSeconds(
        h->isa, n, queries, kAttentionHeads, kAttentionKvHeads, kAttentionHeadDim, o.quick ? 2 : 5);
    h->attention_flops[n] = AttentionFlops(queries) / seconds;
  }
  // A decode step reads each sequence's keys once per query head group,
  // from memory: other rates than a prefill's blocks of queries.
  constexpr int kDecodeSequences = 16;
  const int context = o.quick ? 128 : 256;
  for (int n : ThreadCounts(h->threads)) {
    std::fprintf(
        stderr,
        "calibrate: attention, decode step of %d sequences at %d keys (%d of %d threads)...\n",
        kDecodeSequences, context, n, h->threads);
    const double seconds = kernels::MeasureDecodeAttentionSeconds(
        h->isa, n, kDecodeSequences, context, kAttentionHeads, kAttentionKvHeads, kAttentionHeadDim,
        o.quick ? size_t{64} << 20 : size_t{512} << 20, o.quick ? 0.05 : 0.25);
    h->decode_attention_flops[n] = double{kDecodeSequences} * kAttentionHeads * context *
                                   (4.0 * kAttentionHeadDim + 5.0) / seconds;
  }
}

// A launcher may have bound this rank to part of the host: mpirun binds each
// of 2 ranks to one core by default. Probes run there would measure one core
// under the name of the whole host (and oneTBB, sized from the affinity at
// start-up, would get no worker for a second thread). The probes measure the
// host, so rank 0 lifts the binding while it probes: its affinity widens to
// every configured CPU, which the kernel intersects with what a cpuset cgroup
// (a Slurm allocation) allows. The destructor restores the launcher's mask.
class HostAffinity {
 public:
  HostAffinity() {
    CPU_ZERO(&launcher_);
    if (sched_getaffinity(0, sizeof(launcher_), &launcher_) != 0) return;
    saved_ = true;
    bound_cpus_ = CPU_COUNT(&launcher_);
    cpu_set_t all;
    CPU_ZERO(&all);
    const long configured = std::clamp<long>(sysconf(_SC_NPROCESSORS_CONF), 1, CPU_SETSIZE);
    for (int c = 0; c < configured; ++c) CPU_SET(c, &all);
    cpu_set_t now;
    CPU_ZERO(&now);
    if (sched_setaffinity(0, sizeof(all), &all) == 0 &&
        sched_getaffinity(0, sizeof(now), &now) == 0) {
      host_cpus_ = CPU_COUNT(&now);
    } else {
      host_cpus_ = bound_cpus_;
    }
  }
  ~HostAffinity() {
    if (saved_) sched_setaffinity(0, sizeof(launcher_), &launcher_);
  }
  HostAffinity(const HostAffinity&) = delete;
  HostAffinity& operator=(const HostAffinity&) = delete;

  int bound_cpus() const { return bound_cpus_; }  // 0: unknown
  int host_cpus() const { return host_cpus_; }    // 0: unknown

 private:
  cpu_set_t launcher_;
  bool saved_ = false;
  int bound_cpus_ = 0, host_cpus_ = 0;
};

HostFigures MeasureHost(const CalibrateOptions& o) {
  HostFigures h;
  const HostAffinity affinity;
  const int cpus = affinity.host_cpus() > 0
                       ? affinity.host_cpus()
                       : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (affinity.bound_cpus() > 0 && affinity.bound_cpus() < affinity.host_cpus()) {
    std::fprintf(stderr,
                 "calibrate: the launcher bound this rank to %s; probing the host with its %s "
                 "(binding lifted while probing)\n",
                 Plural(affinity.bound_cpus(), "CPU").c_str(), Plural(cpus, "CPU").c_str());
  }
  h.threads = o.threads > 0 ? o.threads : cpus;
  // oneTBB sized its thread pool from the affinity it saw at start-up.
  const tbb::global_control pool(tbb::global_control::max_allowed_parallelism,
                                 static_cast<size_t>(h.threads));
  h.isa = kernels::BestIsa();
  const size_t bytes = o.quick ? size_t{64} << 20 : size_t{1} << 30;
  std::fprintf(stderr, "calibrate: memory bandwidth (%d threads, %s array)...\n", h.threads,
               FormatBytes(static_cast<double>(bytes)).c_str());
  h.bandwidth = kernels::MeasureReadBandwidth(h.threads, bytes, o.quick ? 2 : 5);
  for (int n = 1; n < h.threads; n *= 2) {
    std::fprintf(stderr, "calibrate: memory bandwidth (%d of %d threads)...\n", n, h.threads);
    h.read_by_threads[n] =
        kernels::MeasureReadBandwidth(n, bytes, o.quick ? 2 : 5).read_bytes_per_second;
  }
  std::fprintf(stderr, "calibrate: FMA peak (%d threads, %s)...\n", h.threads,
               std::string(kernels::IsaName(h.isa)).c_str());
  h.flops = kernels::MeasureFmaPeak(h.isa, h.threads);
  if (!o.no_kernels) MeasureKernels(o, &h);
  return h;
}

int Run(const CalibrateOptions& o) {
  Result<transport::BackendKind> backend = transport::ParseBackend(o.transport);
  if (!backend.ok()) return ReportUsage(backend.status().WithContext("--transport"));
  if (*backend == transport::BackendKind::kLocal) {
    return ReportUsage(InvalidArgument(
        "--transport local has no link to measure; use mpi or ucx (under mpirun -np 2)"));
  }
  // Under mpirun with 2+ ranks: MPI and a world communicator for the links.
  std::optional<transport::MpiSession> session;
  std::optional<transport::Communicator> world;
  if (LauncherWorldSize() >= 2) {
    Result<transport::MpiSession> s = transport::MpiSession::Init(nullptr, nullptr);
    if (!s.ok()) return ReportError(s.status().WithContext("calibrate"));
    session.emplace(std::move(*s));
    if (session->world_size() >= 2) {
      transport::CommOptions comm;
      comm.backend = *backend;
      // Ranks other than 0 wait seconds in the barrier while rank 0 probes
      // the host: past the spin and yield phases they poll every 2 ms, not
      // every 20 us, so their wake-ups do not eat into the probe's cores.
      // (Ping-pong waits are far shorter than the spin phase.)
      comm.sleep = std::chrono::milliseconds(2);
      Result<transport::Communicator> w = transport::Communicator::CreateWorld(*session, comm);
      if (!w.ok()) session->Abort(w.status());
      world.emplace(std::move(*w));
    }
  }
  const bool leader = !session || session->world_rank() == 0;

  // Rank 0 probes the host first, while the other ranks wait in a barrier
  // (sleeping, not spinning), so that they do not steal its cores.
  HostFigures host;
  if (leader) host = MeasureHost(o);
  std::optional<LinkMeasurement> link;
  if (world) {
    Status barrier = world->Barrier();
    if (!barrier.ok()) session->Abort(barrier);
    Result<LinkMeasurement> measured = MeasureLink(*world, o);
    if (!measured.ok()) session->Abort(measured.status());
    link = *measured;
  }
  if (!leader) return kExitOk;  // rank 0 writes the spec

  Result<ClusterSpec> preset = partitioner::ChipPreset("host", 1);
  if (!preset.ok()) return ReportError(preset.status());
  ClusterSpec spec = *preset;
  spec.chip.memory_bytes = o.memory_bytes > 0 ? o.memory_bytes : PhysicalMemoryBytes();
  if (spec.chip.memory_bytes <= 0) spec.chip.memory_bytes = preset->chip.memory_bytes;
  spec.chip.memory_bandwidth_bytes_per_s = host.bandwidth.read_bytes_per_second;
  spec.chip.cores = host.threads;
  spec.chip.memory_bandwidth_by_threads = host.read_by_threads;
  spec.chip.peak_flops = {};
  spec.chip.peak_flops[static_cast<int>(ElementType::kF32)] = host.flops;
  spec.chip.matmul_flops = host.matmul_flops;
  spec.chip.bf16_compute_matmul_flops = host.bf16_compute_matmul_flops;
  spec.chip.attention_flops = host.attention_flops;
  spec.chip.decode_attention_flops = host.decode_attention_flops;
  spec.chip.matmul_concurrency = host.matmul_concurrency;
  spec.chip.matmul_concurrency_by_type = host.matmul_concurrency_by_type;
  spec.allreduce_large_min_bytes =
      static_cast<int64_t>(transport::CommOptions{}.allreduce_switch_bytes);

  char date[32] = {};
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof(date), "%Y-%m-%d", std::gmtime(&now));
  std::string source = fmt::format(
      "measured by lockstep calibrate on {} ({}): memory read bandwidth and FMA peak of {} "
      "threads ({}){}{}",
      HostName(), date, host.threads, kernels::IsaName(host.isa),
      host.matmul_flops.empty() ? "" : ", the kernels' matmul and attention rates",
      o.quick ? ", quick probes" : "");
  if (link) {
    partitioner::LinkSpec& l = link->same_host ? spec.intra_node_link : spec.inter_node_link;
    l.latency_s = link->latency_s;
    l.bandwidth_bytes_per_s = link->bandwidth_bytes_per_s;
    source += fmt::format("; {} link by {} ping-pong of ranks 0 and 1",
                          link->same_host ? "intra-node" : "inter-node", o.transport);
  } else {
    source += "; links not measured (run under mpirun -np 2): preset defaults";
  }
  spec.chip.source = source;
  Status valid = spec.Validate();
  if (!valid.ok()) return ReportError(valid.WithContext("calibrate: measured spec"));

  const std::string path = o.output.empty() ? DefaultHostSpecPath() : o.output;
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  Status saved = partitioner::SaveClusterSpecFile(spec, path);
  if (!saved.ok()) return ReportError(saved);
  if (o.output.empty()) std::filesystem::remove(UncalibratedMarkerPath(), ec);

  std::string text = fmt::format("host chip spec written to {}\n", path);
  text += fmt::format("  memory             {}\n",
                      FormatBytes(static_cast<double>(spec.chip.memory_bytes)));
  text += fmt::format("  memory bandwidth   {}/s read ({}/s triad), {} threads\n",
                      FormatBytes(host.bandwidth.read_bytes_per_second),
                      FormatBytes(host.bandwidth.triad_bytes_per_second), host.threads);
  for (const auto& [n, rate] : host.read_by_threads) {
    text += fmt::format("                     {}/s read, {} thread{}\n", FormatBytes(rate), n,
                        n == 1 ? "" : "s");
  }
  text += fmt::format("  FMA peak (f32)     {:.1f} GFLOP/s ({})\n", host.flops / 1e9,
                      kernels::IsaName(host.isa));
  for (const auto& [type, by_threads] : host.matmul_flops) {
    for (const auto& [n, by_tokens] : by_threads) {
      std::string row;
      for (const auto& [t, rate] : by_tokens) row += fmt::format(" {}:{:.1f}", t, rate / 1e9);
      text += fmt::format("  matmul {:<4} {}  GFLOP/s by tokens,{}\n",
                          partitioner::ElementTypeName(type), Plural(n, "thread"), row);
    }
  }
  for (const auto& [n, by_tokens] : host.bf16_compute_matmul_flops) {
    std::string row;
    for (const auto& [t, rate] : by_tokens) row += fmt::format(" {}:{:.1f}", t, rate / 1e9);
    text += fmt::format("  matmul bf16, --compute bf16, {}  GFLOP/s by tokens,{}\n",
                        Plural(n, "thread"), row);
  }
  if (!host.matmul_concurrency.empty()) {
    std::string row;
    for (const auto& [t, factor] : host.matmul_concurrency)
      row += fmt::format(" {}:{:.2f}", t, factor);
    text += fmt::format("  matmul, {} at once  rate of each / alone by tokens,{}\n",
                        Plural(host.threads, "thread"), row);
  }
  for (const auto& [type, by_tokens] : host.matmul_concurrency_by_type) {
    std::string row;
    for (const auto& [t, factor] : by_tokens) row += fmt::format(" {}:{:.2f}", t, factor);
    text += fmt::format("  matmul {:<4} {} at once  rate of each / alone by tokens,{}\n",
                        partitioner::ElementTypeName(type), Plural(host.threads, "thread"), row);
  }
  for (const auto& [n, rate] : host.attention_flops) {
    text +=
        fmt::format("  attention          {:.1f} GFLOP/s, {}\n", rate / 1e9, Plural(n, "thread"));
  }
  for (const auto& [n, rate] : host.decode_attention_flops) {
    text +=
        fmt::format("  attention, decode  {:.1f} GFLOP/s, {}\n", rate / 1e9, Plural(n, "thread"));
  }
  if (link) {
    text +=
        fmt::format("  {} link   {} one way (8 B), {}/s (4 MiB), {}\n",
                    link->same_host ? "intra-node" : "inter-node", FormatSeconds(link->latency_s),
                    FormatBytes(link->bandwidth_bytes_per_s), o.transport);
  } else {
    text += "  links              not measured (defaults); run under `mpirun -np 2` to measure\n";
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

}  // namespace

Command AddCalibrateCommand(CLI::App& app) {
  auto options = std::make_shared<CalibrateOptions>();
  CalibrateOptions& o = *options;
  CLI::App* cmd = app.add_subcommand(
      "calibrate",
      "Measure this host (FMA peak, memory bandwidth; links under mpirun -np 2) into a chip spec");
  cmd->add_option("--output", o.output,
                  "Where to write the spec (default: $LOCKSTEP_HOST_SPEC or "
                  "~/.config/lockstep/host.json, which `lockstep plan --chip host` reads)");
  cmd->add_option("--threads", o.threads, "Threads for the probes (default: every core)")
      ->check(WholeNumber(0, MaxThreads(),
                          fmt::format("4 x the {} CPUs this process may use", ThisMachine().cpus)));
  cmd->add_option("--memory-bytes", o.memory_bytes,
                  "Memory to record (default: the physical memory)")
      ->check(WholeNumber(0, int64_t{1} << 50));
  cmd->add_option("--transport", o.transport, "Backend for the ping-pong: mpi or ucx")
      ->capture_default_str();
  cmd->add_flag("--quick", o.quick, "Small, fast probes (for tests; less accurate)");
  cmd->add_flag("--no-kernels", o.no_kernels,
                "Skip the matmul and attention rates (predictions then assume the FMA peak)");
  return {cmd, [options] { return Run(*options); }};
}

}  // namespace lockstep::launch
