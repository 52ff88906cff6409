// `lockstep run`: a batch job on one rank (docs/batch-jobs.md).
#include <memory>
#include <string>

#include "command.h"
#include "lockstep/base/log.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/runtime/batch_job.h"

namespace lockstep::launch {

Command AddRunCommand(CLI::App& app) {
  struct Flags {
    runtime::BatchJobOptions job;
    std::string isa = "auto";
    bool no_progress = false;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* run = app.add_subcommand(
      "run", "Run a batch job: generate for every request of a JSONL file (docs/batch-jobs.md)");
  run->add_option("--model", flags->job.model_path, "Model file (HDF5)")->required();
  run->add_option("--input", flags->job.input_path,
                  "Requests, one JSON object per line (OpenAI batch or plain form)")
      ->required();
  run->add_option("--output", flags->job.output_path,
                  "Results, one JSON object per line, each fsync'd when its request finishes")
      ->required();
  run->add_option("--threads", flags->job.threads, "Compute threads")
      ->default_val(1)
      ->check(CLI::PositiveNumber);
  run->add_option("--isa", flags->isa, "Kernel instruction set: auto, avx512, avx2 or scalar")
      ->default_val("auto");
  run->add_option("--max-batch", flags->job.max_batch, "Requests in flight at once")
      ->default_val(8)
      ->check(CLI::PositiveNumber);
  run->add_option("--max-step-tokens", flags->job.max_step_tokens,
                  "Tokens per forward step (bounds prefill chunks)")
      ->default_val(256)
      ->check(CLI::PositiveNumber);
  run->add_option("--kv-cache-mb", flags->job.kv_cache_mb,
                  "KV cache size in MiB (0: enough for the max-batch largest requests)")
      ->default_val(0)
      ->check(CLI::NonNegativeNumber);
  run->add_flag("--hash-logits", flags->job.hash_logits,
                "Add logits_sha256 (SHA-256 of every generated step's f32 logits) to each result");
  run->add_option("--dump-logits", flags->job.dump_logits_path,
                  "Debug: write every generated step's logits to this JSONL file");
  run->add_flag("--no-progress", flags->no_progress, "No progress lines on stderr");

  Command command;
  command.app = run;
  command.run = [flags]() -> int {
    Result<kernels::Isa> isa = kernels::ParseIsa(flags->isa);
    if (!isa.ok()) {
      ReportError(isa.status().WithContext("--isa"));
      return kExitUsage;
    }
    flags->job.isa = *isa;
    flags->job.progress = !flags->no_progress;
    Result<runtime::BatchJobSummary> summary = runtime::RunBatchJob(flags->job);
    if (!summary.ok()) return ReportError(summary.status());
    LOCKSTEP_LOG_INFO("run", "{}: {} results, {} error records; {} tokens generated in {:.2f} s",
                      flags->job.output_path, summary->completed, summary->failed,
                      summary->generated_tokens, summary->run_seconds);
    return summary->failed > 0 ? kExitRequestErrors : kExitOk;
  };
  return command;
}

}  // namespace lockstep::launch
