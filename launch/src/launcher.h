// What the process launcher (mpirun, srun) tells a rank before MPI starts.
#pragma once

namespace lockstep::launch {

// The job's size as set by mpirun (Open MPI), srun or another PMI launcher
// (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_SIZE; Slurm's srun --mpi=pmix sets
// only SLURM_STEP_NUM_TASKS, which a batch script itself does not have: its
// SLURM_NTASKS is the allocation's, not a step's); 1 when started directly.
int LauncherWorldSize();
// This process's rank in that job (OMPI_COMM_WORLD_RANK, PMI_RANK,
// PMIX_RANK, SLURM_PROCID); 0 when started directly. For deciding who
// prints what is found before MPI starts (a bad command line, --help).
int LauncherWorldRank();

}  // namespace lockstep::launch
