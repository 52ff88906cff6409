// Cluster spec files (`lockstep plan --cluster`).
#include <algorithm>

#include "fuzz_input.h"
#include "lockstep/partitioner/cluster_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lockstep;
  static fuzz::MemoryFile file;
  lockstep::Result<partitioner::ClusterSpec> spec =
      partitioner::LoadClusterSpecFile(file.Set(data, size));
  if (spec.ok()) {
    // What the planner asks of an accepted spec.
    for (int r = 0; r < std::min(spec->num_chips, 64); ++r) (void)spec->NodeOf(r);
  }
  return 0;
}
