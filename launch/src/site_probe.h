// What this machine offers lockstep, probed at run time for `lockstep doctor`.
//
// Each probe returns one SiteItem: a name, whether it is present, a one-line
// summary a site admin can act on, and machine-readable details. A probe
// never fails: anything it cannot find is reported as absent, with what to
// install or load. Probes that run commands (mpiexec --version, srun
// --mpi=list) bound them with `timeout 10`.
//
// Items, in report order:
//   mpi    the MPI library lockstep is linked with (MPI_Get_library_version,
//          callable before MPI_Init) and a launcher on PATH (mpiexec, mpirun
//          or srun); `mpiexec --version` must name the same MPI family as
//          the library (a different MPI's launcher starts N singletons).
//   hdf5   HDF5 version and whether it is the parallel (MPI-IO) build.
//   ucx    UCX version and its transports/devices (the uct resources, as
//          `ucx_info -d` lists them); absent when built without UCX.
//   cpu    the kernels' instruction sets this CPU runs (kernels/isa.h) and
//          the one lockstep picks (LOCKSTEP_ISA caps it).
//   cores  online cores, cores in this process's affinity mask, memory.
//   slurm  srun on PATH, its version and MPI plugins (pmix is the one that
//          works with Open MPI); optional.
//
// Thread safety: call from one thread (the probes run child processes).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lockstep/base/status.h"

namespace lockstep::launch {

struct SiteItem {
  std::string name;        // "mpi", "hdf5", "ucx", "cpu", "cores", "slurm"
  bool present = false;    // the item works on this machine
  std::string summary;     // one line: versions and what was found, or what to do
  nlohmann::json details;  // machine-readable facts (the doctor's --json output)
};

SiteItem ProbeMpi();
SiteItem ProbeHdf5();
SiteItem ProbeUcx();
SiteItem ProbeCpu();
SiteItem ProbeCores();
SiteItem ProbeSlurm();

// All of the above, in report order.
std::vector<SiteItem> ProbeSite();

// Environment variables that change how lockstep, its MPI and UCX behave
// (LOCKSTEP_*, UCX_*, OMPI_MCA_*, PMIX_MCA_*, HDF5_*, SLURM_JOB_ID,
// SLURM_NTASKS, SLURM_CONF), as NAME=value, sorted.
std::vector<std::string> RelevantEnvironment();

// A requirement `lockstep doctor --require` checks, parsed from its name:
//   mpi, hdf5 (parallel), ucx, ucx:TL (a UCX transport, e.g. ucx:tcp),
//   avx2, avx512, slurm, pmix (srun --mpi=pmix available), cores:N (at least
//   N cores in the affinity mask).
// InvalidArgument for any other name, listing the accepted ones.
struct Requirement {
  std::string text;      // as given, e.g. "cores:8"
  std::string kind;      // "mpi", "hdf5", "ucx", "avx2", "avx512", "slurm", "pmix", "cores"
  std::string argument;  // the TL of ucx:TL, the N of cores:N; else empty
};
Result<Requirement> ParseRequirement(std::string_view text);

// Empty when `items` satisfy the requirement, else one line saying what is
// missing and what to do.
std::string CheckRequirement(const Requirement& requirement, const std::vector<SiteItem>& items);

}  // namespace lockstep::launch
