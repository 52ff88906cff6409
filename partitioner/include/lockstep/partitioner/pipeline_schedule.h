// Timing of the static pipeline schedule: micro-batches flow through the
// stages for the prompt (prefill), the last stage samples a token and sends it
// back to stage 0, and the micro-batches then circulate once per generated
// token (decode).
//
// Every stage works through a fixed order: prefill of micro-batches 0..m-1
// (each in its prefill chunks 0..c-1), then decode round 1 for micro-batches
// 0..m-1, round 2, ... A stage starts an
// item when it has finished the previous one and the item's input has arrived.
// Hop h carries activations from stage h to h+1 (h < P-1); hop P-1 carries the
// sampled tokens from the last stage back to stage 0. A transfer of n bytes
// occupies its hop for n / bandwidth (transfers on one hop go one at a time,
// in schedule order) and arrives latency later; sends are non-blocking, so the
// sending stage moves on at once.
//
// SimulateSchedule plays this out event by event (the reference).
// SteadyDecodePeriod is the closed form of its steady state: the time between
// two tokens of one sequence is the slowest cycle of the schedule's event
// graph,
//
//   period = max( max_s sum_j decode[s][j],                  a stage busy all round
//                 max_j sum_s (decode[s][j] + hop[s][j]),    one micro-batch's loop
//                 max_h sum_j transfer[h][j] )               a saturated hop
//
// where hop = latency + transfer. It is exact when the micro-batches have
// equal times (tests check it against the simulation) and a close estimate
// otherwise (sizes differ by at most one sequence).
#pragma once

#include <vector>

namespace lockstep::partitioner {

struct ScheduleInput {
  int num_stages = 1;
  int num_micro_batches = 1;
  int prefill_chunks = 1;  // prefill passes per micro-batch
  // [stage][item]: time of a stage's pass (PassCost::time_s). Prefill items
  // are j * prefill_chunks + k (micro-batch j, chunk k); decode items are j.
  std::vector<std::vector<double>> prefill_s;
  std::vector<std::vector<double>> decode_s;
  // [hop]: latency of hop h. [hop][item]: bytes / bandwidth, items as above.
  // The return hop (P-1) carries a token after a micro-batch's last prefill
  // chunk only; its other prefill entries are not used. With one stage there
  // are no hops (all empty).
  std::vector<double> hop_latency_s;
  std::vector<std::vector<double>> prefill_transfer_s;
  std::vector<std::vector<double>> decode_transfer_s;
};

struct ScheduleResult {
  std::vector<double> first_token_s;  // per micro-batch: its first token is sampled
  double time_to_first_token_s = 0;   // the last micro-batch's first token
  std::vector<double> token_times_s;  // micro-batch 0: token t sampled at [t] (t >= 0)
  double decode_period_s = 0;         // mean over the second half of the rounds
};

// Simulates prefill and `decode_rounds` decode rounds (>= 0).
ScheduleResult SimulateSchedule(const ScheduleInput& input, int decode_rounds);

// The steady-state time between two tokens of one sequence (closed form).
double SteadyDecodePeriod(const ScheduleInput& input);

}  // namespace lockstep::partitioner
