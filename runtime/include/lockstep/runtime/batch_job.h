// A batch job on one rank: requests file in, results file out
// (`lockstep run`, docs/batch-jobs.md).
//
// Order of work, chosen so that a bad model or request file costs nothing:
// open and check the model file, read and check every request line, load the
// weights, and only then create the results file. Then: an error record for
// each bad line, and the requests through the continuous-batching scheduler,
// each result written (and fsync'd) the moment its request finishes.
//
// Only failures that stop the whole job are a non-OK Status (model file,
// unreadable request file, results file I/O); a bad request is an error
// record and is counted in BatchJobSummary::failed.
#pragma once

#include <cstdint>
#include <string>

#include "lockstep/base/status.h"
#include "lockstep/kernels/isa.h"

namespace lockstep::runtime {

struct BatchJobOptions {
  std::string model_path;                    // model file (HDF5, docs/model-format.md)
  std::string input_path;                    // requests (JSONL)
  std::string output_path;                   // results (JSONL), truncated
  int threads = 1;                           // engine threads
  kernels::Isa isa = kernels::Isa::kScalar;  // kernels' instruction set
  int max_batch = 8;                         // requests in flight at once
  int max_step_tokens = 256;                 // tokens per forward step (prefill chunk budget)
  // KV cache size in MiB; 0 sizes it for the max_batch largest requests of
  // the file (capped at half the machine's memory).
  int64_t kv_cache_mb = 0;
  bool hash_logits = false;      // add logits_sha256 to each result
  std::string dump_logits_path;  // debug: every step's logits as JSONL ("" = off)
  bool progress = true;          // progress lines on stderr
};

struct BatchJobSummary {
  int64_t completed = 0;      // results written
  int64_t failed = 0;         // error records written
  int64_t prompt_tokens = 0;  // of the completed requests
  int64_t generated_tokens = 0;
  double load_seconds = 0.0;  // opening the model and loading the weights
  double run_seconds = 0.0;   // from the first step to the last result
};

Result<BatchJobSummary> RunBatchJob(const BatchJobOptions& options);

}  // namespace lockstep::runtime
