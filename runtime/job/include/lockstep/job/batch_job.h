// A batch job: requests file in, results file out (`lockstep run`,
// docs/batch-jobs.md), on one rank or on the ranks of a plan
// (docs/distributed.md).
//
// One code path for every rank count: a job on one rank is the distributed
// job on a world of one chip. Every rank of `world` calls RunBatchJob with
// the same options; world rank 0 (the leader) reads the requests, makes or
// loads the plan, writes the results and reports progress. Start-up, in an
// order chosen so that a bad model or request file costs nothing and every
// failure ends every rank with one message from the leader (each phase ends
// with an agreement, see below):
//   1. every rank checks that all were started with the same arguments; the
//      leader checks that the request file can be read and claims the
//      results file (ResultWriter::Claim: an exclusive lock, a non-empty
//      file refused without resume or force; nothing truncated yet);
//   2. every rank opens and checks the model file (its own copy or a shared
//      file system), and the ranks compare the digests of the files they
//      opened (docs/model-format.md, "Checksums");
//   3. the leader reads every request line (and tokenizes it, once) and the
//      results file to resume, and loads, or makes with the partitioner, the
//      plan; it sends each rank its part of the plan (Plan::part_rank) and
//      the request data its stage uses (prompt ids to the first stage,
//      sampling fields to the last), for the requests still to run;
//   4. every rank checks its part of the plan against its model file and the
//      rank count (the last stage loads the tokenizer for stop strings);
//   5. every rank loads its shards (Plan::RankShards) and creates its engine;
//   6. the leader starts the results file (truncating it only with force).
// Every agreement is a reduction up a tree and back (job_agreement.h), and
// no start-up step sends a rank data in proportion to the rank count.
// Then the requests run through the pipeline (continuous batching, each
// result fsync'd by the leader as its request finishes), and the ranks'
// statistics are gathered on the leader (a tree).
//
// Errors. A job that cannot start returns the same non-OK Status on every
// rank ("rank 3: model.h5: ..."), with *error_on_all_ranks = true: the caller
// prints it on the leader and every rank exits non-zero. A failure while
// running (a peer that stops answering: the transport's deadline; an I/O
// error) is returned on the rank that saw it with *error_on_all_ranks =
// false: the caller must then end the whole job (transport::MpiSession::Abort),
// since its peers may be waiting. Request lines that cannot run are error
// records, counted in BatchJobSummary::failed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/engine/tensor_parallel.h"
#include "lockstep/job/result_writer.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/kernels/matmul.h"
#include "lockstep/partitioner/cluster_spec.h"
#include "lockstep/partitioner/plan.h"
#include "lockstep/transport/communicator.h"

namespace lockstep::runtime {

// How ranks read their shards of the model file (docs/distributed.md,
// "Loading"; measured in benchmarks/RESULTS.md).
enum class ModelIo {
  kPosix,       // HDF5's POSIX driver, each rank on its own (the default)
  kMpiIo,       // parallel HDF5's MPI-IO driver, independent reads
  kCollective,  // MPI-IO with collective reads (every rank reads every tensor,
                // empty selections for what it does not hold)
};
std::string_view ModelIoName(ModelIo io);  // "posix", "mpiio", "collective"
Result<ModelIo> ParseModelIo(std::string_view name);

struct BatchJobOptions {
  std::string model_path;                    // model file (HDF5, docs/model-format.md)
  std::string input_path;                    // requests (JSONL); read by the leader
  std::string output_path;                   // results (JSONL); written by the leader
  // Engine threads per rank; 0: the cores available to each rank (its CPU
  // affinity divided among the ranks of its host sharing the same CPUs,
  // rank_threads.h). The bits do not depend on it.
  int threads = 1;
  kernels::Isa isa = kernels::Isa::kScalar;  // kernels' instruction set
  // The matmuls' arithmetic (kernels/matmul.h): kBf16 needs a bf16 model
  // (refused otherwise, naming the file); recorded in the plan ("compute")
  // and in each result line ("compute": "bf16"). A plan file must agree.
  kernels::Compute compute = kernels::Compute::kFloat;
  int max_batch = 8;                         // requests in flight at once
  int max_step_tokens = 256;                 // tokens per forward step (prefill chunk budget)
  // KV cache per rank in MiB; 0 takes the plan's KV budget (made for the
  // max_batch largest requests of the file when the plan is made here).
  int64_t kv_cache_mb = 0;
  bool hash_logits = false;      // add logits_sha256 to each result
  std::string dump_logits_path;  // debug: every step's logits as JSONL ("" = off); written
                                 // by tp rank 0 of the last stage
  bool progress = true;          // plan summary and progress lines (leader)
  double progress_interval_s = 10.0;  // between progress lines when stderr is not a terminal
  bool resume = false;           // skip requests already in the results file
  bool force = false;            // overwrite a results file that holds lines (not with resume)
  bool timings = true;           // false: results without timing fields (--no-timings)

  // The plan (docs/distributed.md, "Plans"): a plan file, else tp x pp (0:
  // derived from the other and the rank count), else automatic for the
  // rank count. Plans made here use `cluster` (launch gives the calibrated
  // host spec; absent: the `host` preset) and a workload from the requests.
  std::string plan_path;
  int tp = 0;
  int pp = 0;
  int micro_batches = 0;  // 0: the plan's
  std::optional<partitioner::ClusterSpec> cluster;
  ModelIo model_io = ModelIo::kPosix;

  // Hash of the command line (ArgumentsFingerprint); ranks must agree.
  uint64_t arguments_fingerprint = 0;

  // For tests and benchmarks.
  bool keep_results = false;  // fill BatchJobSummary::results (leader)
  // The reduction order of every matmul; kPlain only to measure what the
  // canonical order costs (results then differ from every other run).
  kernels::ReductionOrder reduction_order = kernels::ReductionOrder::kCanonical;
  // Replaces the transport's tp collectives (to measure a plain allreduce).
  std::function<std::unique_ptr<TensorParallelGroup>(transport::Communicator& tp_group)>
      tp_group_factory;
};

// What one rank did (gathered on the leader).
struct RankStats {
  int rank = 0;
  int stage = 0;
  int tp_rank = 0;
  uint64_t bytes_read = 0;           // ModelFile::bytes_read() after loading (metadata included)
  uint64_t plan_weight_bytes = 0;    // the plan's memory.weights for the rank
  double load_seconds = 0;           // open + read + pack + engine
  double run_seconds = 0;            // the step loop
  double compute_seconds = 0;        // kernels
  double collective_seconds = 0;     // tp allreduce / allgather (waiting included)
  double pipeline_wait_seconds = 0;  // waiting for descriptors, activations, outcomes
  // The step loop's time in the results' bookkeeping (world rank 0: handing
  // finished results to the writer thread; 0 elsewhere).
  double results_seconds = 0;
  int64_t steps = 0;
  int32_t kv_pages = 0;
  uint64_t kv_cache_bytes = 0;  // the rank's KV cache memory
  int threads = 0;              // engine threads the rank ran
  // Start-up (phases 1-6, docs/distributed.md "Start-up"): its time, the
  // bytes and messages this rank received (transport::Traffic, the ucx
  // backend's address exchange included) and the peers it messaged or
  // connected to.
  double startup_seconds = 0;
  uint64_t startup_bytes_received = 0;
  uint64_t startup_messages_received = 0;
  int startup_peers = 0;
  uint64_t peak_rss_bytes = 0;  // the process's peak resident set at the end (getrusage)
  // Hidden states received from the previous stage while running: bytes
  // and tokens (0 on stage 0).
  uint64_t hidden_bytes_received = 0;
  int64_t hidden_tokens_received = 0;
};

// A request's result as the leader saw it (keep_results).
struct JobResult {
  RequestResult result;
  std::vector<uint64_t> step_fingerprints;  // LogitsFingerprint of each step (with hash_logits)
};

struct BatchJobSummary {
  int64_t completed = 0;      // results written
  int64_t failed = 0;         // error records written
  int64_t skipped = 0;        // requests already done (resume)
  // Group commits of the run's result lines (leader): one write and one
  // fsync for the results and error records that finished in one step (or
  // in several steps queued behind a slow disk), so at most the steps in
  // which something finished (error records of start-up not counted).
  int64_t result_commits = 0;
  int64_t prompt_tokens = 0;  // of the completed requests
  int64_t generated_tokens = 0;
  double load_seconds = 0.0;  // the leader's: opening the model and loading the weights
  double run_seconds = 0.0;   // from the first step to the last result
  // The plan executed: the whole plan on the leader, the rank's part
  // (Plan::part_rank) elsewhere.
  partitioner::Plan plan;
  int window = 1;      // steps in flight
  int max_chunks = 1;  // sequences per step
  int32_t kv_pages = 0;
  int threads = 0;  // this rank's engine threads (BatchJobOptions::threads resolved)
  // Timings the leader saw (completed requests only): each request's time
  // to first token (from admission), and every gap between two consecutive
  // tokens of a request (the inter-token latency), in seconds.
  std::vector<double> ttft_s;
  std::vector<double> inter_token_s;
  // The slowest time to first token (from admission) of the requests
  // admitted in the job's first step, if all of them completed: the batch
  // whose prefill the plan's time_to_first_token_s predicts. 0 otherwise.
  double first_batch_ttft_s = 0;
  std::vector<RankStats> ranks;    // by world rank (leader; empty elsewhere)
  std::vector<JobResult> results;  // completion order (leader, keep_results)
};

// FNV-1a 64 of a command line's arguments (each followed by a NUL byte): what
// BatchJobOptions::arguments_fingerprint holds.
uint64_t ArgumentsFingerprint(const std::vector<std::string_view>& arguments);

// One rank without MPI: the job on a world of one chip.
// The files of a job must be distinct: --output (and --dump-logits) must
// not be --input or --model, as a path, a link or another name of the same
// file. InvalidArgument naming both flags otherwise. Touches nothing; the
// leader calls it at start-up, launch before that (a bad command line).
Status CheckJobFiles(const BatchJobOptions& options);

Result<BatchJobSummary> RunBatchJob(const BatchJobOptions& options);

// One rank of a job over `world` (see the file comment for errors).
Result<BatchJobSummary> RunBatchJob(const BatchJobOptions& options, transport::Communicator& world,
                                    bool* error_on_all_ranks);

}  // namespace lockstep::runtime
