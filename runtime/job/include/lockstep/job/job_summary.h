// What a finished batch job reports: the measured figures beside the plan's
// predictions, and the JSON summary `lockstep run --summary FILE` writes
// (docs/batch-jobs.md, "Job summary").
//
// Measured figures, from the leader's clock:
//   decode per token     the mean gap between two consecutive tokens of a
//                        request (inter-token latency), over every request;
//   time to first token  the median over requests, from a request's
//                        admission into the running batch to its first token;
//   tokens/s             generated tokens over the run time (first step to
//                        last result).
// Predicted: the plan's decode_latency_per_token_s, time_to_first_token_s
// and throughput_tokens_per_s, for the workload the plan was made for (the
// job's request count up to --max-batch, longest prompt, largest max_tokens).
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/job/batch_job.h"

namespace lockstep::runtime {

// Nearest-rank percentile (p in [0, 100]) of `values`: the smallest value
// with at least p% of the values at or below it; 0 for none.
double Percentile(std::vector<double> values, double p);

struct MeasuredAndPredicted {
  double decode_s_per_token = 0;  // measured; 0 when no request made 2 tokens
  // Measured: the first batch's slowest first token (what the plan predicts:
  // BatchJobSummary::first_batch_ttft_s), else the median of all requests;
  // 0 when nothing completed.
  double ttft_s = 0;
  double tokens_per_s = 0;        // measured
  double predicted_decode_s_per_token = 0;
  double predicted_ttft_s = 0;
  double predicted_tokens_per_s = 0;
};
MeasuredAndPredicted CompareWithPlan(const BatchJobSummary& summary);

// One line for people: "measured (predicted): decode 2.31 ms per token
// (2.43 ms, x0.95), time to first token ..., 431.2 tokens/s (410.0, x1.05)".
std::string FormatMeasuredVsPredicted(const MeasuredAndPredicted& m);

// The JSON summary of a job (one object, pretty-printed; keys in
// docs/batch-jobs.md): requests, tokens, times, TTFT and inter-token latency
// percentiles, throughput, measured beside predicted, the plan and per-rank
// times. `summary` is the leader's.
std::string JobSummaryJson(const BatchJobOptions& options, const BatchJobSummary& summary);

// Writes JobSummaryJson to `path` (a temporary file renamed into place, so
// a reader never sees half a summary).
Status WriteJobSummary(const std::string& path, const BatchJobOptions& options,
                       const BatchJobSummary& summary);

}  // namespace lockstep::runtime
