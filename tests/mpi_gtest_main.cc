// See mpi_gtest_main.h.
#include "mpi_gtest_main.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lockstep::testing {
namespace {

// Test-process state: written once in main before any test runs.
struct TestProcess {
  std::optional<transport::MpiSession> session;
  std::vector<std::string> args;
};
TestProcess& Process() {
  static TestProcess process;
  return process;
}

// On ranks other than 0: prints each failed assertion and each failed test,
// prefixed with the rank, and nothing else.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::string text = fmt::format("[rank {}] {}:{}: Failure\n{}\n", rank_,
                                   result.file_name() ? result.file_name() : "?",
                                   result.line_number(), result.message());
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (!info.result()->Failed()) return;
    std::string text =
        fmt::format("[rank {}] [  FAILED  ] {}.{}\n", rank_, info.test_suite_name(), info.name());
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }

 private:
  int rank_;
};

}  // namespace

const transport::MpiSession& TestSession() {
  return *Process().session;
}

std::string TestFlag(std::string_view name, std::string_view fallback) {
  std::string prefix = fmt::format("--{}=", name);
  for (const std::string& arg : Process().args) {
    if (arg.starts_with(prefix)) return arg.substr(prefix.size());
  }
  return std::string(fallback);
}

}  // namespace lockstep::testing

int main(int argc, char** argv) {
  using lockstep::testing::Process;
  auto session = lockstep::transport::MpiSession::Init(&argc, &argv);
  if (!session.ok()) {
    std::fprintf(stderr, "mpi_gtest_main: %s\n", session.status().ToString().c_str());
    return 1;
  }
  Process().session.emplace(std::move(*session));
  ::testing::InitGoogleTest(&argc, argv);  // removes the gtest flags
  for (int i = 1; i < argc; ++i) Process().args.emplace_back(argv[i]);

  const int rank = Process().session->world_rank();
  ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
  if (rank != 0) {
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new lockstep::testing::RankFailurePrinter(rank));
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  // Control, not data: how many ranks failed (MPI's reduction is fine here).
  int failed_ranks = 0;
  MPI_Allreduce(&failed, &failed_ranks, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0 && failed_ranks > 0) {
    std::printf("mpi_gtest_main: %d of %d ranks had failures (see the [rank N] lines)\n",
                failed_ranks, Process().session->world_size());
  }
  std::fflush(stdout);
  Process().session.reset();  // MPI_Finalize
  return failed_ranks > 0 ? 1 : 0;
}
