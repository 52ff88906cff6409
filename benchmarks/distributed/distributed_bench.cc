// distributed_bench: one tp x pp configuration of a distributed batch job,
// measured against the partitioner's prediction (issue 4 item 9, issue 5
// item 9). Run it under mpirun with tp * pp ranks (or alone for 1 x 1):
//
//   mpirun -np N distributed_bench --model M.h5 --tp T --pp P
//       [--scenarios decode1,decode16,job64] [--decode-tokens 48]
//       [--threads 1] [--transport mpi|ucx] [--reduction canonical|plain]
//       [--model-io posix|mpiio|collective] [--tp-overlap] [--anchor]
//
// Scenarios (each a whole `lockstep run` job through runtime::RunBatchJob,
// plan made for the job's requests with the host chip spec of --host-spec,
// default $LOCKSTEP_HOST_SPEC or ~/.config/lockstep/host.json as written by
// `lockstep calibrate`; without one, the uncalibrated `host` preset):
//   decode1   1 request, prompt 16, --decode-tokens generated: per-token
//             decode latency (the result's decode_tokens_per_s) and time to
//             first token, against the plan's prediction for batch 1;
//   decode16  16 such requests at once (--max-batch 16): per-token latency
//             of one step and aggregate decode tokens/s, against the plan's
//             prediction for batch 16;
//   job64     64 requests of mixed lengths (prompts 4..32, 8..40 generated),
//             --max-batch 16, continuous batching: generated tokens/s of the
//             job and mean time to first token (no prediction: the plan
//             assumes uniform requests; its figure for the job's largest
//             request is printed for reference).
// Beside each: the share of run time in tp collectives and pipeline waits
// (mean over ranks), the load time and the largest bytes read by a rank,
// then the plan's predicted shares of the same two (pcoll%, pwait%: its
// RankShares, communication and idle over each rank's total), to tell
// which part of a gap between measured and predicted time is compute.
// --reduction plain: matmuls in the plain order and tp allreduces by
// MPI_Allreduce -- what the determinism contract costs (bits then differ).
// --model-io: how ranks read their shards (lockstep run --model-io); the
// order column then reads e.g. "canonical,mpiio" and the load time is the one
// to compare.
// --anchor: first measure the memory read bandwidth with 1 and 2 threads on
// rank 0 (kernels/probe.h): the ratio the tp = 2 speed-up is compared with.
//
// One table row per scenario on rank 0's stdout; timing is wall clock on a
// shared machine (see benchmarks/RESULTS.md).
#include <fmt/format.h>
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lockstep/base/log.h"
#include "lockstep/engine/tensor_parallel.h"
#include "lockstep/job/batch_job.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/kernels/probe.h"
#include "lockstep/partitioner/cluster_spec.h"
#include "lockstep/transport/communicator.h"
#include "lockstep/transport/mpi_session.h"
#include "lockstep/transport/options.h"

namespace lockstep {
namespace {

struct Flags {
  std::string model;
  int tp = 1;
  int pp = 1;
  std::string scenarios = "decode1,decode16,job64";
  int decode_tokens = 48;
  int threads = 1;
  std::string transport = "mpi";
  std::string reduction = "canonical";
  std::string model_io = "posix";
  bool anchor = false;
  bool tp_overlap = false;
  std::string scratch;
  std::string host_spec;
};

// Where `lockstep run` finds the calibrated host (launch/src/host_spec.cc).
std::string DefaultHostSpec() {
  if (const char* path = std::getenv("LOCKSTEP_HOST_SPEC"); path != nullptr && *path != '\0') {
    return path;
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.config/lockstep/host.json";
}

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    if (end > pos) parts.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return parts;
}

// Token ids of a prompt (any ids below 256 exist in every model preset).
std::string Prompt(int length, int salt) {
  std::string ids;
  for (int i = 0; i < length; ++i) {
    ids += fmt::format("{}{}", i == 0 ? "" : ",", (salt * 31 + i * 7) % 256);
  }
  return ids;
}

// The requests of a scenario, greedy, ignore_eos (lengths are exact).
std::string Requests(const std::string& scenario, int decode_tokens) {
  std::string text;
  auto add = [&](int i, int prompt, int generated) {
    text += fmt::format(
        R"({{"id": "s{}", "prompt_tokens": [{}], "max_tokens": {}, "temperature": 0, "ignore_eos": true}})"
        "\n",
        i, Prompt(prompt, i), generated);
  };
  if (scenario == "decode1") {
    add(0, 16, decode_tokens);
  } else if (scenario == "decode16") {
    for (int i = 0; i < 16; ++i) add(i, 16, decode_tokens);
  } else {  // job64
    for (int i = 0; i < 64; ++i) add(i, 4 + (i * 37) % 29, 8 + (i * 13) % 33);
  }
  return text;
}

// A plain allreduce / allgather over MPI (MPI_Allreduce's own order): what
// determinism is measured against. The tp group of world rank r is the
// ranks r / tp * tp .. + tp - 1 (docs/architecture.md, "Process layout").
class MpiTpGroup final : public runtime::TensorParallelGroup {
 public:
  explicit MpiTpGroup(int tp) {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_split(MPI_COMM_WORLD, rank / tp, rank, &comm_);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiTpGroup() override { MPI_Comm_free(&comm_); }
  int size() const override { return size_; }
  int rank() const override { return rank_; }
  Status AllReduceSum(std::span<float> data) override {
    MPI_Allreduce(MPI_IN_PLACE, data.data(), static_cast<int>(data.size()), MPI_FLOAT, MPI_SUM,
                  comm_);
    return Status::Ok();
  }
  Status AllGather(std::span<const float> mine, std::span<float> all) override {
    MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_FLOAT, all.data(),
                  static_cast<int>(mine.size()), MPI_FLOAT, comm_);
    return Status::Ok();
  }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
};

struct Row {
  double ms_per_token = 0;            // measured decode latency per token (per step)
  double predicted_ms_per_token = 0;  // the plan's
  double tokens_per_s = 0;            // aggregate generated tokens/s
  double predicted_tokens_per_s = 0;  // the plan's batch / its decode latency
  double ttft_ms = 0;
  double predicted_ttft_ms = 0;
  double collective_share = 0;
  double wait_share = 0;
  double predicted_collective_share = 0;  // the plan's RankShares, mean over ranks
  double predicted_wait_share = 0;
  double load_s = 0;
  uint64_t max_bytes_read = 0;
  uint64_t max_plan_bytes = 0;
};

Row Measure(const runtime::BatchJobSummary& s, const std::string& scenario) {
  Row row;
  const partitioner::Prediction& p = s.plan.prediction;
  row.predicted_ms_per_token = p.decode_latency_per_token_s * 1e3;
  row.predicted_ttft_ms = p.time_to_first_token_s * 1e3;
  // Decode rate of the plan's batch: batch tokens per step.
  row.predicted_tokens_per_s =
      p.decode_latency_per_token_s > 0
          ? s.plan.request.workload.batch_size / p.decode_latency_per_token_s
          : 0;
  // The batch's prefill: the last request's first token, as the plan
  // predicts it (time_to_first_token_s is the last micro-batch's). A mean
  // over requests would credit the earlier micro-batches of a pipeline.
  double rate_sum = 0, ttft_max = 0;
  int n = 0;
  for (const runtime::JobResult& r : s.results) {
    if (r.result.decode_tokens_per_s > 0) rate_sum += 1.0 / r.result.decode_tokens_per_s;
    ttft_max = std::max(ttft_max, r.result.ttft_ms);
    ++n;
  }
  if (n > 0) {
    row.ms_per_token = rate_sum / n * 1e3;  // mean over requests of their seconds per token
    row.ttft_ms = ttft_max;
  }
  if (scenario == "job64") {
    row.tokens_per_s = s.run_seconds > 0 ? s.generated_tokens / s.run_seconds : 0;
  } else {
    // Decode rate of the batch: each request's tokens after its first, over
    // its decode time, summed.
    for (const runtime::JobResult& r : s.results) row.tokens_per_s += r.result.decode_tokens_per_s;
  }
  for (const partitioner::RankShares& r : p.ranks) {
    const double total = r.compute_s + r.memory_s + r.communication_s + r.idle_s;
    if (total <= 0) continue;
    row.predicted_collective_share += r.communication_s / total / p.ranks.size();
    row.predicted_wait_share += r.idle_s / total / p.ranks.size();
  }
  for (const runtime::RankStats& r : s.ranks) {
    const double run = r.run_seconds > 0 ? r.run_seconds : 1;
    row.collective_share += r.collective_seconds / run / s.ranks.size();
    row.wait_share += r.pipeline_wait_seconds / run / s.ranks.size();
    row.load_s = std::max(row.load_s, r.load_seconds);
    row.max_bytes_read = std::max<uint64_t>(row.max_bytes_read, r.bytes_read);
    row.max_plan_bytes = std::max<uint64_t>(row.max_plan_bytes, r.plan_weight_bytes);
  }
  return row;
}

int Main(int argc, char** argv) {
  Flags f;
  CLI::App app("distributed_bench: a tp x pp batch job, measured against the prediction");
  app.add_option("--model", f.model, "Model file (HDF5)")->required();
  app.add_option("--tp", f.tp, "Tensor-parallel ranks");
  app.add_option("--pp", f.pp, "Pipeline stages");
  app.add_option("--scenarios", f.scenarios, "decode1,decode16,job64");
  app.add_option("--decode-tokens", f.decode_tokens, "Tokens generated in decode1/decode16");
  app.add_option("--threads", f.threads, "Engine threads per rank");
  app.add_option("--transport", f.transport, "mpi or ucx");
  app.add_option("--reduction", f.reduction, "canonical or plain");
  app.add_option("--model-io", f.model_io, "posix, mpiio or collective (lockstep run --model-io)");
  app.add_flag("--tp-overlap", f.tp_overlap,
               "Overlap the tp allreduces with compute (lockstep run --tp-overlap); the order "
               "column then ends in +ov");
  app.add_flag("--anchor", f.anchor, "Measure the 1- and 2-thread read bandwidth first (rank 0)");
  app.add_option("--scratch", f.scratch, "Folder for requests and results (default: a temp dir)");
  f.host_spec = DefaultHostSpec();
  app.add_option("--host-spec", f.host_spec, "Calibrated chip spec (lockstep calibrate --output)");
  CLI11_PARSE(app, argc, argv);

  Result<transport::MpiSession> session = transport::MpiSession::Init(&argc, &argv);
  if (!session.ok()) {
    std::fprintf(stderr, "%s\n", session.status().message().c_str());
    return 1;
  }
  const bool leader = session->world_rank() == 0;
  if (session->world_size() != f.tp * f.pp) {
    session->Abort(InvalidArgument("--tp {} --pp {} needs -np {}, got {}", f.tp, f.pp, f.tp * f.pp,
                                   session->world_size()));
  }
  if (f.anchor && leader) {
    const size_t bytes = size_t{1} << 30;
    const double bw1 = kernels::MeasureReadBandwidth(1, bytes, 3).read_bytes_per_second;
    const double bw2 = kernels::MeasureReadBandwidth(2, bytes, 3).read_bytes_per_second;
    std::printf("# anchor: read bandwidth 1 thread %.2f GB/s, 2 threads %.2f GB/s, ratio %.3f\n",
                bw1 / 1e9, bw2 / 1e9, bw2 / bw1);
  }
  Result<transport::CommOptions> comm = transport::CommOptionsFromFlags(f.transport, "600");
  if (!comm.ok()) session->Abort(comm.status());
  Result<transport::Communicator> world = transport::Communicator::CreateWorld(*session, *comm);
  if (!world.ok()) session->Abort(world.status());

  std::string scratch = f.scratch;
  if (scratch.empty()) {
    scratch = (std::filesystem::temp_directory_path() /
               fmt::format("lockstep_dbench_{}", static_cast<long>(getpid())))
                  .string();
  }
  if (leader) std::filesystem::create_directories(scratch);

  // The chips: every rank on this one node, as `lockstep run` plans them.
  std::optional<partitioner::ClusterSpec> cluster;
  std::error_code exists_error;
  if (std::filesystem::exists(f.host_spec, exists_error)) {
    Result<partitioner::ClusterSpec> spec = partitioner::LoadClusterSpecFile(f.host_spec);
    if (!spec.ok()) session->Abort(spec.status());
    spec->num_chips = session->world_size();
    spec->chips_per_node = session->world_size();
    cluster = *spec;
  }
  if (leader) {
    std::printf("# chip spec: %s\n",
                cluster ? f.host_spec.c_str() : "the uncalibrated `host` preset (no host spec)");
  }

  const bool plain = f.reduction == "plain";
  Result<runtime::ModelIo> model_io = runtime::ParseModelIo(f.model_io);
  if (!model_io.ok()) session->Abort(model_io.status().WithContext("--model-io"));
  const std::string order =
      (f.model_io == "posix" ? f.reduction : fmt::format("{},{}", f.reduction, f.model_io)) +
      (f.tp_overlap ? "+ov" : "");
  if (leader) {
    std::printf("%-5s %-5s %-9s %-7s %9s %9s %7s %10s %10s %8s %8s %6s %6s %7s %10s %6s %6s\n",
                "tp", "pp", "scenario", "order", "ms/token", "pred ms", "meas/pr", "tokens/s",
                "pred tok/s", "ttft ms", "pred ttft", "coll%", "wait%", "load s", "max read",
                "pcoll%", "pwait%");
  }
  for (const std::string& scenario : Split(f.scenarios)) {
    runtime::BatchJobOptions o;
    o.model_path = f.model;
    o.input_path = scratch + "/" + scenario + ".jsonl";
    o.output_path = scratch + "/" + scenario + ".out.jsonl";
    o.force = true;
    if (leader) {
      std::ofstream(o.input_path, std::ios::trunc) << Requests(scenario, f.decode_tokens);
    }
    o.threads = f.threads;
    o.isa = kernels::BestIsa();
    o.max_batch = scenario == "decode1" ? 1 : 16;
    o.tp = f.tp;
    o.pp = f.pp;
    o.keep_results = true;
    o.cluster = cluster;
    o.progress = false;
    o.model_io = *model_io;
    o.tp_overlap = f.tp_overlap;
    if (plain) {
      o.reduction_order = kernels::ReductionOrder::kPlain;
      const int tp = f.tp;
      o.tp_group_factory = [tp](transport::Communicator&) {
        return std::unique_ptr<runtime::TensorParallelGroup>(new MpiTpGroup(tp));
      };
    }
    bool on_all = false;
    Result<runtime::BatchJobSummary> s = runtime::RunBatchJob(o, *world, &on_all);
    if (!s.ok()) session->Abort(s.status());
    if (!leader) continue;
    const Row r = Measure(*s, scenario);
    const bool predicted = scenario != "job64";
    std::printf(
        "%-5d %-5d %-9s %-7s %9.3f %9s %7s %10.1f %10s %8.2f %8s %6.1f %6.1f %7.2f %10s %6s %6s\n",
        f.tp,
        f.pp, scenario.c_str(), order.c_str(), r.ms_per_token,
        predicted ? fmt::format("{:.3f}", r.predicted_ms_per_token).c_str() : "-",
        predicted ? fmt::format("{:.2f}", r.ms_per_token / r.predicted_ms_per_token).c_str() : "-",
        r.tokens_per_s, predicted ? fmt::format("{:.1f}", r.predicted_tokens_per_s).c_str() : "-",
        r.ttft_ms, predicted ? fmt::format("{:.2f}", r.predicted_ttft_ms).c_str() : "-",
        100 * r.collective_share, 100 * r.wait_share, r.load_s,
        fmt::format("{:.1f}MB/{:.1f}MB", r.max_bytes_read / 1e6, r.max_plan_bytes / 1e6).c_str(),
        predicted ? fmt::format("{:.1f}", 100 * r.predicted_collective_share).c_str() : "-",
        predicted ? fmt::format("{:.1f}", 100 * r.predicted_wait_share).c_str() : "-");
    std::fflush(stdout);
  }
  if (leader) std::filesystem::remove_all(scratch);
  return 0;
}

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  return lockstep::Main(argc, argv);
}
