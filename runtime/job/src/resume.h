// Resuming a batch job (`lockstep run --resume`): what an existing results
// file already holds.
//
// Every line of a results file was written whole and fsync'd when its
// request finished (result_writer.h), so after a crash the file is a
// sequence of complete lines, possibly followed by one torn line (a write
// cut short: no final newline, or not valid JSON). PrepareResume reads the
// file, cuts a torn last line off (truncating the file to the end of the
// last complete line), and returns the requests already done: the ids of
// result lines, and the input line numbers of error records (by line, not
// by id: a bad line may carry the id of a good line, which must still run). A damaged line that is
// not the last is DataLoss (the file is not a lockstep results file, or was edited). A result line
// written with another matmul arithmetic than `compute` ("float" or "bf16":
// its "compute" field, absent for float) is FailedPrecondition naming the
// file, line and both modes: a resumed file would mix two modes' bits. So is
// a result line of another model: its "model_sha256" (the model file's
// manifest digest, absent for a file without one) differs from
// `model_sha256` (empty: this job's model has no manifest).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "lockstep/base/status.h"

namespace lockstep::runtime {

struct ResumeState {
  bool existed = false;            // the file was there
  std::set<std::string> done_ids;  // ids of result lines
  std::set<int64_t> done_lines;    // input lines of error records
  int64_t lines = 0;               // complete lines kept
  uint64_t torn_bytes = 0;         // bytes of a torn last line that were cut off
};

Result<ResumeState> PrepareResume(const std::string& path, std::string_view compute = "float",
                                  std::string_view model_sha256 = "");

}  // namespace lockstep::runtime
