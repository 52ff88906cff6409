// The human-readable summary of a plan that `lockstep plan` prints (and rank 0
// of `lockstep run` may print): the layout, per-stage and per-rank memory and
// predicted time shares, the predicted speeds and the per-operator breakdown
// of the slowest stage's decode pass. Plain text, fixed-width columns.
#pragma once

#include <string>

#include "lockstep/partitioner/plan.h"

namespace lockstep::partitioner {

struct ReportOptions {
  // List every rank. By default ranks are listed when there are at most 64;
  // above that the stage table carries the per-stage averages.
  bool all_ranks = false;
  // Include the per-operator breakdown of the slowest stage's decode pass.
  bool op_breakdown = true;
};

std::string FormatPlanReport(const Plan& plan, const ReportOptions& options = {});

// "1.52 ms", "830 us", "2.10 s", "12.3 ns".
std::string FormatSeconds(double seconds);
// "80.00 TB", "1.23 GB", "230.7 MB", "12.0 kB", "512 B" (decimal units).
std::string FormatBytes(double bytes);

}  // namespace lockstep::partitioner
