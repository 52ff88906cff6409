#include "lockstep/partitioner/pipeline_schedule.h"

#include <gtest/gtest.h>

namespace lockstep::partitioner {
namespace {

// P stages, m micro-batches with the given per-stage times (the same for
// every micro-batch), uniform hops.
ScheduleInput Uniform(std::vector<double> prefill, std::vector<double> decode, int m,
                      double latency, double transfer, double token_transfer) {
  ScheduleInput in;
  in.num_stages = static_cast<int>(prefill.size());
  in.num_micro_batches = m;
  for (size_t s = 0; s < prefill.size(); ++s) {
    in.prefill_s.push_back(std::vector<double>(m, prefill[s]));
    in.decode_s.push_back(std::vector<double>(m, decode[s]));
  }
  if (in.num_stages > 1) {
    for (int h = 0; h < in.num_stages; ++h) {
      const bool back = h == in.num_stages - 1;
      in.hop_latency_s.push_back(latency);
      in.prefill_transfer_s.push_back(std::vector<double>(m, back ? token_transfer : transfer));
      in.decode_transfer_s.push_back(std::vector<double>(m, back ? token_transfer : transfer / 8));
    }
  }
  return in;
}

TEST(PipelineScheduleTest, OneStageOneMicroBatch) {
  ScheduleInput in = Uniform({5.0}, {2.0}, 1, 0, 0, 0);
  ScheduleResult r = SimulateSchedule(in, 4);
  EXPECT_EQ(r.time_to_first_token_s, 5.0);
  EXPECT_EQ(r.token_times_s, (std::vector<double>{5, 7, 9, 11, 13}));
  EXPECT_EQ(r.decode_period_s, 2.0);
  EXPECT_EQ(SteadyDecodePeriod(in), 2.0);
}

TEST(PipelineScheduleTest, TwoStagesByHand) {
  // Prefill 3 + hop (1 + 4) + 2 = 10 for the first token; a decode round is
  // the loop 1 + (1 + 0.5) + 1.5 + (1 + 0.25) = 5.25.
  ScheduleInput in = Uniform({3.0, 2.0}, {1.0, 1.5}, 1, 1.0, 4.0, 0.25);
  ScheduleResult r = SimulateSchedule(in, 3);
  EXPECT_DOUBLE_EQ(r.time_to_first_token_s, 10.0);
  EXPECT_DOUBLE_EQ(r.token_times_s[1], 10.0 + 1.25 + 1.0 + 1.5 + 1.5);
  EXPECT_DOUBLE_EQ(r.decode_period_s, 5.25);
  EXPECT_DOUBLE_EQ(SteadyDecodePeriod(in), 5.25);
}

TEST(PipelineScheduleTest, PrefillFillsAndDrains) {
  // 3 equal stages of 2, no hop cost, 4 micro-batches: the last one's token
  // comes after fill (2 stages x 2) plus 4 passes on the last stage.
  ScheduleInput in = Uniform({2.0, 2.0, 2.0}, {1.0, 1.0, 1.0}, 4, 0, 0, 0);
  ScheduleResult r = SimulateSchedule(in, 0);
  EXPECT_EQ(r.first_token_s, (std::vector<double>{6, 8, 10, 12}));
  EXPECT_EQ(r.time_to_first_token_s, 12.0);
}

TEST(PipelineScheduleTest, ClosedFormMatchesTheSimulation) {
  struct Case {
    std::vector<double> decode;
    int m;
    double latency, transfer, token;
  };
  const Case cases[] = {
      {{1.0, 1.0, 1.0, 1.0}, 1, 0.5, 0.8, 0.1},  // loop-bound: m = 1
      {{1.0, 1.0, 1.0, 1.0}, 8, 0.5, 0.8, 0.1},  // stage-bound: 8 x 1 > loop
      {{1.0, 3.0, 1.0}, 2, 0.2, 0.0, 0.0},       // one slow stage
      {{2.0, 1.0, 0.5, 0.5, 1.0}, 3, 1.0, 4.0, 0.1},
      {{0.1, 0.1}, 4, 0.0, 16.0, 0.0},  // a saturated hop: 4 x 2 per round
      {{1.0}, 5, 0, 0, 0},
  };
  for (const Case& c : cases) {
    ScheduleInput in = Uniform(std::vector<double>(c.decode.size(), 1.0), c.decode, c.m, c.latency,
                               c.transfer, c.token);
    ScheduleResult r = SimulateSchedule(in, 400);
    EXPECT_NEAR(r.decode_period_s, SteadyDecodePeriod(in), 1e-9 * SteadyDecodePeriod(in))
        << "stages " << c.decode.size() << " m " << c.m;
  }
}

TEST(PipelineScheduleTest, UnevenMicroBatchesStayClose) {
  // Micro-batches of 3, 3, 2 sequences: times proportional to size.
  ScheduleInput in = Uniform({1, 1, 1}, {1, 1, 1}, 3, 0.3, 0.6, 0.05);
  for (int s = 0; s < 3; ++s) {
    in.decode_s[s] = {3.0, 3.0, 2.0};
    in.prefill_s[s] = {3.0, 3.0, 2.0};
  }
  ScheduleResult r = SimulateSchedule(in, 400);
  EXPECT_NEAR(r.decode_period_s, SteadyDecodePeriod(in), 0.05 * SteadyDecodePeriod(in));
  EXPECT_GE(r.decode_period_s, 8.0 - 1e-9);  // a stage is busy 3 + 3 + 2 per round
}

}  // namespace
}  // namespace lockstep::partitioner

namespace lockstep::partitioner {
namespace {

TEST(PipelineScheduleTest, PrefillChunksPipelineLikeMicroBatches) {
  // 2 stages, 1 micro-batch in 3 chunks of 1 time unit each, no hop cost:
  // chunks flow through the stages one behind the other, so the first token
  // comes at 4, not at 6 as without overlap.
  ScheduleInput in;
  in.num_stages = 2;
  in.num_micro_batches = 1;
  in.prefill_chunks = 3;
  in.prefill_s = {{1, 1, 1}, {1, 1, 1}};
  in.decode_s = {{1}, {1}};
  in.hop_latency_s = {0, 0};
  in.prefill_transfer_s = {{0, 0, 0}, {0, 0, 0}};
  in.decode_transfer_s = {{0}, {0}};
  ScheduleResult r = SimulateSchedule(in, 2);
  EXPECT_EQ(r.time_to_first_token_s, 4.0);
  EXPECT_EQ(r.token_times_s, (std::vector<double>{4, 6, 8}));
}

}  // namespace
}  // namespace lockstep::partitioner
