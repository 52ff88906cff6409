// The distributed runtime under mpirun, on the backend given by
// --transport=mpi|ucx (UCX_TLS picks shared memory or TCP): the plan
// --tp=T --pp=P (tp x pp = the world size) gives the one-rank bits for batch
// 1 and batch 16, greedy and sampled, with different --max-batch, prefill
// chunks and micro-batch counts, for each model of --models (the tiny model
// and one of each family: biases, sliding windows, rope scaling). Rank 0
// computes the one-rank reference in process (a one-chip local world) and
// compares; every rank runs the jobs. --overlap=1 runs the variants with
// the overlapped tp schedule (BatchJobOptions::tp_overlap) instead. --dtype=bf16 (default), q8_0 or q4_0
// picks the weights (quantized: the tiny model with block-aligned splits).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "lockstep/job/batch_job.h"
#include "lockstep/model/synth.h"
#include "lockstep/transport/communicator.h"
#include "mpi_gtest_main.h"
#include "runtime/distributed_test_util.h"
#include "runtime/model_file_test_util.h"

namespace lockstep::runtime {
namespace {

using lockstep::testing::TestFlag;
using lockstep::testing::TestSession;
using testing::DeterminismRequests;
using testing::FirstDifference;
using testing::JobOptions;
using testing::JobVariant;
using testing::ScratchDir;

// The models of --models (comma-separated presets; default: the tiny model
// and one small model of each family, or the tiny model alone for quantized
// weights), one after the other in one launch.
std::vector<std::string> Models(DType dtype) {
  std::vector<std::string> models;
  const std::string list =
      TestFlag("models", DTypeIsQuantized(dtype) ? "tiny"
                                                 : "tiny,tiny-llama3,tiny-qwen2,tiny-mistral,tiny-phi3");
  size_t begin = 0;
  while (begin <= list.size()) {
    const size_t end = std::min(list.find(',', begin), list.size());
    if (end > begin) models.push_back(list.substr(begin, end - begin));
    begin = end + 1;
  }
  return models;
}

TEST(DistributedMpiTest, SameBitsAsOneRank) {
  const int tp = std::atoi(TestFlag("tp", "1").c_str());
  const int pp = std::atoi(TestFlag("pp", "1").c_str());
  Result<transport::CommOptions> comm =
      transport::CommOptionsFromFlags(TestFlag("transport", "mpi"), "120");
  ASSERT_TRUE(comm.ok()) << comm.status().message();
  ASSERT_EQ(TestSession().world_size(), tp * pp) << "run with -np tp*pp";
  Result<transport::Communicator> world =
      transport::Communicator::CreateWorld(TestSession(), *comm);
  ASSERT_TRUE(world.ok()) << world.status().message();
  const bool leader = world->rank() == 0;
  Result<DType> dtype = ParseDType(TestFlag("dtype", "bf16"));
  ASSERT_TRUE(dtype.ok()) << dtype.status().message();
  // --compute=bf16: the bf16 compute mode (kernels/bf16_matmul.h), one-rank
  // reference and splits alike.
  Result<kernels::Compute> compute = kernels::ParseCompute(TestFlag("compute", "float"));
  ASSERT_TRUE(compute.ok()) << compute.status().message();
  auto options = [&](const std::string& model, const std::string& requests,
                     const std::string& output, const JobVariant& v, int t, int p) {
    BatchJobOptions o = JobOptions(model, requests, output, v, t, p);
    o.compute = *compute;
    return o;
  };

  for (const std::string& preset : Models(*dtype)) {
    // Every rank writes its own copy of the model (synthesis is
    // deterministic: the same bytes everywhere).
    ScratchDir dir;
    Result<partitioner::ModelConfig> config = preset == "tiny"
                                                  ? Result<partitioner::ModelConfig>(testing::DistributedTestConfig(*dtype))
                                                  : partitioner::ModelPreset(preset);
    ASSERT_TRUE(config.ok()) << config.status().message();
    const std::string model = dir.File(preset + ".h5");
    ASSERT_TRUE(SynthesizeModel(*config, *dtype, 23, model).ok());
    const std::string requests = dir.File("requests.jsonl");
    testing::WriteTextFile(requests, DeterminismRequests(config->vocab_size));

    testing::ResultsById reference;
    if (leader) {
      Result<BatchJobSummary> s =
          RunBatchJob(options(model, requests, dir.File("reference.jsonl"), {1, 256, 0}, 1, 1));
      ASSERT_TRUE(s.ok()) << s.status().message();
      ASSERT_EQ(s->completed, 16);
      reference = testing::ById(*s);
    }

    std::vector<JobVariant> variants = {{16, 256, 0}, {3, 16, 0}};
    if (pp > 1) variants.push_back({16, 32, 4});
    // --overlap=1: the overlapped tp schedule (--tp-overlap) instead, at
    // batch 1 (nothing to overlap), odd batches and 16, with prefill chunks
    // and (pp > 1) pipeline micro-batches (DistributedLocalTest also runs
    // batch 2 and 5, and tp 4).
    if (TestFlag("overlap", "0") == "1") {
      variants = {{1, 256, 0, true}, {3, 16, 0, true}, {7, 32, 0, true}, {16, 256, 0, true}};
      if (pp > 1) variants.push_back({16, 32, 4, true});
    }
    for (const JobVariant& v : variants) {
      bool on_all = false;
      Result<BatchJobSummary> s = RunBatchJob(
          options(model, requests, dir.File("out.jsonl"), v, tp, pp), *world, &on_all);
      ASSERT_TRUE(s.ok()) << s.status().message();
      EXPECT_EQ(s->plan.tp, tp);
      EXPECT_EQ(s->plan.pp, pp);
      if (leader) {
        EXPECT_EQ(FirstDifference(reference, testing::ById(*s)), "")
            << preset << " tp " << tp << " pp " << pp << " over " << TestFlag("transport", "mpi")
            << ", " << DTypeName(*dtype) << " " << kernels::ComputeName(*compute) << " compute, "
            << v.Name();
      }
    }
  }
  // Connections on demand (docs/transport.md, "Connections"): a ucx rank
  // holds endpoints to exactly the peers it messaged, not to all p - 1.
  if (world->backend() == transport::BackendKind::kUcx) {
    const transport::Traffic traffic = world->traffic();
    EXPECT_EQ(traffic.connections, traffic.peers) << "rank " << world->rank();
  }
}

}  // namespace
}  // namespace lockstep::runtime
