// `lockstep doctor`: what this machine offers lockstep, and what is missing.
//
//   lockstep doctor [--require ITEM,...] [--json]
//
// Prints one line per item (site_probe.h: mpi, hdf5, ucx, cpu, cores, slurm)
// and the environment variables that steer lockstep, MPI and UCX. Exits 0
// when every requirement holds, 1 (with one "lockstep: error:" line naming
// each missing item and what to do) when one does not. Always required: mpi
// (the library and a launcher of the same MPI on PATH) and hdf5 (parallel).
// --require adds more, e.g. `--require ucx:tcp,pmix,cores:16` on a site that
// launches with srun over TCP on 16-core nodes (docs/site-guide.md).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "site_probe.h"

namespace lockstep::launch {

Command AddDoctorCommand(CLI::App& app) {
  struct Flags {
    std::vector<std::string> require;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* doctor = app.add_subcommand(
      "doctor",
      "Report what this machine offers (MPI, UCX, parallel HDF5, CPU, cores, Slurm) "
      "and what is missing");
  doctor
      ->add_option("--require", flags->require,
                   "Also require these (comma-separated): ucx, ucx:TL, avx2, avx512, slurm, "
                   "pmix, cores:N")
      ->delimiter(',');
  doctor->add_flag("--json", flags->json, "One JSON object on stdout instead of the table");

  Command command;
  command.app = doctor;
  command.run = [flags]() -> int {
    std::vector<Requirement> requirements;
    for (const char* always : {"mpi", "hdf5"}) requirements.push_back(*ParseRequirement(always));
    for (const std::string& text : flags->require) {
      Result<Requirement> requirement = ParseRequirement(text);
      if (!requirement.ok()) {
        ReportError(requirement.status());
        return kExitUsage;
      }
      requirements.push_back(*requirement);
    }

    const std::vector<SiteItem> items = ProbeSite();
    const std::vector<std::string> environment = RelevantEnvironment();
    std::vector<std::string> missing;
    for (const Requirement& requirement : requirements) {
      std::string problem = CheckRequirement(requirement, items);
      if (!problem.empty()) missing.push_back(std::move(problem));
    }

    if (flags->json) {
      nlohmann::json report = {{"version", VersionString()}};
      for (const SiteItem& item : items) {
        report["items"][item.name] = {
            {"present", item.present}, {"summary", item.summary}, {"details", item.details}};
      }
      for (const Requirement& requirement : requirements)
        report["required"].push_back(requirement.text);
      report["missing"] = missing;
      report["environment"] = environment;
      std::fputs((report.dump(2) + "\n").c_str(), stdout);
    } else {
      std::string text = fmt::format("{}\n", VersionString());
      for (const SiteItem& item : items) {
        text += fmt::format("  {:<7} {:<6} {}\n", item.present ? "ok" : "absent", item.name,
                            item.summary);
      }
      text +=
          fmt::format("  {:<7} {:<6} {}\n", "", "env",
                      environment.empty() ? std::string("(no LOCKSTEP_*, UCX_*, OMPI_MCA_* set)")
                                          : fmt::format("{}", fmt::join(environment, " ")));
      std::vector<std::string> names;
      for (const Requirement& requirement : requirements) names.push_back(requirement.text);
      text += missing.empty()
                  ? fmt::format("doctor: all required present ({})\n", fmt::join(names, ", "))
                  : fmt::format("doctor: {} of {} required missing\n", missing.size(),
                                requirements.size());
      std::fputs(text.c_str(), stdout);
    }
    std::fflush(stdout);
    for (const std::string& problem : missing)
      ReportError(FailedPrecondition("doctor: missing {}", problem));
    return missing.empty() ? kExitOk : kExitError;
  };
  return command;
}

}  // namespace lockstep::launch
