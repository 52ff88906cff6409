#include "lockstep/runtime/batch_job.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "completion_text.h"
#include "lockstep/base/check.h"
#include "lockstep/base/log.h"
#include "lockstep/runtime/engine.h"
#include "lockstep/runtime/logits_hash.h"
#include "lockstep/runtime/model_file.h"
#include "lockstep/runtime/progress.h"
#include "lockstep/runtime/request.h"
#include "lockstep/runtime/result_writer.h"
#include "lockstep/runtime/sampler.h"
#include "lockstep/runtime/scheduler.h"
#include "lockstep/runtime/tokenizer.h"

namespace lockstep::runtime {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// What the job tracks for a request while it runs.
struct LiveRequest {
  uint64_t stream = 0;
  std::vector<int32_t> generated;
  std::optional<LogitsHasher> hasher;
  std::optional<CompletionText> text;  // when the model has a tokenizer
  FinishReason finish_reason = FinishReason::kLength;
  Clock::time_point admitted, first_token, last_token;
};

// KV pages: from --kv-cache-mb, or enough for the max_batch largest
// reservations of the file, capped at half the physical memory.
int32_t ChooseKvPages(const BatchJobOptions& options, const std::vector<Request>& requests,
                      uint64_t bytes_per_page) {
  if (options.kv_cache_mb > 0) {
    return static_cast<int32_t>(
        std::min<uint64_t>((uint64_t(options.kv_cache_mb) << 20) / bytes_per_page, INT32_MAX));
  }
  std::vector<int32_t> needs;
  for (const Request& r : requests) {
    needs.push_back(KvPagesFor(static_cast<int64_t>(r.prompt_tokens.size()) + r.max_tokens));
  }
  std::sort(needs.begin(), needs.end(), std::greater<int32_t>());
  uint64_t pages = 0;
  for (size_t i = 0; i < needs.size() && i < static_cast<size_t>(options.max_batch); ++i) {
    pages += static_cast<uint64_t>(needs[i]);
  }
  const uint64_t memory = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) *
                          static_cast<uint64_t>(sysconf(_SC_PAGE_SIZE));
  pages = std::min<uint64_t>(pages, memory / 2 / bytes_per_page);
  return static_cast<int32_t>(std::min<uint64_t>(pages, INT32_MAX));
}

class LogitsDump {
 public:
  Status Open(const std::string& path) {
    out_.open(path, std::ios::binary | std::ios::trunc);
    if (!out_) return IoError("{}: cannot create the logits dump (--dump-logits)", path);
    path_ = path;
    return Status::Ok();
  }
  bool enabled() const { return out_.is_open(); }
  // One line per generated step. Floats print in their shortest form that
  // reads back to the same f32 bits.
  Status Write(const std::string& id, int64_t step, int64_t position, int32_t token,
               const float* logits, int64_t vocab) {
    const std::string id_json = nlohmann::json(id).dump();
    fmt::memory_buffer line;
    fmt::format_to(std::back_inserter(line),
                   "{{\"id\":{},\"step\":{},\"position\":{},\"token\":{},\"logits\":[", id_json,
                   step, position, token);
    for (int64_t i = 0; i < vocab; ++i) {
      if (i > 0) line.push_back(',');
      fmt::format_to(std::back_inserter(line), "{}", logits[i]);
    }
    fmt::format_to(std::back_inserter(line), "]}}\n");
    out_.write(line.data(), static_cast<std::streamsize>(line.size()));
    if (!out_) return IoError("{}: write failed", path_);
    return Status::Ok();
  }
  Status Close() {
    if (!out_.is_open()) return Status::Ok();
    out_.close();
    if (!out_) return IoError("{}: write failed", path_);
    return Status::Ok();
  }

 private:
  std::ofstream out_;
  std::string path_;
};

}  // namespace

Result<BatchJobSummary> RunBatchJob(const BatchJobOptions& options) {
  BatchJobSummary summary;
  const Clock::time_point load_start = Clock::now();

  LOCKSTEP_ASSIGN_OR_RETURN(ModelFile model, ModelFile::Open(options.model_path));
  const partitioner::ModelConfig& config = model.config();
  // The model's tokenizer, when it has one: text prompts, stop strings, and
  // the text of every result.
  std::unique_ptr<Tokenizer> tokenizer;
  if (model.has_tokenizer()) {
    LOCKSTEP_ASSIGN_OR_RETURN(TokenizerData data, model.ReadTokenizer());
    LOCKSTEP_ASSIGN_OR_RETURN(tokenizer, CreateTokenizer(data));
  }
  LOCKSTEP_ASSIGN_OR_RETURN(RequestFile input,
                            ReadRequestFile(options.input_path, &config, tokenizer.get()));
  if (options.max_batch < 1) {
    return InvalidArgument("--max-batch must be at least 1, got {}", options.max_batch);
  }
  if (options.max_step_tokens < 1) {
    return InvalidArgument("--max-step-tokens must be at least 1, got {}", options.max_step_tokens);
  }

  const ShardSpec shard = ShardSpec::SingleRank(config);
  LOCKSTEP_ASSIGN_OR_RETURN(ModelWeights weights, LoadWeights(model, shard));
  const uint64_t weight_bytes = weights.bytes();

  KvCacheShape kv_shape;
  kv_shape.num_layers = shard.num_layers();
  kv_shape.page = {static_cast<int>(shard.kv_heads.size()), config.head_dim};
  const int32_t kv_pages = ChooseKvPages(options, input.requests, kv_shape.bytes_per_page());

  EngineOptions engine_options;
  engine_options.threads = options.threads;
  engine_options.isa = options.isa;
  engine_options.max_slots = options.max_batch;
  engine_options.kv_pages = kv_pages;
  LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                            Engine::Create(std::move(weights), engine_options));
  summary.load_seconds = Seconds(load_start, Clock::now());
  LOCKSTEP_LOG_INFO("run",
                    "{}: {} layers, {} weights, {:.1f} MiB loaded in {:.2f} s; isa {}, {} "
                    "threads; KV cache {} pages ({:.1f} MiB)",
                    options.model_path, config.num_layers, DTypeName(model.weight_dtype()),
                    weight_bytes / 1048576.0, summary.load_seconds, kernels::IsaName(options.isa),
                    options.threads, kv_pages,
                    kv_pages * double(kv_shape.bytes_per_page()) / 1048576.0);

  LogitsDump dump;
  if (!options.dump_logits_path.empty()) {
    LOCKSTEP_RETURN_IF_ERROR(dump.Open(options.dump_logits_path));
  }
  LOCKSTEP_ASSIGN_OR_RETURN(ResultWriter writer, ResultWriter::Open(options.output_path));

  // Bad lines first, then requests that can never fit in the cache.
  const int64_t total = static_cast<int64_t>(input.requests.size() + input.errors.size());
  for (const RequestError& e : input.errors) {
    LOCKSTEP_LOG_WARN("run", "{}", e.message);
    LOCKSTEP_RETURN_IF_ERROR(writer.WriteError(e));
    ++summary.failed;
  }
  Scheduler scheduler({options.max_batch, options.max_step_tokens}, kv_pages);
  std::vector<LiveRequest> live(input.requests.size());
  for (size_t i = 0; i < input.requests.size(); ++i) {
    const Request& r = input.requests[i];
    Status submitted = scheduler.Submit(static_cast<int64_t>(i), r.prompt_tokens, r.max_tokens);
    if (!submitted.ok()) {
      RequestError e{r.id, r.line,
                     fmt::format("{}:{}: {}", options.input_path, r.line, submitted.message())};
      LOCKSTEP_LOG_WARN("run", "{}", e.message);
      LOCKSTEP_RETURN_IF_ERROR(writer.WriteError(e));
      ++summary.failed;
      continue;
    }
    live[i].stream = RequestStream(r.id);
    if (options.hash_logits) live[i].hasher.emplace();
    if (tokenizer) live[i].text.emplace(*tokenizer, r);
  }

  ProgressReporter progress(total, options.progress, isatty(STDERR_FILENO) == 1);
  const Clock::time_point run_start = Clock::now();
  const int32_t eos = config.eos_token_id;
  const int64_t vocab = engine->vocab_rows();
  std::vector<float> logits;
  std::vector<float> scratch;
  std::vector<TokenOutcome> outcomes;
  while (!scheduler.Idle()) {
    StepPlan plan = scheduler.NextStep();
    LOCKSTEP_CHECK(!plan.batch.empty(), "scheduler made an empty step while not idle");
    const Clock::time_point step_start = Clock::now();
    for (int64_t h : plan.admitted) live[static_cast<size_t>(h)].admitted = step_start;
    engine->ApplyBindings(plan.bindings);
    engine->Forward(plan.batch, &logits);
    const Clock::time_point step_end = Clock::now();

    outcomes.assign(plan.logits_handles.size(), {});
    std::vector<size_t> finished;
    for (size_t row = 0; row < plan.logits_handles.size(); ++row) {
      const size_t h = static_cast<size_t>(plan.logits_handles[row]);
      const Request& r = input.requests[h];
      LiveRequest& s = live[h];
      const float* row_logits = logits.data() + row * static_cast<size_t>(vocab);
      const int64_t position = static_cast<int64_t>(r.prompt_tokens.size() + s.generated.size());
      int32_t token = 0;
      engine->Execute([&] {
        token = SampleToken(options.isa, row_logits, vocab, r, s.stream, position, &scratch);
      });
      if (s.hasher) s.hasher->AddStep(row_logits, vocab);
      if (dump.enabled()) {
        LOCKSTEP_RETURN_IF_ERROR(dump.Write(r.id, static_cast<int64_t>(s.generated.size()),
                                            position, token, row_logits, vocab));
      }
      if (s.generated.empty()) s.first_token = step_end;
      s.last_token = step_end;
      s.generated.push_back(token);
      const bool stop_text = s.text && s.text->Append(token);
      const bool stop = (token == eos && !r.ignore_eos) || stop_text ||
                        std::find(r.stop_token_ids.begin(), r.stop_token_ids.end(), token) !=
                            r.stop_token_ids.end();
      const bool length = static_cast<int64_t>(s.generated.size()) >= r.max_tokens;
      outcomes[row] = {token, stop || length};
      if (stop || length) {
        s.finish_reason = stop ? FinishReason::kStop : FinishReason::kLength;
        finished.push_back(h);
      }
    }
    scheduler.CompleteStep(plan, outcomes);

    for (size_t h : finished) {
      const Request& r = input.requests[h];
      LiveRequest& s = live[h];
      RequestResult result;
      result.id = r.id;
      result.tokens = std::move(s.generated);
      if (s.text) result.text = s.text->Text();
      result.finish_reason = s.finish_reason;
      result.prompt_tokens = static_cast<int64_t>(r.prompt_tokens.size());
      result.ttft_ms = Seconds(s.admitted, s.first_token) * 1e3;
      const double decode_s = Seconds(s.first_token, s.last_token);
      if (result.tokens.size() > 1 && decode_s > 0) {
        result.decode_tokens_per_s = static_cast<double>(result.tokens.size() - 1) / decode_s;
      }
      if (s.hasher) result.logits_sha256 = s.hasher->Finish();
      LOCKSTEP_RETURN_IF_ERROR(writer.Write(result));
      ++summary.completed;
      summary.prompt_tokens += result.prompt_tokens;
      summary.generated_tokens += static_cast<int64_t>(result.tokens.size());
      s = LiveRequest{};
    }
    progress.Update(summary.completed + summary.failed, summary.generated_tokens);
  }
  summary.run_seconds = Seconds(run_start, Clock::now());
  progress.Finish(summary.completed + summary.failed, summary.generated_tokens);
  LOCKSTEP_RETURN_IF_ERROR(dump.Close());
  return summary;
}

}  // namespace lockstep::runtime
