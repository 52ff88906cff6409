// Built against an installed lockstep (install_test.sh): touches every
// component library, so a missing library, header or dependency in the
// installed package fails the build, the link or this run.
//
//   lockstep_consumer MODEL.h5   writes a tiny synthetic model there, reads
//                                it back, plans it, all-reduces on 2 chips
#include <cstdio>
#include <string>
#include <vector>

#include "lockstep/base/dtype.h"
#include "lockstep/base/status.h"
#include "lockstep/job/request.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/model/model_file.h"
#include "lockstep/model/synth.h"
#include "lockstep/partitioner/model_config.h"
#include "lockstep/tokenizer/tokenizer.h"
#include "lockstep/transport/communicator.h"
#include "lockstep/transport/local_fabric.h"
#include "lockstep/transport/options.h"

namespace {

int Fail(const lockstep::Status& status) {
  std::fprintf(stderr, "consumer: %s\n", status.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lockstep;
  if (argc != 2) {
    std::fprintf(stderr, "usage: lockstep_consumer MODEL.h5\n");
    return 2;
  }
  const std::string path = argv[1];

  Result<partitioner::ModelConfig> config = partitioner::ModelPreset("tiny");
  if (!config.ok()) return Fail(config.status());
  if (Status s = runtime::SynthesizeModel(*config, DType::kBF16, 7, path); !s.ok()) return Fail(s);
  Result<runtime::ModelFile> file = runtime::ModelFile::Open(path);
  if (!file.ok()) return Fail(file.status());

  // A request line (job) and a tokenizer kind (tokenizer).
  Result<runtime::Request> request = runtime::ParseRequestLine(
      R"({"id": "r", "prompt_tokens": [1, 2], "max_tokens": 3})", "consumer", 1);
  if (!request.ok()) return Fail(request.status());
  Result<runtime::TokenizerKind> kind = runtime::ParseTokenizerKind("sentencepiece");
  if (!kind.ok()) return Fail(kind.status());

  // Two chips of the local fabric: 1 + 2 = 3 on both.
  std::vector<float> sums(2, 0.0f);
  std::vector<Status> statuses =
      transport::RunLocal(2, transport::CommOptions{}, [&](transport::Communicator& comm) {
        std::vector<float> value = {static_cast<float>(comm.rank() + 1)};
        Status s = comm.AllReduceSum(value);
        sums[comm.rank()] = value[0];
        return s;
      });
  for (const Status& s : statuses) {
    if (!s.ok()) return Fail(s);
  }
  if (sums[0] != 3.0f || sums[1] != 3.0f) {
    std::fprintf(stderr, "consumer: allreduce gave %g and %g, expected 3\n", sums[0], sums[1]);
    return 1;
  }
  std::printf("consumer ok: isa %s, %zu tensors, %lld parameters, allreduce 3, request %s\n",
              std::string(kernels::IsaName(kernels::BestIsa())).c_str(), file->tensors().size(),
              static_cast<long long>(file->config().NumParameters()), request->id.c_str());
  return 0;
}
