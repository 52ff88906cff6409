// What the process launcher (mpirun, srun) tells a rank before MPI starts.
#pragma once

namespace lockstep::launch {

// The job's size as set by mpirun (Open MPI), srun or another PMI launcher
// (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_SIZE); 1 when started directly.
int LauncherWorldSize();

}  // namespace lockstep::launch
