#include "site_probe.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <hdf5.h>
#include <mpi.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string_view>

#include "lockstep/kernels/isa.h"

#ifdef LOCKSTEP_HAVE_UCX
#include <ucp/api/ucp.h>
#include <uct/api/uct.h>
#endif

extern char** environ;

namespace lockstep::launch {
namespace {

// ---------------------------------------------------------------------------
// Child processes and PATH.
// ---------------------------------------------------------------------------

struct CommandOutput {
  bool ran = false;  // exited with status 0
  std::string text;  // stdout and stderr
};

struct PipeCloser {
  void operator()(FILE* pipe) const { pclose(pipe); }
};

// Runs `command` (a /bin/sh command line) with a 10 s limit and returns what
// it printed. Probes only run fixed command lines built from paths found on
// PATH, never user input.
CommandOutput RunCaptured(const std::string& command) {
  CommandOutput out;
  const std::string line = fmt::format("timeout 10 {} 2>&1 </dev/null", command);
  FILE* raw = popen(line.c_str(), "r");
  if (raw == nullptr) return out;
  std::unique_ptr<FILE, PipeCloser> pipe(raw);
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe.get())) > 0) out.text.append(buffer, n);
  const int status = pclose(pipe.release());
  out.ran = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return out;
}

// The first executable called `name` on PATH, or "".
std::string FindOnPath(std::string_view name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  std::string_view rest = path;
  while (true) {
    const size_t colon = rest.find(':');
    std::string_view dir = rest.substr(0, colon);
    if (!dir.empty()) {
      const std::string candidate = fmt::format("{}/{}", dir, name);
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    if (colon == std::string_view::npos) return "";
    rest.remove_prefix(colon + 1);
  }
}

std::string FirstLine(std::string_view text) {
  while (!text.empty() && (text.front() == '\n' || text.front() == ' ')) text.remove_prefix(1);
  return std::string(text.substr(0, text.find('\n')));
}

bool Contains(std::string_view text, std::string_view what) {
  return text.find(what) != std::string_view::npos;
}

// MPI implementations by the words their library string and their
// launcher's --version use.
struct MpiFamily {
  std::string_view name;
  std::string_view library_word;
  std::vector<std::string_view> launcher_words;
};
const std::vector<MpiFamily>& MpiFamilies() {
  static const std::vector<MpiFamily> families = {
      {"Open MPI", "Open MPI", {"OpenRTE", "Open MPI", "PRRTE"}},
      {"MVAPICH", "MVAPICH", {"HYDRA", "MVAPICH"}},
      {"Intel MPI", "Intel(R) MPI", {"Intel(R) MPI"}},
      {"MPICH", "MPICH", {"HYDRA", "MPICH"}},
  };
  return families;
}
const MpiFamily* FamilyOfLibrary(std::string_view library) {
  for (const MpiFamily& family : MpiFamilies()) {
    if (Contains(library, family.library_word)) return &family;
  }
  return nullptr;
}

std::string ReadCpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return std::string(line.substr(colon + 2));
    }
  }
  return "unknown CPU";
}

}  // namespace

// ---------------------------------------------------------------------------

SiteItem ProbeMpi() {
  SiteItem item;
  item.name = "mpi";
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(version, &length);
  int major = 0, minor = 0;
  MPI_Get_version(&major, &minor);
  // Open MPI: "Open MPI v4.1.4, package: Debian OpenMPI, ident: ...": keep the
  // part before the first comma of the first line.
  std::string library = FirstLine(std::string_view(version, static_cast<size_t>(length)));
  library = library.substr(0, library.find(','));
  item.details["library"] = library;
  item.details["standard"] = fmt::format("{}.{}", major, minor);

  const MpiFamily* family = FamilyOfLibrary(library);
  nlohmann::json launchers = nlohmann::json::object();
  std::string launcher_note;
  bool launcher_ok = false;
  for (std::string_view name : {"mpiexec", "mpirun"}) {
    const std::string path = FindOnPath(name);
    if (path.empty()) continue;
    const CommandOutput out = RunCaptured(path + " --version");
    const std::string first = FirstLine(out.text);
    bool same_family = true;
    if (family != nullptr) {
      same_family = std::any_of(family->launcher_words.begin(), family->launcher_words.end(),
                                [&](std::string_view word) { return Contains(out.text, word); });
    }
    launchers[std::string(name)] = {
        {"path", path}, {"version", first}, {"matches_library", same_family}};
    if (same_family) {
      launcher_ok = true;
      if (launcher_note.empty()) launcher_note = fmt::format("launcher {} ({})", path, first);
    } else if (launcher_note.empty()) {
      launcher_note = fmt::format(
          "launcher {} is not {} ('{}'): put the mpiexec of the MPI lockstep was built with first "
          "on PATH",
          path, family->name, first);
    }
  }
  const std::string srun = FindOnPath("srun");
  if (!srun.empty()) launchers["srun"] = {{"path", srun}};
  item.details["launchers"] = launchers;

  if (launcher_ok) {
    item.present = true;
  } else if (!srun.empty()) {
    item.present = true;
    if (launcher_note.empty())
      launcher_note = fmt::format("launcher {} (no mpiexec on PATH)", srun);
    else
      launcher_note += fmt::format("; srun {} can launch", srun);
  } else if (launcher_note.empty()) {
    launcher_note =
        "no mpiexec, mpirun or srun on PATH: install Open MPI (Debian: openmpi-bin) or load the "
        "site's MPI module";
  }
  item.summary = fmt::format("{} (MPI {}.{}); {}", library, major, minor, launcher_note);
  return item;
}

SiteItem ProbeHdf5() {
  SiteItem item;
  item.name = "hdf5";
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
#ifdef H5_HAVE_PARALLEL
  constexpr bool kParallel = true;
#else
  constexpr bool kParallel = false;
#endif
  item.present = kParallel;
  item.details = {{"version", fmt::format("{}.{}.{}", major, minor, release)},
                  {"parallel", kParallel}};
  item.summary = fmt::format("HDF5 {}.{}.{}, {}", major, minor, release,
                             kParallel ? "parallel (MPI-IO)"
                                       : "serial: rebuild lockstep against parallel HDF5 "
                                         "(Debian: libhdf5-openmpi-dev; Spack: hdf5+mpi)");
  return item;
}

SiteItem ProbeUcx() {
  SiteItem item;
  item.name = "ucx";
#ifdef LOCKSTEP_HAVE_UCX
  const std::string version = ucp_get_version_string();
  item.details["version"] = version;
  item.details["built_with_ucx"] = true;
  nlohmann::json transports = nlohmann::json::array();
  std::vector<std::string> names;

  // The uct resources, as `ucx_info -d` lists them: for every component, its
  // memory domains; for every memory domain, its transports and devices.
  uct_component_h* components = nullptr;
  unsigned num_components = 0;
  if (uct_query_components(&components, &num_components) == UCS_OK) {
    for (unsigned c = 0; c < num_components; ++c) {
      uct_component_attr_t attr{};
      attr.field_mask = UCT_COMPONENT_ATTR_FIELD_NAME | UCT_COMPONENT_ATTR_FIELD_MD_RESOURCE_COUNT;
      if (uct_component_query(components[c], &attr) != UCS_OK) continue;
      std::vector<uct_md_resource_desc_t> mds(attr.md_resource_count);
      attr.field_mask = UCT_COMPONENT_ATTR_FIELD_MD_RESOURCES;
      attr.md_resources = mds.data();
      if (uct_component_query(components[c], &attr) != UCS_OK) continue;
      for (const uct_md_resource_desc_t& md_desc : mds) {
        uct_md_config_t* md_config = nullptr;
        if (uct_md_config_read(components[c], nullptr, nullptr, &md_config) != UCS_OK) continue;
        uct_md_h md = nullptr;
        const ucs_status_t opened = uct_md_open(components[c], md_desc.md_name, md_config, &md);
        uct_config_release(md_config);
        if (opened != UCS_OK) continue;
        uct_tl_resource_desc_t* resources = nullptr;
        unsigned num_resources = 0;
        if (uct_md_query_tl_resources(md, &resources, &num_resources) == UCS_OK) {
          for (unsigned r = 0; r < num_resources; ++r) {
            transports.push_back(
                {{"transport", resources[r].tl_name}, {"device", resources[r].dev_name}});
            names.push_back(fmt::format("{}/{}", resources[r].tl_name, resources[r].dev_name));
          }
          uct_release_tl_resource_list(resources);
        }
        uct_md_close(md);
      }
    }
    uct_release_component_list(components);
  }
  item.details["transports"] = transports;
  item.present = !names.empty();
  item.summary = names.empty() ? fmt::format(
                                     "UCX {}: no transport found (check UCX_TLS, UCX_NET_DEVICES; "
                                     "`ucx_info -d` lists what UCX sees)",
                                     version)
                               : fmt::format("UCX {}: {}", version, fmt::join(names, " "));
#else
  item.details["built_with_ucx"] = false;
  item.summary = "built without UCX (LOCKSTEP_WITH_UCX=OFF): the mpi and local transports only";
#endif
  return item;
}

SiteItem ProbeCpu() {
  SiteItem item;
  item.name = "cpu";
  item.present = true;
  using kernels::Isa;
  std::vector<std::string> supported;
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kScalar}) {
    if (kernels::IsaSupported(isa)) supported.emplace_back(kernels::IsaName(isa));
  }
  const Isa best = kernels::BestIsa();
  const std::string model = ReadCpuModel();
  const char* cap = std::getenv("LOCKSTEP_ISA");
  item.details = {{"model", model}, {"supported", supported}, {"selected", kernels::IsaName(best)}};
  item.summary = fmt::format("{} kernels (this CPU runs: {}{}); {}", kernels::IsaName(best),
                             fmt::join(supported, " "),
                             cap != nullptr ? fmt::format("; LOCKSTEP_ISA={}", cap) : "", model);
  if (best == Isa::kScalar) {
    item.summary += "; no AVX2+FMA: scalar kernels give the same bits but run several times slower";
  }
  return item;
}

SiteItem ProbeCores() {
  SiteItem item;
  item.name = "cores";
  item.present = true;
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t set;
  CPU_ZERO(&set);
  const int usable =
      sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : static_cast<int>(online);
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  const double memory_gib = pages > 0 && page > 0 ? double(pages) * double(page) / (1 << 30) : 0.0;
  item.details = {{"online", online}, {"affinity", usable}, {"memory_gib", memory_gib}};
  item.summary = fmt::format("{} online, {} in this process's affinity mask; {:.1f} GiB memory",
                             online, usable, memory_gib);
  return item;
}

SiteItem ProbeSlurm() {
  SiteItem item;
  item.name = "slurm";
  const std::string srun = FindOnPath("srun");
  if (srun.empty()) {
    item.details = {{"srun", nullptr}};
    item.summary = "srun not on PATH (optional: needed for Slurm launches)";
    return item;
  }
  // `srun --version` prints "slurm 22.05.8" (fails when no
  // slurm.conf is found).
  std::string version = "unknown version";
  {
    std::istringstream lines(RunCaptured(srun + " --version").text);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("slurm", 0) == 0) version = line;  // "slurm 23.02.1", "slurm-wlm 22.05.8"
    }
  }
  // "MPI plugin types are...\n\tnone\n\tpmi2\n\tpmix\nspecific pmix plugin
  // versions available: pmix_v4": the tab-indented lines are the plugins. It
  // fails without a Slurm configuration.
  const CommandOutput list = RunCaptured(srun + " --mpi=list");
  std::vector<std::string> plugins;
  std::istringstream lines(list.text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() > 1 && line[0] == '\t') plugins.push_back(line.substr(1));
  }
  const char* job = std::getenv("SLURM_JOB_ID");
  item.details = {{"srun", srun},
                  {"version", version},
                  {"mpi_plugins", plugins},
                  {"job_id", job != nullptr ? job : ""}};
  item.present = list.ran && !plugins.empty();
  if (!item.present) {
    item.summary = fmt::format(
        "{} ({}) finds no Slurm configuration (srun --mpi=list fails): set SLURM_CONF or "
        "install slurm.conf (optional: needed for Slurm launches)",
        srun, version);
    return item;
  }
  item.summary = fmt::format("{} ({}); MPI plugins: {}{}", srun, version, fmt::join(plugins, " "),
                             job != nullptr ? fmt::format("; inside job {}", job) : "");
  return item;
}

std::vector<SiteItem> ProbeSite() {
  return {ProbeMpi(), ProbeHdf5(), ProbeUcx(), ProbeCpu(), ProbeCores(), ProbeSlurm()};
}

std::vector<std::string> RelevantEnvironment() {
  static constexpr std::string_view kPrefixes[] = {"LOCKSTEP_", "UCX_", "OMPI_MCA_", "PMIX_MCA_",
                                                   "HDF5_"};
  static constexpr std::string_view kNames[] = {"SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_CONF"};
  std::vector<std::string> found;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text = *entry;
    const std::string_view name = text.substr(0, text.find('='));
    const bool wanted =
        std::any_of(std::begin(kPrefixes), std::end(kPrefixes),
                    [&](std::string_view prefix) { return name.rfind(prefix, 0) == 0; }) ||
        std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
    if (wanted) found.emplace_back(text);
  }
  std::sort(found.begin(), found.end());
  return found;
}

// ---------------------------------------------------------------------------
// Requirements.
// ---------------------------------------------------------------------------

Result<Requirement> ParseRequirement(std::string_view text) {
  Requirement requirement;
  requirement.text = std::string(text);
  const size_t colon = text.find(':');
  requirement.kind = std::string(text.substr(0, colon));
  if (colon != std::string_view::npos) requirement.argument = std::string(text.substr(colon + 1));
  const std::string& kind = requirement.kind;
  const bool takes_argument = kind == "ucx" || kind == "cores";
  const bool known = kind == "mpi" || kind == "hdf5" || kind == "ucx" || kind == "avx2" ||
                     kind == "avx512" || kind == "slurm" || kind == "pmix" || kind == "cores";
  if (!known ||
      (colon != std::string_view::npos && (!takes_argument || requirement.argument.empty())) ||
      (kind == "cores" && requirement.argument.empty())) {
    return InvalidArgument(
        "--require: unknown requirement '{}' (accepted: mpi, hdf5, ucx, ucx:TL, avx2, avx512, "
        "slurm, pmix, cores:N)",
        text);
  }
  if (kind == "cores") {
    char* end = nullptr;
    const long n = std::strtol(requirement.argument.c_str(), &end, 10);
    if (*end != '\0' || n < 1) {
      return InvalidArgument("--require: '{}': N of cores:N must be a positive integer", text);
    }
  }
  return requirement;
}

std::string CheckRequirement(const Requirement& requirement, const std::vector<SiteItem>& items) {
  auto find = [&](std::string_view name) -> const SiteItem& {
    for (const SiteItem& item : items) {
      if (item.name == name) return item;
    }
    static const SiteItem kAbsent;
    return kAbsent;
  };
  const std::string& kind = requirement.kind;
  if (kind == "mpi" || kind == "hdf5" || kind == "slurm") {
    const SiteItem& item = find(kind);
    return item.present ? "" : fmt::format("{}: {}", kind, item.summary);
  }
  if (kind == "ucx") {
    const SiteItem& item = find("ucx");
    if (!item.present) return fmt::format("ucx: {}", item.summary);
    if (requirement.argument.empty()) return "";
    for (const nlohmann::json& tl : item.details.value("transports", nlohmann::json::array())) {
      if (tl.value("transport", "") == requirement.argument) return "";
    }
    return fmt::format("{}: UCX has no '{}' transport here ({}); `ucx_info -d` lists what it sees",
                       requirement.text, requirement.argument, item.summary);
  }
  if (kind == "avx2" || kind == "avx512") {
    const kernels::Isa isa = kind == "avx2" ? kernels::Isa::kAvx2 : kernels::Isa::kAvx512;
    return kernels::IsaSupported(isa)
               ? ""
               : fmt::format("{}: this CPU ({}) does not run the {} kernels", kind,
                             find("cpu").details.value("model", "?"), kind);
  }
  if (kind == "pmix") {
    const SiteItem& slurm = find("slurm");
    if (!slurm.present) return fmt::format("pmix: {}", slurm.summary);
    for (const nlohmann::json& plugin :
         slurm.details.value("mpi_plugins", nlohmann::json::array())) {
      if (plugin.get<std::string>().rfind("pmix", 0) == 0) return "";
    }
    return fmt::format(
        "pmix: srun has no pmix MPI plugin ({}): install Slurm's PMIx plugin "
        "(Debian: slurm-wlm with libpmix2)",
        slurm.summary);
  }
  if (kind == "cores") {
    const long want = std::strtol(requirement.argument.c_str(), nullptr, 10);
    const long have = find("cores").details.value("affinity", 0L);
    return have >= want ? ""
                        : fmt::format("{}: only {} cores in this process's affinity mask",
                                      requirement.text, have);
  }
  return fmt::format("{}: unknown requirement", requirement.text);
}

}  // namespace lockstep::launch
