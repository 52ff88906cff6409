// The distributed runtime on the local backend (one thread per chip): every
// (tp, pp) of issue 5 gives the one-rank bits, for batch 1 and batch 16,
// greedy and sampled, with different --max-batch, prefill chunks and
// micro-batch counts, for the tiny model and one model of each family; each
// rank reads only its shards; KV budget errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "lockstep/job/batch_job.h"
#include "lockstep/model/synth.h"
#include "lockstep/partitioner/chip_presets.h"
#include "lockstep/partitioner/planner.h"
#include "lockstep/transport/local_fabric.h"
#include "runtime/distributed_test_util.h"
#include "runtime/model_file_test_util.h"

namespace lockstep::runtime {
namespace {

using testing::DeterminismRequests;
using testing::FirstDifference;
using testing::JobOptions;
using testing::JobVariant;
using testing::ResultsById;
using testing::ScratchDir;
using testing::WriteTextFile;

// Runs `options` on `chips` local chips; returns chip 0's summary (every
// chip must succeed).
Result<BatchJobSummary> RunOnChips(int chips, const BatchJobOptions& options) {
  std::mutex mutex;
  Result<BatchJobSummary> leader = Internal("chip 0 did not run");
  transport::CommOptions comm;
  comm.backend = transport::BackendKind::kLocal;
  comm.timeout = std::chrono::seconds(120);
  std::vector<Status> statuses =
      transport::RunLocal(chips, comm, [&](transport::Communicator& chip) -> Status {
        bool on_all = false;
        Result<BatchJobSummary> s = RunBatchJob(options, chip, &on_all);
        if (chip.rank() != 0) return s.status();
        std::lock_guard<std::mutex> lock(mutex);
        leader = std::move(s);
        return leader.status();
      });
  for (size_t r = 1; r < statuses.size(); ++r) {
    if (!statuses[r].ok()) return statuses[r].WithContext(fmt::format("chip {}", r));
  }
  return leader;
}

// The tiny preset (8 heads, 2 KV heads, 4 layers), bf16, and its one-rank,
// batch-1 reference: shared by every test of the suite.
class DistributedLocalTest : public ::testing::TestWithParam<std::pair<int, int>> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir();
    config_ = *partitioner::ModelPreset("tiny");
    model_ = dir_->File("tiny.h5");
    ASSERT_TRUE(SynthesizeModel(config_, DType::kBF16, 23, model_).ok());
    requests_ = dir_->File("requests.jsonl");
    WriteTextFile(requests_, DeterminismRequests(config_.vocab_size));
    // Batch 1, one rank: the reference.
    Result<BatchJobSummary> s = RunBatchJob(
        JobOptions(model_, requests_, dir_->File("reference.jsonl"), {1, 256, 0}, 1, 1));
    ASSERT_TRUE(s.ok()) << s.status().message();
    ASSERT_EQ(s->completed, 16);
    reference_ = new ResultsById(testing::ById(*s));
  }
  static void TearDownTestSuite() {
    delete reference_;
    delete dir_;
  }

  static ScratchDir* dir_;
  static partitioner::ModelConfig config_;
  static std::string model_;
  static std::string requests_;
  static ResultsById* reference_;
};

ScratchDir* DistributedLocalTest::dir_ = nullptr;
partitioner::ModelConfig DistributedLocalTest::config_;
std::string DistributedLocalTest::model_;
std::string DistributedLocalTest::requests_;
ResultsById* DistributedLocalTest::reference_ = nullptr;

TEST_P(DistributedLocalTest, SameBitsAsOneRank) {
  ASSERT_NE(reference_, nullptr);
  const auto [tp, pp] = GetParam();
  std::vector<JobVariant> variants = {
      {16, 256, 0},  // batch 16, whole prompts
      {3, 16, 0},    // continuous admission, prompts in chunks of 16 tokens
  };
  if (pp > 1) variants.push_back({16, 32, 4});  // more micro-batches than stages
  for (const JobVariant& v : variants) {
    BatchJobOptions o = JobOptions(model_, requests_, dir_->File("out.jsonl"), v, tp, pp);
    Result<BatchJobSummary> s = RunOnChips(tp * pp, o);
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_EQ(s->plan.tp, tp);
    EXPECT_EQ(s->plan.pp, pp);
    EXPECT_EQ(FirstDifference(*reference_, testing::ById(*s)), "")
        << "tp " << tp << " pp " << pp << ", " << v.Name();
  }
}

INSTANTIATE_TEST_SUITE_P(Plans, DistributedLocalTest,
                         ::testing::Values(std::pair{2, 1}, std::pair{4, 1}, std::pair{8, 1},
                                           std::pair{1, 2}, std::pair{1, 4}, std::pair{2, 2},
                                           std::pair{2, 4}, std::pair{4, 2}),
                         [](const ::testing::TestParamInfo<std::pair<int, int>>& info) {
                           return fmt::format("tp{}_pp{}", info.param.first, info.param.second);
                         });

// Quantized weights (q8_0, q4_0) and the bf16 compute (kernels/bf16_matmul.h)
// on the model every tp splits in whole blocks (DistributedTestConfig): the
// same plans give the one-rank bits of the same mode.
struct ModePlan {
  DType dtype;
  int tp, pp;
  kernels::Compute compute = kernels::Compute::kFloat;
  std::string Mode() const {
    return compute == kernels::Compute::kBf16 ? "bf16_compute" : std::string(DTypeName(dtype));
  }
};
void PrintTo(const ModePlan& p, std::ostream* os) {
  *os << p.Mode() << " tp " << p.tp << " pp " << p.pp;
}

class DistributedModeTest : public ::testing::TestWithParam<ModePlan> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir();
    for (const ModePlan& mode : {ModePlan{DType::kQ8_0, 1, 1}, ModePlan{DType::kQ4_0, 1, 1},
                                 ModePlan{DType::kBF16, 1, 1, kernels::Compute::kBf16}}) {
      const partitioner::ModelConfig config = testing::DistributedTestConfig(mode.dtype);
      Case& c = cases_[mode.Mode()];
      c.model = dir_->File(fmt::format("tiny-{}.h5", mode.Mode()));
      ASSERT_TRUE(SynthesizeModel(config, mode.dtype, 29, c.model).ok());
      c.requests = dir_->File("requests.jsonl");
      WriteTextFile(c.requests, DeterminismRequests(config.vocab_size));
      BatchJobOptions o =
          JobOptions(c.model, c.requests, dir_->File("reference.jsonl"), {1, 256, 0}, 1, 1);
      o.compute = mode.compute;
      Result<BatchJobSummary> s = RunBatchJob(o);
      ASSERT_TRUE(s.ok()) << s.status().message();
      ASSERT_EQ(s->completed, 16);
      c.reference = testing::ById(*s);
    }
  }
  static void TearDownTestSuite() {
    cases_.clear();
    delete dir_;
  }
  struct Case {
    std::string model, requests;
    ResultsById reference;
  };
  static ScratchDir* dir_;
  static std::map<std::string, Case> cases_;
};

ScratchDir* DistributedModeTest::dir_ = nullptr;
std::map<std::string, DistributedModeTest::Case> DistributedModeTest::cases_;

TEST_P(DistributedModeTest, SameBitsAsOneRank) {
  const ModePlan p = GetParam();
  ASSERT_TRUE(cases_.contains(p.Mode()));
  const Case& c = cases_.at(p.Mode());
  std::vector<JobVariant> variants = {{16, 256, 0}, {3, 16, 0}};
  if (p.pp > 1) variants.push_back({16, 32, 4});
  for (const JobVariant& v : variants) {
    BatchJobOptions o = JobOptions(c.model, c.requests, dir_->File("out.jsonl"), v, p.tp, p.pp);
    o.compute = p.compute;
    Result<BatchJobSummary> s = RunOnChips(p.tp * p.pp, o);
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_EQ(s->plan.tp, p.tp);
    EXPECT_EQ(s->plan.pp, p.pp);
    EXPECT_EQ(s->plan.request.workload.compute == partitioner::MatmulCompute::kBf16,
              p.compute == kernels::Compute::kBf16);
    EXPECT_EQ(FirstDifference(c.reference, testing::ById(*s)), "")
        << p.Mode() << " tp " << p.tp << " pp " << p.pp << ", " << v.Name();
  }
}

constexpr kernels::Compute kBf16Compute = kernels::Compute::kBf16;
INSTANTIATE_TEST_SUITE_P(
    Plans, DistributedModeTest,
    ::testing::Values(ModePlan{DType::kQ8_0, 2, 1}, ModePlan{DType::kQ8_0, 4, 1},
                      ModePlan{DType::kQ8_0, 8, 1}, ModePlan{DType::kQ8_0, 1, 4},
                      ModePlan{DType::kQ8_0, 2, 2}, ModePlan{DType::kQ8_0, 4, 2},
                      ModePlan{DType::kQ4_0, 2, 1}, ModePlan{DType::kQ4_0, 8, 1},
                      ModePlan{DType::kQ4_0, 1, 2}, ModePlan{DType::kQ4_0, 2, 4},
                      ModePlan{DType::kBF16, 2, 1, kBf16Compute},
                      ModePlan{DType::kBF16, 8, 1, kBf16Compute},
                      ModePlan{DType::kBF16, 2, 2, kBf16Compute},
                      ModePlan{DType::kBF16, 4, 2, kBf16Compute}),
    [](const ::testing::TestParamInfo<ModePlan>& info) {
      return fmt::format("{}_tp{}_pp{}", info.param.Mode(), info.param.tp, info.param.pp);
    });

// The tiny preset in q8_0 cannot be split by tp 2 (intermediate_size 352 is
// 11 blocks): one error naming the tensor, on every chip.
TEST(DistributedQuantErrors, SplitThatCutsABlockIsRefused) {
  ScratchDir dir;
  const std::string model = dir.File("tiny-q8_0.h5");
  const partitioner::ModelConfig config = *partitioner::ModelPreset("tiny");
  ASSERT_TRUE(SynthesizeModel(config, DType::kQ8_0, 1, model).ok());
  const std::string requests = dir.File("requests.jsonl");
  WriteTextFile(requests, DeterminismRequests(config.vocab_size));
  Result<BatchJobSummary> s =
      RunOnChips(2, JobOptions(model, requests, dir.File("out.jsonl"), {4, 256, 0}, 2, 1));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << s.status().message();
  EXPECT_NE(s.status().message().find("'/layers/0/ffn/w_down'"), std::string::npos)
      << s.status().message();
  EXPECT_NE(s.status().message().find("tp 2 would cut"), std::string::npos) << s.status().message();
}

// The bf16 compute needs a bf16 model, and a plan made for one compute mode
// is refused by a job of the other: errors naming the file, on every chip.
TEST(DistributedModeErrors, Bf16ComputeIsRefusedWhereItCannotApply) {
  ScratchDir dir;
  const partitioner::ModelConfig config = *partitioner::ModelPreset("tiny");
  const std::string f16 = dir.File("tiny-f16.h5"), bf16 = dir.File("tiny-bf16.h5");
  ASSERT_TRUE(SynthesizeModel(config, DType::kF16, 1, f16).ok());
  ASSERT_TRUE(SynthesizeModel(config, DType::kBF16, 1, bf16).ok());
  const std::string requests = dir.File("requests.jsonl");
  WriteTextFile(requests, DeterminismRequests(config.vocab_size));
  BatchJobOptions o = JobOptions(f16, requests, dir.File("out.jsonl"), {4, 256, 0}, 2, 1);
  o.compute = kernels::Compute::kBf16;
  Result<BatchJobSummary> s = RunOnChips(2, o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << s.status().message();
  EXPECT_NE(s.status().message().find(f16 + ": --compute bf16 needs bf16 weights and the file "
                                            "holds f16"),
            std::string::npos)
      << s.status().message();

  // A bf16-compute plan, run with float compute.
  partitioner::PlanRequest request;
  request.model = config;
  request.cluster = *partitioner::ChipPreset("host", 2);
  request.workload.batch_size = 4;
  request.workload.prompt_length = 64;
  request.workload.generated_length = 64;
  request.workload.compute = partitioner::MatmulCompute::kBf16;
  request.tp = 2;
  request.pp = 1;
  Result<partitioner::Plan> plan = partitioner::MakePlan(request);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const std::string plan_path = dir.File("plan.json");
  WriteTextFile(plan_path, partitioner::PlanToJson(*plan).dump());
  o = JobOptions(bf16, requests, dir.File("out.jsonl"), {4, 256, 0}, 0, 0);
  o.plan_path = plan_path;
  s = RunOnChips(2, o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("the plan is for bf16 compute but the job runs float "
                                       "compute"),
            std::string::npos)
      << s.status().message();
  o.compute = kernels::Compute::kBf16;
  s = RunOnChips(2, o);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->completed, 16);
}

// Every family's features (q/k/v biases, sliding windows, each rope scaling,
// tied embeddings) under the same splits: one small model per family (the
// tiny-<family> presets), each against its own one-rank, batch-1 run.
struct FamilyPlan {
  const char* preset;
  int tp;
  int pp;
};

class FamilyDistributedLocalTest : public ::testing::TestWithParam<FamilyPlan> {
 protected:
  // The model and the one-rank reference of `preset`, made once per suite.
  struct Family {
    std::string model, requests;
    ResultsById reference;
  };
  static const Family& Get(const char* preset) {
    static ScratchDir* dir = new ScratchDir();
    static std::map<std::string, Family>* families = new std::map<std::string, Family>();
    auto it = families->find(preset);
    if (it != families->end()) return it->second;
    Family f;
    const partitioner::ModelConfig config = *partitioner::ModelPreset(preset);
    f.model = dir->File(std::string(preset) + ".h5");
    EXPECT_TRUE(SynthesizeModel(config, DType::kBF16, 29, f.model).ok());
    f.requests = dir->File(std::string(preset) + ".jsonl");
    WriteTextFile(f.requests, DeterminismRequests(config.vocab_size));
    Result<BatchJobSummary> s = RunBatchJob(
        JobOptions(f.model, f.requests, dir->File("reference.jsonl"), {1, 256, 0}, 1, 1));
    EXPECT_TRUE(s.ok()) << s.status().message();
    if (s.ok()) {
      EXPECT_EQ(s->completed, 16);
      f.reference = testing::ById(*s);
    }
    return families->emplace(preset, std::move(f)).first->second;
  }
};

TEST_P(FamilyDistributedLocalTest, SameBitsAsOneRank) {
  const FamilyPlan& p = GetParam();
  const Family& family = Get(p.preset);
  ASSERT_EQ(family.reference.size(), 16u);
  ScratchDir dir;
  std::vector<JobVariant> variants = {{16, 256, 0}, {3, 16, 0}};
  if (p.pp > 1) variants.push_back({16, 32, 4});
  for (const JobVariant& v : variants) {
    BatchJobOptions o =
        JobOptions(family.model, family.requests, dir.File("out.jsonl"), v, p.tp, p.pp);
    Result<BatchJobSummary> s = RunOnChips(p.tp * p.pp, o);
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_EQ(FirstDifference(family.reference, testing::ById(*s)), "")
        << p.preset << " tp " << p.tp << " pp " << p.pp << ", " << v.Name();
  }
}

std::vector<FamilyPlan> FamilyPlans() {
  std::vector<FamilyPlan> plans;
  for (const char* preset : {"tiny-llama3", "tiny-qwen2", "tiny-mistral", "tiny-phi3"}) {
    for (auto [tp, pp] : {std::pair{2, 1}, std::pair{4, 1}, std::pair{8, 1}, std::pair{1, 2},
                          std::pair{2, 2}, std::pair{2, 4}, std::pair{4, 2}}) {
      plans.push_back({preset, tp, pp});
    }
  }
  return plans;
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyDistributedLocalTest, ::testing::ValuesIn(FamilyPlans()),
                         [](const ::testing::TestParamInfo<FamilyPlan>& info) {
                           std::string name = fmt::format("{}_tp{}_pp{}", info.param.preset,
                                                          info.param.tp, info.param.pp);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// The comparison can fail: a run with the plain reduction order differs, and
// the message names a request and a step.
TEST_F(DistributedLocalTest, PlainReductionOrderIsCaught) {
  ASSERT_NE(reference_, nullptr);
  BatchJobOptions o = JobOptions(model_, requests_, dir_->File("plain.jsonl"), {16, 256, 0}, 2, 1);
  o.reduction_order = kernels::ReductionOrder::kPlain;
  Result<BatchJobSummary> s = RunOnChips(2, o);
  ASSERT_TRUE(s.ok()) << s.status().message();
  const std::string diff = FirstDifference(*reference_, testing::ById(*s));
  EXPECT_NE(diff.find("request r"), std::string::npos) << diff;
  EXPECT_NE(diff.find("step "), std::string::npos) << diff;
}

// Overlap (--tp-overlap, docs/architecture.md "Overlap"): each step's batch
// as two micro-batches, one computing while the other's tp allreduce is in
// flight. Only the schedule changes: the one-rank bits at batch 1 (nothing to
// overlap), 2, odd batches and 16, whole prompts and prefill chunks, tp 2, tp
// 4 (three allreduce steps) and tp 2 x pp 2 with pipeline micro-batches.
TEST_F(DistributedLocalTest, OverlappedTpScheduleGivesTheOneRankBits) {
  ASSERT_NE(reference_, nullptr);
  for (const auto& [tp, pp] : {std::pair{2, 1}, std::pair{4, 1}, std::pair{2, 2}}) {
    std::vector<JobVariant> variants = {{1, 256, 0, true}, {2, 256, 0, true}, {3, 16, 0, true},
                                        {5, 256, 0, true}, {16, 256, 0, true}};
    if (pp > 1) variants.push_back({16, 32, 4, true});
    for (const JobVariant& v : variants) {
      BatchJobOptions o = JobOptions(model_, requests_, dir_->File("overlap.jsonl"), v, tp, pp);
      Result<BatchJobSummary> s = RunOnChips(tp * pp, o);
      ASSERT_TRUE(s.ok()) << s.status().message();
      EXPECT_EQ(FirstDifference(*reference_, testing::ById(*s)), "")
          << "tp " << tp << " pp " << pp << ", " << v.Name();
    }
  }
}

// Start-up that scales (issue 12): each chip receives its part of the plan
// (Plan::part_rank) and the request data of its stage, and the agreements are
// trees, so the bytes a chip receives at start-up do not grow with the chip
// count (at most 2x from 2 to 32 chips), a chip other than the leader talks
// to at most log2(p) + 1 peers, and the job still gives the one-rank bits.
TEST_F(DistributedLocalTest, StartUpCostDoesNotGrowWithTheChipCount) {
  ASSERT_NE(reference_, nullptr);
  struct Shape {
    int tp, pp;
  };
  uint64_t max_bytes[2] = {0, 0};
  int i = 0;
  for (const Shape shape : {Shape{2, 1}, Shape{8, 4}}) {
    const int p = shape.tp * shape.pp;
    BatchJobOptions o = JobOptions(model_, requests_, dir_->File("startup.jsonl"), {16, 256, 0},
                                   shape.tp, shape.pp);
    std::mutex mutex;
    std::vector<int> part_ranks(static_cast<size_t>(p), -2);
    std::vector<size_t> listed(static_cast<size_t>(p), 0);
    Result<BatchJobSummary> leader = Internal("chip 0 did not run");
    transport::CommOptions comm;
    comm.backend = transport::BackendKind::kLocal;
    comm.timeout = std::chrono::seconds(120);
    std::vector<Status> statuses =
        transport::RunLocal(p, comm, [&](transport::Communicator& chip) -> Status {
          bool on_all = false;
          Result<BatchJobSummary> s = RunBatchJob(o, chip, &on_all);
          std::lock_guard<std::mutex> lock(mutex);
          if (s.ok()) {
            part_ranks[static_cast<size_t>(chip.rank())] = s->plan.part_rank;
            listed[static_cast<size_t>(chip.rank())] = s->plan.ranks.size();
          }
          if (chip.rank() != 0) return s.status();
          leader = std::move(s);
          return leader.status();
        });
    for (const Status& st : statuses) ASSERT_TRUE(st.ok()) << st.message();
    ASSERT_TRUE(leader.ok()) << leader.status().message();
    EXPECT_EQ(FirstDifference(*reference_, testing::ById(*leader)), "")
        << "tp " << shape.tp << " pp " << shape.pp;
    // The leader keeps the whole plan; every other chip holds its part.
    EXPECT_EQ(part_ranks[0], -1);
    EXPECT_EQ(listed[0], static_cast<size_t>(p));
    for (int r = 1; r < p; ++r) {
      EXPECT_EQ(part_ranks[static_cast<size_t>(r)], r);
      EXPECT_EQ(listed[static_cast<size_t>(r)], 1u);
    }
    ASSERT_EQ(leader->ranks.size(), static_cast<size_t>(p));
    int log2p = 0;
    while ((1 << log2p) < p) ++log2p;
    for (const RankStats& r : leader->ranks) {
      EXPECT_GT(r.startup_bytes_received, 0u) << "rank " << r.rank;
      EXPECT_GT(r.startup_seconds, 0.0);
      EXPECT_GT(r.peak_rss_bytes, 0u);
      if (r.rank != 0) {
        EXPECT_LE(r.startup_peers, log2p + 1) << "rank " << r.rank;
      }
      max_bytes[i] = std::max(max_bytes[i], r.startup_bytes_received);
    }
    EXPECT_EQ(leader->ranks[0].startup_peers, p - 1);  // it sends every chip its part
    ++i;
  }
  EXPECT_LE(max_bytes[1], 2 * max_bytes[0])
      << "2 chips: " << max_bytes[0] << " bytes, 32 chips: " << max_bytes[1];
}

// Pipeline traffic without duplication (issue 12): each tp rank sends its
// 1/tp slice of the hidden state to its counterpart on the next stage, which
// completes it with an allgather in its tp group. Every stage boundary then
// carries each token's hidden state once (hidden_size x 4 bytes), not tp
// times, and the bits stay the one-rank bits.
TEST_F(DistributedLocalTest, StagesSendEachTokensHiddenStateOnce) {
  ASSERT_NE(reference_, nullptr);
  for (const auto& [tp, pp] : {std::pair{1, 2}, std::pair{2, 2}, std::pair{4, 2}, std::pair{2, 4}}) {
    BatchJobOptions o =
        JobOptions(model_, requests_, dir_->File("slices.jsonl"), {16, 32, 4}, tp, pp);
    Result<BatchJobSummary> s = RunOnChips(tp * pp, o);
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_EQ(FirstDifference(*reference_, testing::ById(*s)), "") << "tp " << tp << " pp " << pp;
    ASSERT_EQ(s->ranks.size(), static_cast<size_t>(tp * pp));
    for (const RankStats& r : s->ranks) {
      if (r.stage == 0) {
        EXPECT_EQ(r.hidden_bytes_received, 0u);
        continue;
      }
      ASSERT_GT(r.hidden_tokens_received, 0);
      // tp ranks of a stage receive a slice each: together one hidden state.
      EXPECT_EQ(r.hidden_bytes_received * static_cast<uint64_t>(tp),
                static_cast<uint64_t>(r.hidden_tokens_received) *
                    static_cast<uint64_t>(config_.hidden_size) * sizeof(float))
          << "tp " << tp << " pp " << pp << " rank " << r.rank;
    }
  }
}

// The automatic plan uses every chip, and the job still gives the bits.
TEST_F(DistributedLocalTest, AutomaticPlan) {
  ASSERT_NE(reference_, nullptr);
  BatchJobOptions o = JobOptions(model_, requests_, dir_->File("auto.jsonl"), {8, 64, 0}, 0, 0);
  Result<BatchJobSummary> s = RunOnChips(4, o);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->plan.num_ranks(), 4);
  EXPECT_EQ(FirstDifference(*reference_, testing::ById(*s)), "");
}

// A plan file whose workload is one sequence of 64 positions: its KV budget
// holds one page per rank. A request needing more pages gets an error record
// naming the budget; the others run, with the one-rank bits.
TEST_F(DistributedLocalTest, RequestOverThePlansKvBudgetIsAnErrorRecord) {
  ASSERT_NE(reference_, nullptr);
  ScratchDir dir;
  partitioner::PlanRequest request;
  request.model = config_;
  request.cluster = *partitioner::ChipPreset("host", 4);
  request.workload.batch_size = 1;
  request.workload.prompt_length = 32;
  request.workload.generated_length = 32;
  request.workload.weight_type = partitioner::ElementType::kBF16;
  request.tp = 2;
  request.pp = 2;
  Result<partitioner::Plan> plan = partitioner::MakePlan(request);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const std::string plan_path = dir.File("plan.json");
  ASSERT_TRUE(partitioner::SavePlanFile(*plan, plan_path).ok());

  const std::string requests = dir.File("requests.jsonl");
  WriteTextFile(requests, R"({"id": "small", "prompt_tokens": [1, 2, 3], "max_tokens": 4})"
                          "\n"
                          R"({"id": "big", "prompt_tokens": [1, 2, 3], "max_tokens": 300})"
                          "\n");
  BatchJobOptions o = JobOptions(model_, requests, dir.File("out.jsonl"), {2, 256, 0}, 0, 0);
  o.plan_path = plan_path;
  Result<BatchJobSummary> s = RunOnChips(4, o);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->kv_pages, 1);
  EXPECT_EQ(s->completed, 1);
  EXPECT_EQ(s->failed, 1);
  std::ifstream in(o.output_path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find(R"("id":"big")"), std::string::npos) << text;
  EXPECT_NE(text.find("KV cache pages"), std::string::npos) << text;
  EXPECT_NE(text.find("the plan's KV budget"), std::string::npos) << text;
}

// Each rank reads its shards and little else: the measured bytes are within
// 2% of the plan's weight bytes for that rank (HDF5 metadata and chunk
// indexes are the difference), for tensor and pipeline splits.
TEST(DistributedLoadTest, EachRankReadsOnlyItsShards) {
  ScratchDir dir;
  partitioner::ModelConfig c;
  c.name = "load";
  c.vocab_size = 8192;
  c.hidden_size = 512;
  c.intermediate_size = 1536;
  c.num_layers = 4;
  c.num_heads = 8;
  c.num_kv_heads = 4;
  c.head_dim = 64;
  c.max_position_embeddings = 128;
  const std::string model = dir.File("load.h5");
  ASSERT_TRUE(SynthesizeModel(c, DType::kBF16, 2, model).ok());
  const std::string requests = dir.File("requests.jsonl");
  WriteTextFile(requests, R"({"id": "x", "prompt_tokens": [1, 2, 3], "max_tokens": 2})"
                          "\n");
  for (auto [tp, pp] : {std::pair{1, 1}, std::pair{2, 1}, std::pair{4, 1}, std::pair{1, 2},
                        std::pair{2, 2}, std::pair{1, 4}}) {
    BatchJobOptions o = JobOptions(model, requests, dir.File("out.jsonl"), {1, 256, 0}, tp, pp);
    Result<BatchJobSummary> s = RunOnChips(tp * pp, o);
    ASSERT_TRUE(s.ok()) << s.status().message();
    ASSERT_EQ(s->ranks.size(), static_cast<size_t>(tp * pp));
    for (const RankStats& r : s->ranks) {
      ASSERT_GT(r.plan_weight_bytes, 0u);
      const double ratio = static_cast<double>(r.bytes_read) / r.plan_weight_bytes;
      EXPECT_GE(ratio, 1.0) << "tp " << tp << " pp " << pp << " rank " << r.rank;
      EXPECT_LE(ratio, 1.02) << "tp " << tp << " pp " << pp << " rank " << r.rank << ": read "
                             << r.bytes_read << " for " << r.plan_weight_bytes;
    }
  }
}

}  // namespace
}  // namespace lockstep::runtime
