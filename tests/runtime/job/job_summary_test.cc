// What a job reports when it ends and while it runs: percentiles, measured
// beside predicted, the JSON summary, and progress lines that count the
// tokens of requests still running.
#include "lockstep/job/job_summary.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "lockstep/job/batch_job.h"
#include "lockstep/model/synth.h"
#include "runtime/model_file_test_util.h"

namespace lockstep::runtime {
namespace {

TEST(JobSummaryTest, NearestRankPercentiles) {
  EXPECT_EQ(Percentile({}, 50), 0.0);
  EXPECT_EQ(Percentile({7}, 99), 7.0);
  const std::vector<double> v = {5, 1, 4, 2, 3, 10, 9, 8, 7, 6};  // 1..10, unordered
  EXPECT_EQ(Percentile(v, 50), 5.0);
  EXPECT_EQ(Percentile(v, 90), 9.0);
  EXPECT_EQ(Percentile(v, 99), 10.0);
  EXPECT_EQ(Percentile(v, 100), 10.0);
  EXPECT_EQ(Percentile(v, 0), 1.0);
  EXPECT_EQ(Percentile(v, 10), 1.0);
  EXPECT_EQ(Percentile(v, 11), 2.0);
}

TEST(JobSummaryTest, MeasuredBesidePredicted) {
  MeasuredAndPredicted m;
  m.decode_s_per_token = 0.0021;
  m.ttft_s = 0.030;
  m.tokens_per_s = 400;
  m.predicted_decode_s_per_token = 0.002;
  m.predicted_ttft_s = 0.025;
  m.predicted_tokens_per_s = 500;
  EXPECT_EQ(FormatMeasuredVsPredicted(m),
            "measured (predicted): decode 2.10 ms per token (2.00 ms, x1.05), time to first token "
            "30.00 ms (25.00 ms, x1.20), 400.0 tokens/s (500.0, x0.80)");
  m.decode_s_per_token = 0;  // every request made one token
  EXPECT_NE(FormatMeasuredVsPredicted(m).find("decode - per token (2.00 ms)"), std::string::npos);
}

TEST(JobSummaryTest, CompareWithPlanTakesMeanGapMedianTtftAndRunRate) {
  BatchJobSummary s;
  s.inter_token_s = {0.01, 0.02, 0.03};
  s.ttft_s = {0.5, 0.1, 0.2};
  s.generated_tokens = 30;
  s.run_seconds = 2.0;
  s.plan.prediction.decode_latency_per_token_s = 0.019;
  const MeasuredAndPredicted m = CompareWithPlan(s);
  EXPECT_DOUBLE_EQ(m.decode_s_per_token, 0.02);
  EXPECT_DOUBLE_EQ(m.ttft_s, 0.2);
  EXPECT_DOUBLE_EQ(m.tokens_per_s, 15.0);
  EXPECT_DOUBLE_EQ(m.predicted_decode_s_per_token, 0.019);
  // With the first batch's slowest first token: that (the plan predicts the
  // prefill of its whole first batch).
  s.first_batch_ttft_s = 0.4;
  EXPECT_DOUBLE_EQ(CompareWithPlan(s).ttft_s, 0.4);
}

// A long request: progress lines before it finishes count its tokens (the
// line used to say 0 tokens until the first request ended).
TEST(JobSummaryTest, ProgressCountsTokensOfRequestsStillRunning) {
  testing::ScratchDir dir;
  const partitioner::ModelConfig config = testing::MicroConfig();
  const std::string model = dir.File("model.h5");
  ASSERT_TRUE(SynthesizeModel(config, DType::kBF16, 1, model).ok());
  const std::string requests = dir.File("requests.jsonl");
  std::ofstream(requests)
      << R"({"id": "long", "prompt_tokens": [1, 2], "max_tokens": 40, "temperature": 0, "ignore_eos": true})"
      << "\n";
  BatchJobOptions options;
  options.model_path = model;
  options.input_path = requests;
  options.output_path = dir.File("results.jsonl");
  options.progress_interval_s = 0;  // a line at every step
  ::testing::internal::CaptureStderr();
  Result<BatchJobSummary> s = RunBatchJob(options);
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->generated_tokens, 40);
  const std::regex line(R"(requests 0/1 done, (\d+) tokens, ([\d.]+) tokens/s)");
  int64_t most = 0;
  for (auto it = std::sregex_iterator(err.begin(), err.end(), line); it != std::sregex_iterator();
       ++it) {
    most = std::max<int64_t>(most, std::stoll((*it)[1]));
  }
  EXPECT_GE(most, 30) << err;  // counted while the request was still running
  // The last step's line may still say 0/1 done with all 40 tokens: a
  // request is done only once its result's fsync has returned (the writer
  // thread's group commit), which can come after that line.
  EXPECT_LE(most, 40) << err;
  EXPECT_NE(err.find("requests 1/1 done, 40 tokens"), std::string::npos) << err;
}

// Group commit in a real job: three requests finish in one step and two in
// a later one, so the results file gets at most two fsyncs (one per step, or
// one for both when the second step queued behind the first's fsync), never
// one per result; the writer's own counter says so, not a clock.
TEST(JobSummaryTest, ResultsOfOneStepShareOneCommit) {
  testing::ScratchDir dir;
  const partitioner::ModelConfig config = testing::MicroConfig();
  const std::string model = dir.File("model.h5");
  ASSERT_TRUE(SynthesizeModel(config, DType::kBF16, 1, model).ok());
  const std::string requests = dir.File("requests.jsonl");
  std::ofstream out(requests);
  for (const char* id : {"a", "b", "c"}) {
    out << R"({"id": ")" << id
        << R"(", "prompt_tokens": [1, 2], "max_tokens": 3, "ignore_eos": true})" << "\n";
  }
  for (const char* id : {"d", "e"}) {
    out << R"({"id": ")" << id
        << R"(", "prompt_tokens": [3], "max_tokens": 6, "ignore_eos": true})" << "\n";
  }
  out.close();
  BatchJobOptions options;
  options.model_path = model;
  options.input_path = requests;
  options.output_path = dir.File("results.jsonl");
  options.progress = false;
  options.max_batch = 8;
  Result<BatchJobSummary> s = RunBatchJob(options);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->completed, 5);
  EXPECT_GE(s->result_commits, 1);
  EXPECT_LE(s->result_commits, 2);
  std::ifstream in(options.output_path);
  int lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  EXPECT_EQ(lines, 5);
  const std::string path = dir.File("summary.json");
  ASSERT_TRUE(WriteJobSummary(path, options, *s).ok());
  std::ifstream summary(path);
  EXPECT_EQ(nlohmann::json::parse(summary)["requests"]["commits"], s->result_commits);
}

TEST(JobSummaryTest, JsonSummaryOfARealJob) {
  testing::ScratchDir dir;
  const partitioner::ModelConfig config = testing::MicroConfig();
  const std::string model = dir.File("model.h5");
  ASSERT_TRUE(SynthesizeModel(config, DType::kBF16, 1, model).ok());
  const std::string requests = dir.File("requests.jsonl");
  std::ofstream(requests)
      << R"({"id": "a", "prompt_tokens": [1, 2, 3], "max_tokens": 5, "ignore_eos": true})"
      << "\n"
      << R"({"id": "b", "prompt_tokens": [4], "max_tokens": 3, "ignore_eos": true})"
      << "\n";
  BatchJobOptions options;
  options.model_path = model;
  options.input_path = requests;
  options.output_path = dir.File("results.jsonl");
  options.progress = false;
  options.threads = 0;  // the cores available
  Result<BatchJobSummary> s = RunBatchJob(options);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_GE(s->threads, 1);
  const std::string path = dir.File("summary.json");
  ASSERT_TRUE(WriteJobSummary(path, options, *s).ok());
  std::ifstream in(path);
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["tokens"]["generated"], 8);
  EXPECT_EQ(j["tokens"]["prompt"], 4);
  EXPECT_EQ(j["ttft_ms"]["count"], 2);
  // Both requests were admitted in the first step: the measured TTFT beside
  // the prediction is the slower of the two.
  ASSERT_EQ(s->ttft_s.size(), 2u);
  EXPECT_EQ(s->first_batch_ttft_s, std::max(s->ttft_s[0], s->ttft_s[1]));
  EXPECT_EQ(j["measured"]["ttft_of"], "first batch");
  EXPECT_DOUBLE_EQ(j["measured"]["ttft_ms"].get<double>(), s->first_batch_ttft_s * 1e3);
  EXPECT_EQ(j["inter_token_ms"]["count"], 6);
  EXPECT_EQ(j["plan"]["batch"], 2);
  EXPECT_EQ(j["plan"]["prompt_length"], 3);
  EXPECT_EQ(j["plan"]["generated_length"], 5);
  EXPECT_EQ(j["plan"]["threads_per_rank"], s->threads);
  EXPECT_EQ(j["plan"]["kv_pages"], 2);  // 2 sequences of 8 positions: a page each
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_FALSE(WriteJobSummary(dir.File("no/such/dir/summary.json"), options, *s).ok());
}

}  // namespace
}  // namespace lockstep::runtime
