// `lockstep verify FILE.h5`: reads every byte of a model file's tensors and
// tokenizer and checks them against the file's checksums (docs/model-format.md,
// "Checksums"): the Fletcher32 checksum of every chunk, every tensor's
// SHA-256 and the manifest, and that every value is finite. Exit 0 when the
// file is sound; 1 when it is damaged ("DAMAGED <message>" on stdout for each
// damaged tensor, one error line on stderr with the summary); 2 for a bad
// command line.
#include <fmt/format.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "lockstep/base/log.h"
#include "lockstep/base/progress.h"
#include "lockstep/model/model_file.h"

namespace lockstep::launch {
namespace {

int RunVerify(const std::string& path, bool progress) {
  Result<runtime::ModelFile> file = runtime::ModelFile::Open(path);
  if (!file.ok()) return ReportError(file.status());
  const runtime::ModelIntegrity& integrity = file->integrity();
  if (!integrity.complete()) LOCKSTEP_LOG_WARN("verify", "{}", integrity.Warning(path));

  uint64_t total_bytes = 0;
  for (const runtime::TensorInfo& t : file->tensors()) total_bytes += t.bytes();
  // Progress lines only for files that take a while (as synth does).
  ProgressLine line("verify", progress && total_bytes > (uint64_t{256} << 20),
                    isatty(STDERR_FILENO) == 1, 10.0);
  uint64_t done_bytes = 0;
  std::vector<std::string> damaged;
  for (const runtime::TensorInfo& t : file->tensors()) {
    Result<runtime::TensorCheck> check = file->VerifyTensor(t.path);
    if (!check.ok()) return ReportError(check.status());
    if (!check->status.ok()) {
      // The report of every damaged tensor goes to stdout; stderr gets the
      // one error line of the summary.
      std::fputs(fmt::format("DAMAGED {}\n", check->status.message()).c_str(), stdout);
      damaged.push_back(t.path);
    }
    done_bytes += t.bytes();
    if (line.Due()) {
      line.Write(fmt::format("{:.1f} of {:.1f} GB checked ({} of {} tensors)", done_bytes / 1e9,
                             total_bytes / 1e9, &t - file->tensors().data() + 1,
                             file->tensors().size()),
                 false);
    }
  }
  Status tokenizer = file->VerifyTokenizer();
  if (!tokenizer.ok()) {
    std::fputs(fmt::format("DAMAGED {}\n", tokenizer.message()).c_str(), stdout);
    damaged.push_back("/tokenizer/data");
  }
  if (line.enabled() && line.terminal()) line.Write("", true);
  if (!damaged.empty()) {
    return ReportError(DataLoss("{}: {} of {} tensors{} damaged: {}{} (each listed on stdout)",
                                path, damaged.size(), file->tensors().size(),
                                file->has_tokenizer() ? " (and the tokenizer)" : "",
                                damaged.front(), damaged.size() > 1 ? ", ..." : ""));
  }
  const std::string what = fmt::format("{} tensors ({} bytes){}", file->tensors().size(),
                                       total_bytes, file->has_tokenizer() ? " and the tokenizer" : "");
  if (integrity.complete()) {
    std::fputs(fmt::format("{}: OK: {} match their checksums; every value is finite "
                           "(manifest_sha256 {})\n",
                           path, what, integrity.manifest_sha256)
                   .c_str(),
               stdout);
  } else {
    std::fputs(fmt::format("{}: readable, every value finite, but {} of {} tensors have checksums "
                           "to verify against\n",
                           path, integrity.tensors_with_checksums, integrity.tensors)
                   .c_str(),
               stdout);
  }
  return kExitOk;
}

}  // namespace

Command AddVerifyCommand(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto no_progress = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand(
      "verify",
      "Check a model file completely: every chunk checksum, every tensor's digest, finite values");
  sub->add_option("model", *path, "The model file (HDF5)")->required();
  sub->add_flag("--no-progress", *no_progress, "No progress lines on stderr");
  return Command{sub, [path, no_progress] { return RunVerify(*path, !*no_progress); }};
}

}  // namespace lockstep::launch
