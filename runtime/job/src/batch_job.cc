#include "lockstep/job/batch_job.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>

#include "completion_text.h"
#include "job_agreement.h"
#include "job_plan.h"
#include "lockstep/base/check.h"
#include "lockstep/base/log.h"
#include "lockstep/base/plural.h"
#include "lockstep/base/progress.h"
#include "lockstep/engine/engine.h"
#include "lockstep/engine/scheduler.h"
#include "lockstep/job/request.h"
#include "lockstep/job/result_writer.h"
#include "lockstep/model/model_file.h"
#include "lockstep/partitioner/plan_report.h"
#include "lockstep/tokenizer/chat_template.h"
#include "lockstep/tokenizer/tokenizer.h"
#include "lockstep/transport/local_fabric.h"
#include "pipeline.h"
#include "rank_threads.h"
#include "result_committer.h"
#include "resume.h"
#include "step_sampler.h"

namespace lockstep::runtime {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// What the leader prepares in start-up phase 3: the requests, parsed and
// tokenized once, the plan, and the requests already done (resume).
struct LeaderInputs {
  RequestFile requests;
  partitioner::Plan plan;
  std::set<int64_t> skip;  // request indices already done
};

// What one rank receives from the leader in phase 3 (docs/distributed.md,
// "Start-up"): its part of the plan and only the request data its stage
// uses -- prompt ids and max_tokens on the first stage, the sampling fields
// on the last, nothing in between -- for the requests still to run. Its
// size does not grow with the rank count.
struct RankInputs {
  partitioner::Plan plan;  // the rank's part (Plan::part_rank)
  int32_t kv_pages = 0;    // JobKvPages of the whole plan
  int64_t num_requests = 0;
  bool needs_tokenizer = false;  // a request has stop strings (the last stage decodes)
  int64_t max_positions = 0;     // the longest request's prompt + max_tokens (RoPE table)
  // Indexed by request (handle); only the fields above are filled, and only
  // for the requests in `pending`.
  std::vector<Request> requests;
  std::vector<int64_t> pending;  // in file order
};

std::vector<std::byte> EncodeRankInputs(const LeaderInputs& in, int rank, int32_t kv_pages) {
  const partitioner::Plan& plan = in.plan;
  const int stage = plan.StageOf(rank);
  const bool first = stage == 0;
  const bool last = stage == plan.pp - 1;
  nlohmann::json prompts = nlohmann::json::array();
  nlohmann::json sampling = nlohmann::json::array();
  bool needs_tokenizer = false;
  int64_t max_positions = 0;
  for (const Request& r : in.requests.requests) {
    max_positions =
        std::max(max_positions, static_cast<int64_t>(r.prompt_tokens.size()) + r.max_tokens);
  }
  for (size_t i = 0; i < in.requests.requests.size(); ++i) {
    if (in.skip.count(static_cast<int64_t>(i)) != 0) continue;
    const Request& r = in.requests.requests[i];
    if (first) prompts.push_back({i, r.max_tokens, r.prompt_tokens});
    if (last) {
      sampling.push_back({i, r.id, r.max_tokens, r.temperature, r.top_k, r.top_p, r.seed,
                          r.stop_token_ids, r.ignore_eos, r.stop});
      needs_tokenizer = needs_tokenizer || !r.stop.empty();
    }
  }
  const nlohmann::json j = {{"plan", partitioner::PlanToJson(partitioner::PlanPart(plan, rank))},
                            {"kv_pages", kv_pages},
                            {"num_requests", in.requests.requests.size()},
                            {"needs_tokenizer", needs_tokenizer},
                            {"max_positions", max_positions},
                            {"prompts", std::move(prompts)},
                            {"sampling", std::move(sampling)}};
  std::vector<uint8_t> cbor = nlohmann::json::to_cbor(j);
  std::vector<std::byte> bytes(cbor.size());
  std::memcpy(bytes.data(), cbor.data(), cbor.size());
  return bytes;
}

Result<RankInputs> DecodeRankInputs(const std::vector<std::byte>& bytes) {
  const nlohmann::json j = nlohmann::json::from_cbor(
      reinterpret_cast<const uint8_t*>(bytes.data()),
      reinterpret_cast<const uint8_t*>(bytes.data()) + bytes.size(), true, false);
  if (!j.is_object()) return Internal("the job inputs from rank 0 are not valid CBOR");
  RankInputs in;
  try {
    LOCKSTEP_ASSIGN_OR_RETURN(in.plan,
                              partitioner::PlanFromJson(j.at("plan"), "the job's plan (part)"));
    in.kv_pages = j.at("kv_pages").get<int32_t>();
    in.num_requests = j.at("num_requests").get<int64_t>();
    in.needs_tokenizer = j.at("needs_tokenizer").get<bool>();
    in.max_positions = j.at("max_positions").get<int64_t>();
    in.requests.resize(static_cast<size_t>(in.num_requests));
    std::set<int64_t> pending;
    for (const nlohmann::json& p : j.at("prompts")) {
      const int64_t i = p.at(0).get<int64_t>();
      if (i < 0 || i >= in.num_requests) return Internal("request {} out of range", i);
      Request& r = in.requests[static_cast<size_t>(i)];
      r.max_tokens = p.at(1).get<int64_t>();
      r.prompt_tokens = p.at(2).get<std::vector<int32_t>>();
      pending.insert(i);
    }
    for (const nlohmann::json& p : j.at("sampling")) {
      const int64_t i = p.at(0).get<int64_t>();
      if (i < 0 || i >= in.num_requests) return Internal("request {} out of range", i);
      Request& r = in.requests[static_cast<size_t>(i)];
      r.id = p.at(1).get<std::string>();
      r.max_tokens = p.at(2).get<int64_t>();
      r.temperature = p.at(3).get<float>();
      r.top_k = p.at(4).get<int>();
      r.top_p = p.at(5).get<float>();
      r.seed = p.at(6).get<uint64_t>();
      r.stop_token_ids = p.at(7).get<std::vector<int32_t>>();
      r.ignore_eos = p.at(8).get<bool>();
      r.stop = p.at(9).get<std::vector<std::string>>();
      pending.insert(i);
    }
    in.pending.assign(pending.begin(), pending.end());
  } catch (const nlohmann::json::exception& e) {
    return Internal("the job inputs from rank 0 are malformed: {}", e.what());
  }
  return in;
}

// The leader's view of the requests while they run. The step loop only
// records tokens and times; a finished request goes to the writer thread
// (ResultCommitter: text, line, one fsync per step's group) and counts as
// done -- summary, progress -- once its commit has returned.
class ResultSink final : public StepObserver {
 public:
  // `tokenizer` (may be null) gives each result its text; `model_sha256`
  // (the model file's manifest digest, may be empty) goes into every line.
  ResultSink(const std::vector<Request>& requests, const BatchJobOptions& options,
             std::string model_sha256, const Tokenizer* tokenizer, ResultCommitter* committer,
             ProgressReporter* progress, BatchJobSummary* summary)
      : requests_(requests),
        options_(options),
        model_sha256_(std::move(model_sha256)),
        tokenizer_(tokenizer),
        committer_(committer),
        progress_(progress),
        summary_(summary),
        live_(requests.size()) {}

  Status OnIssued(const StepPlan& plan) override {
    const Clock::time_point now = Clock::now();
    for (int64_t h : plan.admitted) live_[static_cast<size_t>(h)].admitted = now;
    if (first_batch_left_ < 0 && !plan.admitted.empty()) {
      first_batch_left_ = static_cast<int64_t>(plan.admitted.size());
      for (int64_t h : plan.admitted) live_[static_cast<size_t>(h)].first_batch = true;
    }
    return Status::Ok();
  }

  Status OnCompleted(const StepPlan&, const StepOutcomes& outcomes) override {
    const Clock::time_point now = Clock::now();
    std::vector<ResultCommitter::Entry> group;
    for (const RowOutcome& row : outcomes.rows) {
      const size_t h = static_cast<size_t>(row.handle);
      Live& s = live_[h];
      if (row.non_finite != RowOutcome::NonFinite::kNone) {
        // The logits of this step were not finite: an error record naming
        // the step, in place of a result.
        const Request& r = requests_[h];
        const int64_t step = static_cast<int64_t>(s.tokens.size());
        RequestError e{r.id, r.line,
                       fmt::format("{}:{}: the logits of generation step {} (position {}) hold {} "
                                   "at token id {}; the request was stopped (the model's "
                                   "activations overflow: `lockstep verify` checks its weights)",
                                   options_.input_path, r.line, step,
                                   static_cast<int64_t>(r.prompt_tokens.size()) + step,
                                   row.non_finite == RowOutcome::NonFinite::kNan ? "a NaN"
                                                                                 : "an infinity",
                                   row.token)};
        LOCKSTEP_LOG_WARN("run", "{}", e.message);
        ResultCommitter::Entry entry;
        entry.error = std::move(e);
        entry.tag = row.handle;
        group.push_back(std::move(entry));
        s = Live{};
        continue;
      }
      if (s.tokens.empty()) s.first_token = now;
      if (!s.tokens.empty()) s.gaps.push_back(Seconds(s.last_token, now));
      s.last_token = now;
      ++tokens_seen_;
      s.tokens.push_back(row.token);
      if (options_.keep_results) s.fingerprints.push_back(row.fingerprint);
      if (!row.finished) continue;
      const Request& r = requests_[h];
      ResultCommitter::Entry entry;
      RequestResult& result = entry.result.emplace();
      result.id = r.id;
      result.chat = r.chat();
      result.tokens = std::move(s.tokens);
      // The text is decoded on the writer thread, from the tokens: the same
      // bytes the last stage built to find stop strings.
      if (tokenizer_ != nullptr) entry.text_request = &r;
      result.finish_reason = row.stop ? FinishReason::kStop : FinishReason::kLength;
      result.prompt_tokens = static_cast<int64_t>(r.prompt_tokens.size());
      result.ttft_ms = Seconds(s.admitted, s.first_token) * 1e3;
      const double decode_s = Seconds(s.first_token, s.last_token);
      if (result.tokens.size() > 1 && decode_s > 0) {
        result.decode_tokens_per_s = static_cast<double>(result.tokens.size() - 1) / decode_s;
      }
      result.include_timings = options_.timings;
      result.bf16_compute = options_.compute == kernels::Compute::kBf16;
      result.model_sha256 = model_sha256_;
      if (options_.hash_logits) {
        if (row.logits_sha256.empty()) {
          return Internal("request {} finished without its logits hash", r.id);
        }
        result.logits_sha256 = row.logits_sha256;
      }
      entry.tag = row.handle;
      Done& done = done_[row.handle];
      done.ttft_s = Seconds(s.admitted, s.first_token);
      done.first_batch = s.first_batch;
      done.gaps = std::move(s.gaps);
      done.fingerprints = std::move(s.fingerprints);
      group.push_back(std::move(entry));
      s = Live{};
    }
    LOCKSTEP_RETURN_IF_ERROR(committer_->Submit(std::move(group)));
    TakeCommitted();
    // Tokens of the requests still running count too: a job of long
    // requests shows its speed before the first one finishes.
    progress_->Update(summary_->completed + summary_->failed + summary_->skipped, tokens_seen_);
    return Status::Ok();
  }

  // Counts the entries whose commit has returned (after Close, all of them).
  void TakeCommitted() {
    for (ResultCommitter::Entry& e : committer_->TakeCommitted()) {
      if (e.error) {
        ++summary_->failed;
        continue;
      }
      RequestResult& result = *e.result;
      auto it = done_.find(e.tag);
      LOCKSTEP_CHECK(it != done_.end(), "a committed result for request {} never finished", e.tag);
      Done& done = it->second;
      ++summary_->completed;
      summary_->prompt_tokens += result.prompt_tokens;
      summary_->generated_tokens += static_cast<int64_t>(result.tokens.size());
      summary_->ttft_s.push_back(done.ttft_s);
      if (done.first_batch) {
        first_batch_ttft_s_ = std::max(first_batch_ttft_s_, done.ttft_s);
        if (--first_batch_left_ == 0) summary_->first_batch_ttft_s = first_batch_ttft_s_;
      }
      summary_->inter_token_s.insert(summary_->inter_token_s.end(), done.gaps.begin(),
                                     done.gaps.end());
      if (options_.keep_results) {
        JobResult kept;
        kept.result = std::move(result);
        kept.step_fingerprints = std::move(done.fingerprints);
        summary_->results.push_back(std::move(kept));
      }
      done_.erase(it);
    }
  }

  // Tokens generated so far, of finished and running requests.
  int64_t tokens_seen() const { return tokens_seen_; }

 private:
  struct Live {
    std::vector<int32_t> tokens;
    std::vector<uint64_t> fingerprints;
    Clock::time_point admitted, first_token, last_token;
    std::vector<double> gaps;  // seconds between consecutive tokens
    bool first_batch = false;  // admitted in the job's first step
  };
  // What the summary takes of a finished result once it is committed.
  struct Done {
    double ttft_s = 0;
    bool first_batch = false;
    std::vector<double> gaps;
    std::vector<uint64_t> fingerprints;
  };
  const std::vector<Request>& requests_;
  const BatchJobOptions& options_;
  const std::string model_sha256_;
  const Tokenizer* tokenizer_;
  // Requests of the first step not yet committed (-1: no step yet), and the
  // slowest first token among those that were (BatchJobSummary).
  int64_t first_batch_left_ = -1;
  double first_batch_ttft_s_ = 0;
  ResultCommitter* committer_;
  ProgressReporter* progress_;
  BatchJobSummary* summary_;
  std::vector<Live> live_;
  std::unordered_map<int64_t, Done> done_;  // by handle: finished, not yet committed
  int64_t tokens_seen_ = 0;
};

// RankStats on the wire (fixed size, for an allgather).
struct RankStatsWire {
  int64_t ints[15];
  double doubles[7];
};

RankStatsWire ToWire(const RankStats& s) {
  RankStatsWire w{};
  w.ints[0] = s.rank;
  w.ints[1] = s.stage;
  w.ints[2] = s.tp_rank;
  w.ints[3] = static_cast<int64_t>(s.bytes_read);
  w.ints[4] = static_cast<int64_t>(s.plan_weight_bytes);
  w.ints[5] = s.steps;
  w.ints[6] = s.kv_pages;
  w.ints[7] = static_cast<int64_t>(s.kv_cache_bytes);
  w.ints[8] = static_cast<int64_t>(s.startup_bytes_received);
  w.ints[9] = static_cast<int64_t>(s.startup_messages_received);
  w.ints[10] = s.startup_peers;
  w.ints[11] = static_cast<int64_t>(s.peak_rss_bytes);
  w.ints[12] = static_cast<int64_t>(s.hidden_bytes_received);
  w.ints[13] = s.hidden_tokens_received;
  w.ints[14] = s.threads;
  w.doubles[0] = s.load_seconds;
  w.doubles[1] = s.run_seconds;
  w.doubles[2] = s.compute_seconds;
  w.doubles[3] = s.collective_seconds;
  w.doubles[4] = s.pipeline_wait_seconds;
  w.doubles[5] = s.startup_seconds;
  w.doubles[6] = s.results_seconds;
  return w;
}

RankStats FromWire(const RankStatsWire& w) {
  RankStats s;
  s.rank = static_cast<int>(w.ints[0]);
  s.stage = static_cast<int>(w.ints[1]);
  s.tp_rank = static_cast<int>(w.ints[2]);
  s.bytes_read = static_cast<uint64_t>(w.ints[3]);
  s.plan_weight_bytes = static_cast<uint64_t>(w.ints[4]);
  s.steps = w.ints[5];
  s.kv_pages = static_cast<int32_t>(w.ints[6]);
  s.kv_cache_bytes = static_cast<uint64_t>(w.ints[7]);
  s.startup_bytes_received = static_cast<uint64_t>(w.ints[8]);
  s.startup_messages_received = static_cast<uint64_t>(w.ints[9]);
  s.startup_peers = static_cast<int>(w.ints[10]);
  s.peak_rss_bytes = static_cast<uint64_t>(w.ints[11]);
  s.hidden_bytes_received = static_cast<uint64_t>(w.ints[12]);
  s.hidden_tokens_received = w.ints[13];
  s.threads = static_cast<int>(w.ints[14]);
  s.load_seconds = w.doubles[0];
  s.run_seconds = w.doubles[1];
  s.compute_seconds = w.doubles[2];
  s.collective_seconds = w.doubles[3];
  s.pipeline_wait_seconds = w.doubles[4];
  s.startup_seconds = w.doubles[5];
  s.results_seconds = w.doubles[6];
  return s;
}

Result<std::string> ReadText(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("{}: cannot open the {}", path, what);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return IoError("{}: read failed", path);
  return text.str();
}

// The leader's part of start-up phase 3: requests, resume state, plan.
Result<LeaderInputs> PrepareInputs(const BatchJobOptions& options, const ModelFile& model,
                                   const PromptEncoder& encoder, int num_ranks) {
  LeaderInputs in;
  LOCKSTEP_ASSIGN_OR_RETURN(const std::string text, ReadText(options.input_path, "request file"));
  in.requests = ParseRequestText(text, options.input_path, &model.config(), encoder);
  const RequestFile& file = in.requests;
  ResumeState resume;
  if (options.resume) {
    LOCKSTEP_ASSIGN_OR_RETURN(
        resume, PrepareResume(options.output_path, kernels::ComputeName(options.compute),
                      model.integrity().manifest_sha256));
  }
  std::vector<const Request*> pending;
  for (size_t i = 0; i < file.requests.size(); ++i) {
    // Done: a result with its id, or an error record for its line (a
    // request the KV budget could never hold).
    if (resume.done_ids.count(file.requests[i].id) != 0 ||
        resume.done_lines.count(file.requests[i].line) != 0) {
      in.skip.insert(static_cast<int64_t>(i));
    } else {
      pending.push_back(&file.requests[i]);
    }
  }
  // A plan for the whole file when nothing is left, so that the job still
  // starts (and ends) the same way.
  if (pending.empty()) {
    for (const Request& r : file.requests) pending.push_back(&r);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(
      in.plan, MakeJobPlan(options, model.config(), model.weight_dtype(), pending, num_ranks));
  return in;
}

// Peak resident set of this process (bytes): getrusage's ru_maxrss.
uint64_t PeakRssBytes() {
  struct rusage usage {};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;
}

// What AgreeOnModelFile compares: the manifest digest, or for a file without
// one its size.
std::string ModelIdentity(const ModelFile& model) {
  if (!model.integrity().manifest_sha256.empty()) return model.integrity().manifest_sha256;
  struct stat st {};
  if (::stat(model.path().c_str(), &st) != 0) return "size:?";
  return fmt::format("size:{} bytes", static_cast<int64_t>(st.st_size));
}

// The request file must be readable and a file, not a directory: checked
// before the results file is claimed.
Status CheckInputFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return NotFound("{}: cannot open the request file: {}", path, std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    return InvalidArgument("{}: is a directory, not a request file (--input)", path);
  }
  if (::access(path.c_str(), R_OK) != 0) {
    return IoError("{}: cannot read the request file: {}", path, std::strerror(errno));
  }
  return Status::Ok();
}

Result<ModelFileOptions> FileOptions(ModelIo io, const transport::Communicator& world) {
  ModelFileOptions o;
  if (io == ModelIo::kPosix) return o;
  if (world.backend() == transport::BackendKind::kLocal) {
    return InvalidArgument("--model-io {} needs MPI: use --transport mpi or ucx under mpirun",
                           ModelIoName(io));
  }
  o.comm = MPI_COMM_WORLD;
  o.collective_reads = io == ModelIo::kCollective;
  return o;
}

}  // namespace

std::string_view ModelIoName(ModelIo io) {
  switch (io) {
    case ModelIo::kPosix:
      return "posix";
    case ModelIo::kMpiIo:
      return "mpiio";
    case ModelIo::kCollective:
      return "collective";
  }
  return "?";
}

Result<ModelIo> ParseModelIo(std::string_view name) {
  for (ModelIo io : {ModelIo::kPosix, ModelIo::kMpiIo, ModelIo::kCollective}) {
    if (ModelIoName(io) == name) return io;
  }
  return InvalidArgument("unknown model I/O '{}'; use posix, mpiio or collective", name);
}

Status CheckJobFiles(const BatchJobOptions& options) {
  struct Named {
    const char* flag;
    const std::string* path;
  };
  const Named read[] = {{"--input", &options.input_path}, {"--model", &options.model_path}};
  const Named written[] = {{"--output", &options.output_path},
                           {"--dump-logits", &options.dump_logits_path}};
  auto same = [](const std::string& a, const std::string& b) {
    if (a.empty() || b.empty()) return false;
    struct stat sa {}, sb {};
    if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  };
  for (const Named& w : written) {
    for (const Named& r : read) {
      if (same(*w.path, *r.path)) {
        return InvalidArgument("{} {} is the same file as {} {}: the job would overwrite its {}",
                               w.flag, *w.path, r.flag, *r.path,
                               r.path == &options.input_path ? "requests" : "model");
      }
    }
  }
  if (same(options.output_path, options.dump_logits_path)) {
    return InvalidArgument("--dump-logits {} is the same file as --output {}",
                           options.dump_logits_path, options.output_path);
  }
  return Status::Ok();
}

Result<BatchJobSummary> RunBatchJob(const BatchJobOptions& options) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::shared_ptr<transport::LocalFabric> fabric,
                            transport::LocalFabric::Create(1));
  transport::CommOptions comm_options;
  comm_options.backend = transport::BackendKind::kLocal;
  LOCKSTEP_ASSIGN_OR_RETURN(transport::Communicator world,
                            transport::Communicator::CreateLocal(fabric, 0, comm_options));
  bool on_all_ranks = false;
  return RunBatchJob(options, world, &on_all_ranks);
}

Result<BatchJobSummary> RunBatchJob(const BatchJobOptions& options, transport::Communicator& world,
                                    bool* error_on_all_ranks) {
  *error_on_all_ranks = true;
  const int rank = world.rank();
  const int num_ranks = world.size();
  const bool leader = rank == 0;
  BatchJobSummary summary;
  const Clock::time_point load_start = Clock::now();

  // 1. The same command line everywhere.
  LOCKSTEP_RETURN_IF_ERROR(AgreeOnArguments(world, options.arguments_fingerprint));
  Status options_ok = Status::Ok();
  if (options.max_batch < 1) {
    options_ok = InvalidArgument("--max-batch must be at least 1, got {}", options.max_batch);
  } else if (options.max_step_tokens < 1) {
    options_ok =
        InvalidArgument("--max-step-tokens must be at least 1, got {}", options.max_step_tokens);
  }
  // The leader's files: distinct, the requests readable, the results file
  // claimed for this job (locked; kept as it is until phase 6).
  std::optional<ResultWriter> writer;
  if (leader && options_ok.ok()) {
    options_ok = CheckJobFiles(options);
    if (options_ok.ok()) options_ok = CheckInputFile(options.input_path);
    if (options_ok.ok()) {
      const ExistingResults existing = options.resume  ? ExistingResults::kAppend
                                       : options.force ? ExistingResults::kOverwrite
                                                       : ExistingResults::kRefuse;
      Result<ResultWriter> claimed = ResultWriter::Claim(options.output_path, existing);
      options_ok = claimed.status();
      if (claimed.ok()) writer.emplace(std::move(claimed).value());
    }
  }
  LOCKSTEP_RETURN_IF_ERROR(Agree(world, options_ok));
  // Threads: the flag's value, or the cores available to this rank. The
  // plan models the leader's count (BatchJobOptions is the leader's too).
  summary.threads = options.threads;
  if (options.threads <= 0) {
    LOCKSTEP_ASSIGN_OR_RETURN(summary.threads, AutoThreads(world));
  }
  BatchJobOptions resolved = options;
  resolved.threads = summary.threads;

  // 2. Every rank opens the model file; the leader also its tokenizer (it
  // tokenizes the requests, once, and builds the results' text).
  Result<ModelFileOptions> file_options = FileOptions(options.model_io, world);
  Result<ModelFile> opened = file_options.ok() ? ModelFile::Open(options.model_path, *file_options)
                                               : Result<ModelFile>(file_options.status());
  std::unique_ptr<Tokenizer> tokenizer;
  // Its chat template (the leader's, for chat requests): one that does not
  // parse is not an error of the job, but of each chat request (the others
  // still run).
  std::optional<ChatTemplate> chat_template;
  PromptEncoder encoder;
  const auto load_tokenizer = [&](ModelFile& file, bool with_chat_template) -> Status {
    if (!file.has_tokenizer()) return Status::Ok();
    LOCKSTEP_ASSIGN_OR_RETURN(TokenizerData data, file.ReadTokenizer());
    LOCKSTEP_ASSIGN_OR_RETURN(tokenizer, CreateTokenizer(data));
    if (with_chat_template && !data.chat_template.empty()) {
      Result<ChatTemplate> parsed = ChatTemplate::Parse(data.chat_template);
      if (parsed.ok()) {
        chat_template = std::move(parsed).value();
      } else {
        encoder.chat_template_error = parsed.status().message();
      }
    }
    return Status::Ok();
  };
  Status tokenizer_ok = Status::Ok();
  if (opened.ok() && leader) tokenizer_ok = load_tokenizer(*opened, true);
  encoder.tokenizer = tokenizer.get();
  encoder.chat_template = chat_template ? &*chat_template : nullptr;
  LOCKSTEP_RETURN_IF_ERROR(Agree(world, opened.ok() ? tokenizer_ok : opened.status()));
  ModelFile model = std::move(opened).value();
  const partitioner::ModelConfig& config = model.config();
  // The same file on every rank: its manifest digest, else its size.
  if (leader && !model.integrity().complete()) {
    LOCKSTEP_LOG_WARN("run", "{}", model.integrity().Warning(options.model_path));
  }
  LOCKSTEP_RETURN_IF_ERROR(AgreeOnModelFile(world, options.model_path, ModelIdentity(model)));

  // 3. The leader reads the requests and makes the plan; each rank gets its
  // part of the plan and the request data its stage uses.
  std::optional<LeaderInputs> leader_inputs;
  std::vector<std::vector<std::byte>> parts;
  Status prepared = Status::Ok();
  if (leader) {
    Result<LeaderInputs> inputs = PrepareInputs(resolved, model, encoder, num_ranks);
    prepared = inputs.status();
    if (inputs.ok()) {
      leader_inputs.emplace(std::move(inputs).value());
      const int32_t kv_pages = JobKvPages(leader_inputs->plan, options.kv_cache_mb);
      for (int r = 0; r < num_ranks; ++r) {
        parts.push_back(EncodeRankInputs(*leader_inputs, r, kv_pages));
      }
    }
  }
  LOCKSTEP_RETURN_IF_ERROR(Agree(world, prepared));
  std::vector<std::byte> blob;
  LOCKSTEP_RETURN_IF_ERROR(ScatterBytes(world, 0, parts, &blob));
  parts = {};
  Result<RankInputs> decoded = DecodeRankInputs(blob);
  blob = {};

  // 4. Every rank checks its part of the plan against its own model file;
  // the last stage loads the tokenizer when a request has stop strings.
  Status plan_ok = decoded.status();
  if (plan_ok.ok()) {
    plan_ok = CheckJobPlan(decoded->plan, config, model.weight_dtype(), num_ranks,
                           options.plan_path.empty() ? "the job's plan" : options.plan_path);
  }
  if (plan_ok.ok() && !leader && decoded->needs_tokenizer) plan_ok = load_tokenizer(model, false);
  LOCKSTEP_RETURN_IF_ERROR(Agree(world, plan_ok));
  RankInputs inputs = std::move(decoded).value();
  // The leader keeps the whole plan (the report and its own part); the
  // others their part.
  summary.plan = leader ? std::move(leader_inputs->plan) : std::move(inputs.plan);
  const partitioner::Plan& plan = summary.plan;
  // The requests this rank reads while running: the leader every field of
  // every request; the others the fields their stage uses.
  const std::vector<Request>& requests =
      leader ? leader_inputs->requests.requests : inputs.requests;
  if (leader) {
    inputs.pending.clear();
    for (size_t i = 0; i < requests.size(); ++i) {
      if (leader_inputs->skip.count(static_cast<int64_t>(i)) == 0) {
        inputs.pending.push_back(static_cast<int64_t>(i));
      }
    }
  }

  // What every rank derives from the plan, identically.
  const int pp = plan.pp;
  summary.window = pp == 1 ? 1 : std::clamp(plan.micro_batches, 1, options.max_batch);
  summary.max_chunks = (options.max_batch + summary.window - 1) / summary.window;
  summary.kv_pages = inputs.kv_pages;
  const ShardSpec shard = ShardSpec::FromPlan(plan, rank);
  const PipelineLayout layout = PipelineLayout::FromPlan(plan, rank);

  // Tensor-parallel groups (every rank splits, in the same order).
  std::optional<transport::Communicator> tp_comm;
  std::unique_ptr<TensorParallelGroup> tp_group;
  if (plan.tp > 1) {
    std::vector<std::vector<int>> groups;
    for (int s = 0; s < pp; ++s) groups.push_back(plan.TpGroup(s));
    LOCKSTEP_ASSIGN_OR_RETURN(tp_comm, world.Split(groups, "tp"));
    tp_group = options.tp_group_factory ? options.tp_group_factory(*tp_comm)
                                        : std::make_unique<TransportTpGroup>(*tp_comm);
  }

  // 5. Every rank loads its shards.
  RankStats stats;
  stats.rank = rank;
  stats.stage = layout.stage;
  stats.tp_rank = layout.tp_rank;
  stats.plan_weight_bytes = static_cast<uint64_t>(plan.Rank(rank).memory.weights);
  stats.kv_pages = summary.kv_pages;
  stats.threads = summary.threads;
  std::unique_ptr<Engine> engine;
  Status loaded = [&]() -> Status {
    LoadOptions load_options;
    load_options.collective = options.model_io == ModelIo::kCollective;
    load_options.compute = options.compute;
    LOCKSTEP_ASSIGN_OR_RETURN(ModelWeights weights,
                              LoadWeights(model, shard, plan.RankShards(rank), load_options));
    EngineOptions engine_options;
    engine_options.threads = summary.threads;
    engine_options.isa = options.isa;
    engine_options.max_slots = options.max_batch;
    engine_options.kv_pages = summary.kv_pages;
    // The RoPE table covers the longest request of the file, not the
    // model's whole context (the leader computes it: only it has every
    // request).
    engine_options.max_positions = std::max<int64_t>(inputs.max_positions, 1);
    engine_options.reduction_order = options.reduction_order;
    engine_options.tp_group = tp_group.get();
    engine_options.tp_overlap = options.tp_overlap;
    LOCKSTEP_ASSIGN_OR_RETURN(engine, Engine::Create(std::move(weights), engine_options));
    return Status::Ok();
  }();
  LOCKSTEP_RETURN_IF_ERROR(Agree(world, loaded));
  stats.bytes_read = model.bytes_read();
  stats.kv_cache_bytes = engine->kv_cache().shape().bytes();
  stats.load_seconds = Seconds(load_start, Clock::now());
  summary.load_seconds = stats.load_seconds;

  // 6. The leader starts the results file and writes the error records.
  Status opened_results = Status::Ok();
  if (leader) {
    summary.skipped = static_cast<int64_t>(leader_inputs->skip.size());
    ResumeState resume;
    if (options.resume) {
      // Read again: the file was prepared (a torn line cut off) in phase 3.
      Result<ResumeState> state =
          PrepareResume(options.output_path, kernels::ComputeName(options.compute),
                      model.integrity().manifest_sha256);
      if (state.ok()) resume = std::move(state).value();
      opened_results = state.status();
    }
    if (opened_results.ok()) opened_results = writer->Start();
    for (const RequestError& e : leader_inputs->requests.errors) {
      if (!opened_results.ok()) break;
      const bool done = resume.done_lines.count(e.line) != 0;
      if (done) {
        ++summary.skipped;
        continue;
      }
      LOCKSTEP_LOG_WARN("run", "{}", e.message);
      opened_results = writer->WriteError(e);
      ++summary.failed;
    }
  }
  LOCKSTEP_RETURN_IF_ERROR(Agree(world, opened_results));
  // The start-up report (docs/distributed.md, "Start-up"): what this rank
  // received and whom it talked to until now.
  {
    const transport::Traffic traffic = world.traffic();
    stats.startup_bytes_received = traffic.bytes_received;
    stats.startup_messages_received = traffic.messages_received;
    stats.startup_peers = std::max(traffic.peers, traffic.connections);
    stats.startup_seconds = Seconds(load_start, Clock::now());
  }

  if (leader && options.progress) {
    LOCKSTEP_LOG_INFO("run", "{}",
                      PlanSummary(plan, summary.window, summary.max_chunks, summary.kv_pages));
    LOCKSTEP_LOG_INFO("run",
                      "{}: {}, {} weights; rank 0 loaded {:.1f} MiB ({} read) in {:.2f} s; "
                      "isa {}, {} compute, {} per rank{}",
                      options.model_path, Plural(config.num_layers, "layer"),
                      DTypeName(model.weight_dtype()), engine->weights().bytes() / 1048576.0,
                      partitioner::FormatBytes(static_cast<double>(stats.bytes_read)),
                      stats.load_seconds, kernels::IsaName(options.isa),
                      kernels::ComputeName(options.compute), Plural(summary.threads, "thread"),
                      options.threads <= 0 ? " (the cores available to each rank)" : "");
  }

  // The run. Stage 0 ranks submit every request (identical replicas); the
  // leader writes the error record of a request that can never fit.
  *error_on_all_ranks = false;
  const int64_t total =
      leader ? static_cast<int64_t>(requests.size() + leader_inputs->requests.errors.size()) : 0;
  ProgressReporter progress(total, leader && options.progress, isatty(STDERR_FILENO) == 1,
                            options.progress_interval_s);
  const Clock::time_point run_start = Clock::now();
  Status ran = Status::Ok();
  std::optional<StepSampler> sampler;
  if (layout.is_last()) {
    StepSamplerOptions so;
    so.isa = options.isa;
    so.eos_token_id = config.eos_token_id;
    so.reporter = layout.tp_rank == 0;
    so.hash_logits = options.hash_logits;
    so.fingerprints = options.hash_logits && options.keep_results;
    so.dump_logits_path = options.dump_logits_path;
    sampler.emplace(requests, so, tokenizer.get());
    ran = sampler->OpenDump();
  }
  Pipeline pipeline(world, layout, {summary.window, summary.max_chunks}, *engine,
                    sampler ? &*sampler : nullptr, tp_comm ? &*tp_comm : nullptr);
  if (layout.is_first()) {
    Scheduler scheduler({options.max_batch, options.max_step_tokens}, summary.kv_pages);
    // The leader's results from here on: a writer thread (group commit).
    std::optional<ResultCommitter> committer;
    std::optional<ResultSink> sink;
    if (leader) {
      committer.emplace(&*writer, tokenizer.get());
      sink.emplace(requests, options, model.integrity().manifest_sha256, tokenizer.get(),
                   &*committer, &progress, &summary);
    }
    std::vector<ResultCommitter::Entry> rejected;
    for (size_t k = 0; k < inputs.pending.size() && ran.ok(); ++k) {
      const int64_t i = inputs.pending[k];
      const Request& r = requests[static_cast<size_t>(i)];
      Status submitted = scheduler.Submit(i, r.prompt_tokens, r.max_tokens);
      if (submitted.ok() || !leader) continue;
      RequestError e{r.id, r.line,
                     fmt::format("{}:{}: {} (the plan's KV budget)", options.input_path, r.line,
                                 submitted.message())};
      LOCKSTEP_LOG_WARN("run", "{}", e.message);
      ResultCommitter::Entry entry;
      entry.error = std::move(e);
      entry.tag = i;
      rejected.push_back(std::move(entry));
    }
    if (committer && ran.ok()) ran = committer->Submit(std::move(rejected));
    if (ran.ok()) ran = pipeline.RunFirstStage(scheduler, sink ? &*sink : nullptr);
    if (committer) {
      // Every finished result is committed before the job ends, also when
      // it ends with an error (a peer that failed): none is lost.
      const Status closed = committer->Close();
      if (ran.ok()) ran = closed;
      summary.result_commits = committer->commits();
      sink->TakeCommitted();
    }
  } else if (ran.ok()) {
    ran = pipeline.RunLaterStage();
  }
  if (ran.ok() && sampler) ran = sampler->CloseDump();
  stats.pipeline_wait_seconds = pipeline.times().wait_s;
  stats.results_seconds = pipeline.times().observer_s;
  stats.steps = pipeline.times().steps;
  stats.hidden_bytes_received = pipeline.times().hidden_bytes_received;
  stats.hidden_tokens_received = pipeline.times().hidden_tokens_received;
  LOCKSTEP_RETURN_IF_ERROR(ran.WithContext(fmt::format("rank {}", rank)));
  stats.run_seconds = Seconds(run_start, Clock::now());
  stats.compute_seconds = engine->times().compute_s;
  stats.collective_seconds = engine->times().collective_s;
  summary.run_seconds = stats.run_seconds;
  progress.Finish(summary.completed + summary.failed + summary.skipped, summary.generated_tokens);

  stats.peak_rss_bytes = PeakRssBytes();

  // Statistics of every rank, gathered on the leader (a tree: no rank but
  // the leader receives a record per rank), which reports them.
  const RankStatsWire mine = ToWire(stats);
  std::vector<RankStatsWire> all(leader ? static_cast<size_t>(num_ranks) : 0);
  LOCKSTEP_RETURN_IF_ERROR(world.Gather(std::as_bytes(std::span<const RankStatsWire>(&mine, 1)),
                                        std::as_writable_bytes(std::span<RankStatsWire>(all)), 0));
  for (const RankStatsWire& w : all) summary.ranks.push_back(FromWire(w));
  return summary;
}

}  // namespace lockstep::runtime
