#include "resume.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace lockstep::runtime {
namespace {

// A complete results line: a JSON object with an "id" (string or null) and
// either "tokens" (a result) or "error" (an error record).
// `compute` receives a result line's matmul arithmetic, `model` its
// model_sha256 (empty when absent).
bool ParseLine(std::string_view text, ResumeState* state, std::string* compute,
               std::string* model) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return false;
  auto id = j.find("id");
  if (id == j.end() || !(id->is_string() || id->is_null())) return false;
  const bool result = j.contains("tokens");
  const bool error = j.contains("error");
  if (!result && !error) return false;
  if (result) {
    if (!id->is_string()) return false;
    auto mode = j.find("compute");
    if (mode != j.end() && !mode->is_string()) return false;
    *compute = mode == j.end() ? "float" : mode->get<std::string>();
    auto digest = j.find("model_sha256");
    if (digest != j.end() && !digest->is_string()) return false;
    *model = digest == j.end() ? "" : digest->get<std::string>();
    state->done_ids.insert(id->get<std::string>());
    return true;
  }
  // Error records count by input line, whatever their id: a bad line may
  // carry the id of a good one (a duplicate), which must still run.
  auto line = j.find("line");
  if (line == j.end() || !line->is_number_integer()) return false;
  state->done_lines.insert(line->get<int64_t>());
  return true;
}

// "the model with manifest_sha256 0123456789abcdef..." or "a model file
// without a manifest_sha256".
std::string DescribeModel(std::string_view digest) {
  if (digest.empty()) return "a model file without a manifest_sha256";
  return fmt::format("the model with manifest_sha256 {}...", digest.substr(0, 16));
}

}  // namespace

Result<ResumeState> PrepareResume(const std::string& path, std::string_view compute,
                                  std::string_view model_sha256) {
  ResumeState state;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return state;  // nothing done yet
    return IoError("{}: cannot read the results file to resume: {}", path, std::strerror(errno));
  }
  state.existed = true;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();

  size_t begin = 0;
  size_t kept = 0;  // bytes of complete lines
  int64_t line_number = 0;
  while (begin < text.size()) {
    const size_t end = text.find('\n', begin);
    ++line_number;
    const bool last = end == std::string::npos || end + 1 == text.size();
    const std::string_view line(text.data() + begin,
                                (end == std::string::npos ? text.size() : end) - begin);
    std::string line_compute = std::string(compute), line_model = std::string(model_sha256);
    const bool complete =
        end != std::string::npos && ParseLine(line, &state, &line_compute, &line_model);
    if (!complete) {
      if (!last) {
        return DataLoss(
            "{}:{}: not a lockstep result line, and not the last line (a torn last line is "
            "expected after a crash, damage elsewhere is not); move the file away to start over",
            path, line_number);
      }
      break;  // a torn last line
    }
    if (line_compute != compute) {
      return FailedPrecondition(
          "{}:{}: this result was computed with --compute {}, this run uses --compute {}; resume "
          "with --compute {} (the two modes give other bits) or write to another --output",
          path, line_number, line_compute, compute, line_compute);
    }
    if (line_model != model_sha256) {
      return FailedPrecondition(
          "{}:{}: this result was computed with {}, this run uses {}; resume with the model "
          "that wrote the file or write to another --output",
          path, line_number, DescribeModel(line_model), DescribeModel(model_sha256));
    }
    ++state.lines;
    kept = end + 1;
    begin = end + 1;
  }
  if (kept < text.size()) {
    state.torn_bytes = text.size() - kept;
    if (::truncate(path.c_str(), static_cast<off_t>(kept)) != 0) {
      return IoError("{}: cannot cut off the torn last line: {}", path, std::strerror(errno));
    }
  }
  return state;
}

}  // namespace lockstep::runtime
