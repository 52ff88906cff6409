#include "lockstep/partitioner/pipeline_schedule.h"

#include <algorithm>

#include "lockstep/base/check.h"

namespace lockstep::partitioner {
namespace {

void CheckInput(const ScheduleInput& in) {
  const size_t p = static_cast<size_t>(in.num_stages);
  const size_t m = static_cast<size_t>(in.num_micro_batches);
  const size_t items = m * static_cast<size_t>(in.prefill_chunks);
  const size_t hops = p > 1 ? p : 0;
  LOCKSTEP_CHECK(p >= 1 && m >= 1 && in.prefill_chunks >= 1);
  LOCKSTEP_CHECK(in.prefill_s.size() == p && in.decode_s.size() == p);
  LOCKSTEP_CHECK(in.hop_latency_s.size() == hops && in.prefill_transfer_s.size() == hops &&
                 in.decode_transfer_s.size() == hops);
  for (size_t s = 0; s < p; ++s) {
    LOCKSTEP_CHECK(in.prefill_s[s].size() == items && in.decode_s[s].size() == m);
  }
  for (size_t h = 0; h < hops; ++h) {
    LOCKSTEP_CHECK(in.prefill_transfer_s[h].size() == items && in.decode_transfer_s[h].size() == m);
  }
}

// One hop as a resource: transfers go one at a time in schedule order.
struct Hop {
  double free_at = 0;
  // Returns the arrival time of a transfer whose data is ready at `ready`.
  double Send(double ready, double latency, double transfer) {
    const double start = std::max(ready, free_at);
    free_at = start + transfer;
    return start + transfer + latency;
  }
};

}  // namespace

ScheduleResult SimulateSchedule(const ScheduleInput& in, int decode_rounds) {
  CheckInput(in);
  const int p = in.num_stages;
  const int m = in.num_micro_batches;
  std::vector<double> stage_free(p, 0.0);
  std::vector<Hop> hops(p > 1 ? p : 0);
  // arrival[j]: when micro-batch j's input reaches the stage being processed.
  std::vector<double> arrival(m, 0.0);
  // back[j]: when micro-batch j's sampled token is back at stage 0.
  std::vector<double> back(m, 0.0);
  ScheduleResult result;
  result.first_token_s.assign(m, 0.0);

  // Prefill: order (j, k, s) is a valid topological order of the dependencies.
  const int chunks = in.prefill_chunks;
  for (int j = 0; j < m; ++j) {
    for (int k = 0; k < chunks; ++k) {
      const int item = j * chunks + k;
      double ready = 0.0;
      for (int s = 0; s < p; ++s) {
        const double start = std::max(stage_free[s], ready);
        const double finish = start + in.prefill_s[s][item];
        stage_free[s] = finish;
        if (s + 1 < p) {
          ready = hops[s].Send(finish, in.hop_latency_s[s], in.prefill_transfer_s[s][item]);
        } else if (k == chunks - 1) {
          result.first_token_s[j] = finish;
          back[j] = p > 1 ? hops[p - 1].Send(finish, in.hop_latency_s[p - 1],
                                             in.prefill_transfer_s[p - 1][item])
                          : finish;
        }
      }
    }
  }
  result.time_to_first_token_s =
      *std::max_element(result.first_token_s.begin(), result.first_token_s.end());
  result.token_times_s.push_back(result.first_token_s[0]);

  for (int t = 1; t <= decode_rounds; ++t) {
    for (int j = 0; j < m; ++j) {
      double ready = back[j];
      for (int s = 0; s < p; ++s) {
        const double start = std::max(stage_free[s], ready);
        const double finish = start + in.decode_s[s][j];
        stage_free[s] = finish;
        if (s + 1 < p) {
          ready = hops[s].Send(finish, in.hop_latency_s[s], in.decode_transfer_s[s][j]);
        } else {
          if (j == 0) result.token_times_s.push_back(finish);
          back[j] = p > 1 ? hops[p - 1].Send(finish, in.hop_latency_s[p - 1],
                                             in.decode_transfer_s[p - 1][j])
                          : finish;
        }
      }
    }
  }
  if (decode_rounds >= 1) {
    const int last = decode_rounds;
    const int mid = decode_rounds / 2;
    result.decode_period_s =
        (result.token_times_s[last] - result.token_times_s[mid]) / (last - mid);
  }
  return result;
}

double SteadyDecodePeriod(const ScheduleInput& in) {
  CheckInput(in);
  const int p = in.num_stages;
  const int m = in.num_micro_batches;
  double period = 0.0;
  for (int s = 0; s < p; ++s) {
    double busy = 0.0;
    for (int j = 0; j < m; ++j) busy += in.decode_s[s][j];
    period = std::max(period, busy);
  }
  for (int j = 0; j < m; ++j) {
    double loop = 0.0;
    for (int s = 0; s < p; ++s) {
      loop += in.decode_s[s][j];
      if (p > 1) loop += in.hop_latency_s[s] + in.decode_transfer_s[s][j];
    }
    period = std::max(period, loop);
  }
  for (size_t h = 0; h < in.decode_transfer_s.size(); ++h) {
    double busy = 0.0;
    for (int j = 0; j < m; ++j) busy += in.decode_transfer_s[h][j];
    period = std::max(period, busy);
  }
  return period;
}

}  // namespace lockstep::partitioner
