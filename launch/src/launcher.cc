#include "launcher.h"

#include <cstdlib>
#include <initializer_list>

namespace lockstep::launch {

int LauncherWorldSize() {
  for (const char* name :
       {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS"}) {
    if (const char* value = std::getenv(name); value != nullptr) {
      const int size = std::atoi(value);
      if (size > 0) return size;
    }
  }
  return 1;
}

int LauncherWorldRank() {
  if (LauncherWorldSize() == 1) return 0;
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    if (const char* value = std::getenv(name); value != nullptr) return std::atoi(value);
  }
  return 0;
}

}  // namespace lockstep::launch
