// The distributed runtime under mpirun, on the backend given by
// --transport=mpi|ucx (UCX_TLS picks shared memory or TCP): the plan
// --tp=T --pp=P (tp x pp = the world size) gives the one-rank bits for batch
// 1 and batch 16, greedy and sampled, with different --max-batch, prefill
// chunks and micro-batch counts. Rank 0 computes the one-rank reference in
// process (a one-chip local world) and compares; every rank runs the jobs.
// --dtype=bf16 (default), q8_0 or q4_0 picks the model's weights.
#include <gtest/gtest.h>

#include <cstdlib>

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

  // Every rank writes its own copy of the model (synthesis is deterministic:
  // the same bytes everywhere).
  ScratchDir dir;
  Result<DType> dtype = ParseDType(TestFlag("dtype", "bf16"));
  ASSERT_TRUE(dtype.ok()) << dtype.status().message();
  const partitioner::ModelConfig config = testing::DistributedTestConfig(*dtype);
  const std::string model = dir.File("tiny.h5");
  ASSERT_TRUE(SynthesizeModel(config, *dtype, 23, model).ok());
  const std::string requests = dir.File("requests.jsonl");
  testing::WriteTextFile(requests, DeterminismRequests(config.vocab_size));

  testing::ResultsById reference;
  if (leader) {
    Result<BatchJobSummary> s =
        RunBatchJob(JobOptions(model, requests, dir.File("reference.jsonl"), {1, 256, 0}, 1, 1));
    ASSERT_TRUE(s.ok()) << s.status().message();
    ASSERT_EQ(s->completed, 16);
    reference = testing::ById(*s);
  }

  std::vector<JobVariant> variants = {{16, 256, 0}, {3, 16, 0}};
  if (pp > 1) variants.push_back({16, 32, 4});
  for (const JobVariant& v : variants) {
    bool on_all = false;
    Result<BatchJobSummary> s =
        RunBatchJob(JobOptions(model, requests, dir.File("out.jsonl"), v, tp, pp), *world, &on_all);
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_EQ(s->plan.tp, tp);
    EXPECT_EQ(s->plan.pp, pp);
    if (leader) {
      EXPECT_EQ(FirstDifference(reference, testing::ById(*s)), "")
          << "tp " << tp << " pp " << pp << " over " << TestFlag("transport", "mpi") << ", "
          << DTypeName(*dtype) << ", " << v.Name();
    }
  }
}

}  // namespace
}  // namespace lockstep::runtime
