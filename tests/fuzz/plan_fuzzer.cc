// Plan files (`lockstep run --plan`): refused with a Status or accepted,
// never a crash; an accepted plan round-trips.
#include <nlohmann/json.hpp>

#include "fuzz_input.h"
#include "lockstep/partitioner/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lockstep;
  static fuzz::MemoryFile file;
  lockstep::Result<partitioner::Plan> plan = partitioner::LoadPlanFile(file.Set(data, size));
  if (plan.ok()) {
    lockstep::Result<partitioner::Plan> again =
        partitioner::PlanFromJson(partitioner::PlanToJson(*plan), "round trip");
    if (!again.ok()) std::abort();
  }
  return 0;
}
