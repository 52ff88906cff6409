// `lockstep run`: a batch job on one rank, on the ranks of an mpirun/srun
// job, or on chips simulated as threads (docs/batch-jobs.md,
// docs/distributed.md).
//
//   lockstep run --model M.h5 --input R.jsonl --output O.jsonl          one rank
//   mpirun -np N lockstep run ... [--tp T --pp P | --plan plan.json]    N ranks
//   lockstep run ... --transport local --chips N                        N threads
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <memory>
#include <mutex>
#include <string>

#include "command.h"
#include "flag_bounds.h"
#include "host_spec.h"
#include "launcher.h"
#include "lockstep/base/log.h"
#include "lockstep/base/plural.h"
#include "lockstep/job/batch_job.h"
#include "lockstep/job/job_summary.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/partitioner/plan_report.h"
#include "lockstep/transport/communicator.h"
#include "lockstep/transport/local_fabric.h"
#include "lockstep/transport/mpi_session.h"
#include "lockstep/transport/options.h"

namespace lockstep::launch {
namespace {

struct Flags {
  Flags() { job.threads = 0; }  // --threads auto
  runtime::BatchJobOptions job;
  std::string isa = "auto";
  std::string compute = "float";
  std::string transport = "mpi";
  std::string comm_timeout;
  std::string model_io = "posix";
  int chips = 0;             // --transport local only
  std::string summary_path;  // --summary: the job's JSON summary
  bool no_progress = false;
  bool no_timings = false;
};

// Every flag's value, so that ranks can check they run the same command.
uint64_t FlagsFingerprint(const Flags& f) {
  const runtime::BatchJobOptions& j = f.job;
  const std::vector<std::string> values = {j.model_path,
                                           j.input_path,
                                           j.output_path,
                                           std::to_string(j.threads),
                                           f.isa,
                                           f.compute,
                                           std::to_string(j.max_batch),
                                           std::to_string(j.max_step_tokens),
                                           std::to_string(j.kv_cache_mb),
                                           j.hash_logits ? "h" : "-",
                                           j.dump_logits_path,
                                           f.no_progress ? "q" : "-",
                                           j.resume ? "r" : "-",
                                           j.force ? "f" : "-",
                                           f.no_timings ? "t" : "-",
                                           j.plan_path,
                                           std::to_string(j.tp),
                                           std::to_string(j.pp),
                                           std::to_string(j.micro_batches),
                                           f.transport,
                                           f.comm_timeout,
                                           f.model_io,
                                           std::to_string(f.chips),
                                           f.summary_path};
  std::vector<std::string_view> views(values.begin(), values.end());
  return runtime::ArgumentsFingerprint(views);
}

// The leader's closing lines: results, measured beside predicted speed, and
// per rank what it read and where its time went; then the --summary file.
// Returns the exit code.
int ReportSummary(const Flags& f, const runtime::BatchJobSummary& s) {
  const runtime::BatchJobOptions& job = f.job;
  if (job.progress) {
    const double rate = s.run_seconds > 0 ? s.generated_tokens / s.run_seconds : 0.0;
    LOCKSTEP_LOG_INFO("run", "{}: {}, {}{}; {} generated in {:.3f} s ({:.1f} tokens/s)",
                      job.output_path, Plural(s.completed, "result"),
                      Plural(s.failed, "error record"),
                      s.skipped > 0 ? fmt::format(", {} skipped (already done)", s.skipped) : "",
                      Plural(s.generated_tokens, "token"), s.run_seconds, rate);
    if (s.completed > 0) {
      LOCKSTEP_LOG_INFO("run", "{}",
                        runtime::FormatMeasuredVsPredicted(runtime::CompareWithPlan(s)));
    }
  }
  if (s.ranks.size() > 1 && job.progress) {
    // Start-up over the ranks (docs/distributed.md, "Start-up"): min /
    // median / max, so that one line stays readable at any rank count.
    const auto spread = [&](auto value, auto format) {
      std::vector<double> v;
      for (const runtime::RankStats& r : s.ranks) v.push_back(static_cast<double>(value(r)));
      std::sort(v.begin(), v.end());
      return fmt::format("{} / {} / {}", format(v.front()), format(v[v.size() / 2]),
                         format(v.back()));
    };
    const auto bytes = [](double b) { return partitioner::FormatBytes(b); };
    const auto seconds = [](double t) { return fmt::format("{:.2f} s", t); };
    const auto count = [](double n) { return fmt::format("{:.0f}", n); };
    LOCKSTEP_LOG_INFO(
        "run",
        "start-up over {} ranks (min / median / max): {}; received {} in {} messages; {} peers; "
        "peak RSS {}",
        s.ranks.size(), spread([](const auto& r) { return r.startup_seconds; }, seconds),
        spread([](const auto& r) { return r.startup_bytes_received; }, bytes),
        spread([](const auto& r) { return r.startup_messages_received; }, count),
        spread([](const auto& r) { return r.startup_peers; }, count),
        spread([](const auto& r) { return r.peak_rss_bytes; }, bytes));
    // Stage-to-stage traffic: hidden-state bytes received over every stage
    // boundary, per token crossing one boundary.
    uint64_t hidden_bytes = 0;
    int64_t hidden_tokens = 0;
    for (const runtime::RankStats& r : s.ranks) {
      hidden_bytes += r.hidden_bytes_received;
      hidden_tokens += r.hidden_tokens_received;
    }
    if (hidden_tokens > 0) {
      LOCKSTEP_LOG_INFO("run", "stage-to-stage traffic: {:.0f} bytes per token and boundary",
                        static_cast<double>(hidden_bytes) * s.plan.tp / hidden_tokens);
    }
    for (const runtime::RankStats& r : s.ranks) {
      const double run = r.run_seconds > 0 ? r.run_seconds : 1.0;
      const double read_ratio =
          r.plan_weight_bytes > 0 ? static_cast<double>(r.bytes_read) / r.plan_weight_bytes : 0.0;
      LOCKSTEP_LOG_INFO(
          "run",
          "rank {} (stage {}, tp {}): read {} for {} of shards ({:+.2f}%), loaded in {:.2f} s; "
          "start-up {:.2f} s, received {} from {}, peak RSS {}; "
          "{}: compute {:.0f}%, tp collectives {:.0f}%, pipeline wait {:.0f}%{}",
          r.rank, r.stage, r.tp_rank, partitioner::FormatBytes(static_cast<double>(r.bytes_read)),
          partitioner::FormatBytes(static_cast<double>(r.plan_weight_bytes)),
          (read_ratio - 1.0) * 100.0, r.load_seconds, r.startup_seconds,
          partitioner::FormatBytes(static_cast<double>(r.startup_bytes_received)),
          Plural(r.startup_peers, "peer"),
          partitioner::FormatBytes(static_cast<double>(r.peak_rss_bytes)), Plural(r.steps, "step"),
          100.0 * r.compute_seconds / run, 100.0 * r.collective_seconds / run,
          100.0 * r.pipeline_wait_seconds / run,
          r.results_seconds > 0
              ? fmt::format(", results {:.1f}% ({:.3f} ms per step)",
                            100.0 * r.results_seconds / run,
                            r.steps > 0 ? 1e3 * r.results_seconds / r.steps : 0.0)
              : "");
    }
  }
  if (!f.summary_path.empty()) {
    Status written = runtime::WriteJobSummary(f.summary_path, job, s);
    if (!written.ok()) return ReportError(written);
  }
  return s.failed > 0 ? kExitRequestErrors : kExitOk;
}

// The cluster a plan made here is for: the calibrated host, or the preset
// with a one-time warning (not with --no-progress, and not with --plan,
// whose cluster is the plan file's).
Status UseHostCluster(Flags& f, int chips, bool leader) {
  bool calibrated = false;
  LOCKSTEP_ASSIGN_OR_RETURN(partitioner::ClusterSpec cluster, HostClusterSpec(chips, &calibrated));
  f.job.cluster = cluster;
  if (leader && !calibrated && f.job.progress && f.job.plan_path.empty()) {
    WarnUncalibratedOnce("run");
  }
  return Status::Ok();
}

// --tp/--pp/--plan that cannot work with the ranks launched: a bad command
// line, found before MPI starts (MakeJobPlan says the same to library
// callers).
Status CheckSplit(const runtime::BatchJobOptions& j, int ranks, std::string_view start) {
  if (!j.plan_path.empty() && (j.tp != 0 || j.pp != 0)) {
    return InvalidArgument("give either --plan or --tp/--pp, not both");
  }
  if (j.tp > 0 && j.pp > 0 && j.tp * j.pp != ranks) {
    return InvalidArgument("--tp {} --pp {} needs {} but the job has {}; {}", j.tp, j.pp,
                           Plural(j.tp * j.pp, "rank"), ranks,
                           fmt::format(fmt::runtime(start), j.tp * j.pp, j.tp * j.pp));
  }
  for (auto [flag, value] : {std::pair{"--tp", j.tp}, std::pair{"--pp", j.pp}}) {
    if (value > 0 && (j.tp == 0 || j.pp == 0) && ranks % value != 0) {
      return InvalidArgument("{} {} does not divide the job's {}; {}", flag, value,
                             Plural(ranks, "rank"), fmt::format(fmt::runtime(start), value, value));
    }
  }
  return Status::Ok();
}

int RunLocalChips(Flags& f, const transport::CommOptions& comm_options) {
  const int chips = f.chips > 0 ? f.chips : 1;
  if (Status host = UseHostCluster(f, chips, true); !host.ok()) return ReportError(host);
  std::mutex mutex;
  Result<runtime::BatchJobSummary> leader = Internal("chip 0 did not run");
  std::vector<Status> statuses =
      transport::RunLocal(chips, comm_options, [&](transport::Communicator& chip) -> Status {
        bool on_all = false;
        Result<runtime::BatchJobSummary> s = runtime::RunBatchJob(f.job, chip, &on_all);
        if (chip.rank() == 0) {
          std::lock_guard<std::mutex> lock(mutex);
          leader = std::move(s);
          return leader.status();
        }
        return s.status();
      });
  if (!leader.ok()) return ReportError(leader.status());
  for (size_t r = 1; r < statuses.size(); ++r) {
    if (!statuses[r].ok()) return ReportError(statuses[r].WithContext(fmt::format("chip {}", r)));
  }
  return ReportSummary(f, *leader);
}

int RunWorld(Flags& f, const transport::CommOptions& comm_options) {
  Result<transport::MpiSession> session = transport::MpiSession::Init(nullptr, nullptr);
  if (!session.ok()) return ReportError(session.status());
  Status host = UseHostCluster(f, session->world_size(), session->world_rank() == 0);
  if (!host.ok()) session->Abort(host);
  Result<transport::Communicator> world =
      transport::Communicator::CreateWorld(*session, comm_options);
  if (!world.ok()) session->Abort(world.status());
  bool on_all_ranks = false;
  Result<runtime::BatchJobSummary> s = runtime::RunBatchJob(f.job, *world, &on_all_ranks);
  if (!s.ok()) {
    if (!on_all_ranks) session->Abort(s.status());  // peers may be waiting: end the job
    if (session->world_rank() == 0) return ReportError(s.status());
    return kExitError;
  }
  if (session->world_rank() == 0) return ReportSummary(f, *s);
  return s->failed > 0 ? kExitRequestErrors : kExitOk;
}

}  // namespace

Command AddRunCommand(CLI::App& app) {
  auto flags = std::make_shared<Flags>();
  Flags& f = *flags;
  CLI::App* run = app.add_subcommand(
      "run",
      "Run a batch job: generate for every request of a JSONL file, on one rank or under mpirun "
      "(docs/batch-jobs.md, docs/distributed.md)");
  run->add_option("--model", f.job.model_path, "Model file (HDF5)")->required();
  run->add_option("--input", f.job.input_path,
                  "Requests, one JSON object per line (OpenAI batch or plain form)")
      ->required();
  run->add_option("--output", f.job.output_path,
                  "Results, one JSON object per line, each fsync'd when its request finishes")
      ->required();
  const std::string cpus = fmt::format("the {} CPUs this process may use", ThisMachine().cpus);
  const CLI::Validator whole_threads = WholeNumber(1, MaxThreads(), "4 x " + cpus);
  run->add_option("--threads", f.job.threads,
                  "Compute threads per rank, or auto: the cores available to each rank (its CPU "
                  "affinity shared with the ranks of its host bound to the same CPUs)")
      ->transform(CLI::Validator(
          [whole_threads](std::string& value) -> std::string {
            if (value == "auto") {
              value = "0";  // BatchJobOptions::threads 0: the cores available to each rank
              return "";
            }
            std::string error = whole_threads(value);
            return error.empty() ? error : error + " (or auto)";
          },
          "auto|N"))
      ->default_str("auto");
  run->add_option("--isa", f.isa, "Kernel instruction set: auto, avx512, avx2 or scalar")
      ->default_val("auto");
  run->add_option("--compute", f.compute,
                  "Matmul arithmetic: float (f32 FMAs) or bf16 (bf16 models only: activations "
                  "rounded to bf16, the bf16 dot product; other bits than float)")
      ->default_val("float");
  run->add_flag("--tp-overlap", f.job.tp_overlap,
                "Overlap each tp allreduce with compute: a step's batch as two micro-batches, "
                "one computing while the other's allreduce is in flight (same bits; helps "
                "large-model decode)");
  run->add_option("--max-batch", f.job.max_batch, "Requests in flight at once")
      ->default_val(8)
      ->check(WholeNumber(1, kMaxBatch));
  run->add_option("--max-step-tokens", f.job.max_step_tokens,
                  "Tokens per forward step (bounds prefill chunks)")
      ->default_val(256)
      ->check(WholeNumber(1, kMaxStepTokens));
  run->add_option("--kv-cache-mb", f.job.kv_cache_mb,
                  "KV cache per rank in MiB (0: the plan's budget, enough for the max-batch "
                  "largest requests)")
      ->default_val(0)
      ->check(WholeNumber(0, MaxKvCacheMiB(), "this machine's memory"));
  run->add_flag("--hash-logits", f.job.hash_logits,
                "Add logits_sha256 (SHA-256 of every generated step's f32 logits) to each result");
  run->add_option("--dump-logits", f.job.dump_logits_path,
                  "Debug: write every generated step's logits to this JSONL file");
  run->add_flag("--no-progress", f.no_progress,
                "Nothing on stderr but errors (no plan, progress or closing lines)");
  run->add_option("--summary", f.summary_path,
                  "Write a JSON summary of the job here: TTFT and inter-token latency "
                  "percentiles, throughput, measured beside predicted, per-rank times");
  run->add_flag("--resume", f.job.resume,
                "Skip requests whose results are already in --output, and append the others");
  run->add_flag("--force", f.job.force,
                "Overwrite --output if it already holds results (without --resume or --force a "
                "non-empty --output is refused)");
  run->add_flag("--no-timings", f.no_timings,
                "Leave ttft_ms and decode_tokens_per_s out of the results (files of two runs then "
                "compare byte for byte after sorting)");
  // Distribution.
  run->add_option("--tp", f.job.tp, "Tensor-parallel ranks per stage (0: from --pp or automatic)")
      ->default_val(0)
      ->check(WholeNumber(0, kMaxSplit));
  run->add_option("--pp", f.job.pp, "Pipeline stages (0: from --tp or automatic)")
      ->default_val(0)
      ->check(WholeNumber(0, kMaxSplit));
  run->add_option("--plan", f.job.plan_path, "A plan file from `lockstep plan --output`");
  run->add_option("--micro-batches", f.job.micro_batches,
                  "Steps in flight in the pipeline (0: the plan's micro-batch count)")
      ->default_val(0)
      ->check(WholeNumber(0, kMaxSplit));
  run->add_option("--transport", f.transport,
                  "Backend between ranks: mpi, ucx, or local (threads of one process, --chips)")
      ->default_val("mpi");
  run->add_option("--chips", f.chips, "With --transport local: the number of chips (threads)")
      ->check(WholeNumber(1, MaxLocalChips(), "one chip per 16 MiB of this machine's memory"));
  run->add_option("--comm-timeout", f.comm_timeout,
                  "Deadline of every wait for a peer: seconds (300) or with a unit (500ms, 5min)");
  run->add_option("--model-io", f.model_io,
                  "How ranks read their shards: posix, mpiio or collective (MPI-IO)")
      ->default_val("posix");

  Command command;
  command.app = run;
  command.run = [flags]() -> int {
    Flags& f = *flags;
    Result<kernels::Isa> isa = kernels::ParseIsa(f.isa);
    if (!isa.ok()) {
      ReportError(isa.status().WithContext("--isa"));
      return kExitUsage;
    }
    Result<kernels::Compute> compute = kernels::ParseCompute(f.compute);
    if (!compute.ok()) {
      ReportError(compute.status().WithContext("--compute"));
      return kExitUsage;
    }
    f.job.compute = *compute;
    Result<runtime::ModelIo> model_io = runtime::ParseModelIo(f.model_io);
    if (!model_io.ok()) {
      ReportError(model_io.status().WithContext("--model-io"));
      return kExitUsage;
    }
    Result<transport::CommOptions> comm =
        transport::CommOptionsFromFlags(f.transport, f.comm_timeout);
    if (!comm.ok()) {
      ReportError(comm.status());
      return kExitUsage;
    }
    f.job.isa = *isa;
    f.job.model_io = *model_io;
    f.job.progress = !f.no_progress;
    f.job.timings = !f.no_timings;
    if (f.job.resume && f.job.force) {
      ReportError(InvalidArgument("--resume keeps the results in --output and --force overwrites "
                                  "them: give one of them"));
      return kExitUsage;
    }
    // --output naming --input or --model is a bad command line (exit 2),
    // caught here before anything starts; the leader checks again.
    if (Status files = runtime::CheckJobFiles(f.job); !files.ok()) {
      if (LauncherWorldRank() == 0) ReportError(files);
      return kExitUsage;
    }
    f.job.arguments_fingerprint = FlagsFingerprint(f);
    const int launched = LauncherWorldSize();
    if (comm->backend == transport::BackendKind::kLocal) {
      if (launched > 1) {
        ReportError(InvalidArgument(
            "--transport local simulates every chip in one process; start it without mpirun "
            "(--chips N), or use --transport mpi or ucx under mpirun"));
        return kExitUsage;
      }
      const Status split = CheckSplit(f.job, f.chips > 0 ? f.chips : 1, "use --chips {}");
      if (!split.ok()) return ReportUsage(split);
      // Every chip is a thread running --threads compute threads (auto: the
      // process's CPUs shared among the chips, at least one each). Chips
      // block while they wait; compute threads beyond one per chip spin in
      // oneTBB, so those are bounded by the CPUs.
      const int64_t total = int64_t{std::max(f.chips, 1)} * std::max(f.job.threads, 1);
      if (f.job.threads > 1 && total > 16 * int64_t{ThisMachine().cpus}) {
        ReportError(InvalidArgument(
            "--chips {} x --threads {} = {} threads, more than 16 x the {} CPUs this process "
            "may use; use fewer chips or threads",
            std::max(f.chips, 1), f.job.threads, total, ThisMachine().cpus));
        return kExitUsage;
      }
      return RunLocalChips(f, *comm);
    }
    if (f.chips > 0) {
      ReportError(
          InvalidArgument("--chips is for --transport local; under mpirun the ranks are "
                          "the chips (mpirun -np N)"));
      return kExitUsage;
    }
    // Every rank finds a bad split; rank 0 says so.
    const Status split = CheckSplit(
        f.job, launched, "start it with mpirun -np {} (or --transport local --chips {})");
    if (!split.ok()) return LauncherWorldRank() == 0 ? ReportUsage(split) : kExitUsage;
    if (launched == 1) {
      // One rank without mpirun: no MPI at all.
      if (Status host = UseHostCluster(f, 1, true); !host.ok()) return ReportError(host);
      Result<runtime::BatchJobSummary> s = runtime::RunBatchJob(f.job);
      if (!s.ok()) return ReportError(s.status());
      return ReportSummary(f, *s);
    }
    return RunWorld(f, *comm);
  };
  return command;
}

}  // namespace lockstep::launch
