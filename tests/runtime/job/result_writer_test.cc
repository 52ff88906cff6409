#include "lockstep/job/result_writer.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace lockstep::runtime {
namespace {

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("lockstep_result_writer_" + std::to_string(getpid()) + "_" + name))
      .string();
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(ResultWriterTest, FormatsResults) {
  RequestResult r;
  r.id = "r\"1";
  r.tokens = {5, 9, 2};
  r.finish_reason = FinishReason::kStop;
  r.prompt_tokens = 4;
  r.ttft_ms = 12.34567;
  r.decode_tokens_per_s = 41.0;
  EXPECT_EQ(FormatResultLine(r),
            R"({"id":"r\"1","tokens":[5,9,2],"finish_reason":"stop",)"
            R"("usage":{"prompt_tokens":4,"completion_tokens":3,"total_tokens":7},)"
            R"("ttft_ms":12.346,"decode_tokens_per_s":41.0})");
  r.finish_reason = FinishReason::kLength;
  r.logits_sha256 = std::string(64, 'a');
  nlohmann::json j = nlohmann::json::parse(FormatResultLine(r));
  EXPECT_EQ(j["finish_reason"], "length");
  EXPECT_EQ(j["logits_sha256"], std::string(64, 'a'));
  EXPECT_FALSE(j.contains("model_sha256"));  // a model without a manifest
  r.model_sha256 = std::string(64, 'c');
  j = nlohmann::json::parse(FormatResultLine(r));
  EXPECT_EQ(j["model_sha256"], std::string(64, 'c'));
}

TEST(ResultWriterTest, ChatResultsCarryTheAssistantsMessage) {
  RequestResult r;
  r.id = "c";
  r.chat = true;
  r.tokens = {7, 2};
  r.text = "Hi \"there\"";
  r.finish_reason = FinishReason::kStop;
  r.prompt_tokens = 3;
  r.include_timings = false;
  EXPECT_EQ(FormatResultLine(r),
            R"({"id":"c","tokens":[7,2],"message":{"role":"assistant","content":"Hi \"there\""},)"
            R"("finish_reason":"stop","usage":{"prompt_tokens":3,"completion_tokens":2,)"
            R"("total_tokens":5}})");
}

TEST(ResultWriterTest, FormatsErrorRecords) {
  EXPECT_EQ(FormatErrorLine({std::string("x"), 7, "in.jsonl:7: bad"}),
            R"({"id":"x","line":7,"error":"in.jsonl:7: bad"})");
  EXPECT_EQ(FormatErrorLine({std::nullopt, 2, "in.jsonl:2: not valid JSON"}),
            R"({"id":null,"line":2,"error":"in.jsonl:2: not valid JSON"})");
  // Invalid UTF-8 from a broken input line does not stop the record.
  std::string message = "bad byte \xff here";
  nlohmann::json j = nlohmann::json::parse(FormatErrorLine({std::nullopt, 1, message}));
  EXPECT_EQ(j["line"], 1);
}

TEST(ResultWriterTest, EachLineIsOnDiskWhenWriteReturns) {
  const std::string path = TempPath("durable.jsonl");
  {
    Result<ResultWriter> writer = ResultWriter::Open(path);
    ASSERT_TRUE(writer.ok()) << writer.status().message();
    RequestResult r;
    r.id = "a";
    r.tokens = {1};
    ASSERT_TRUE(writer->Write(r).ok());
    // Read back through another descriptor while the writer is still open.
    EXPECT_EQ(Lines(path).size(), 1u);
    ASSERT_TRUE(writer->WriteError({std::string("b"), 3, "in:3: bad"}).ok());
    std::vector<std::string> lines = Lines(path);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(nlohmann::json::parse(lines[0])["id"], "a");
    EXPECT_EQ(nlohmann::json::parse(lines[1])["error"], "in:3: bad");
    EXPECT_EQ(writer->lines_written(), 2);
  }
  // Opening again truncates; append keeps.
  {
    Result<ResultWriter> writer = ResultWriter::Open(path, /*append=*/true);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(writer->WriteError({std::nullopt, 9, "x"}).ok());
  }
  EXPECT_EQ(Lines(path).size(), 3u);
  { ASSERT_TRUE(ResultWriter::Open(path).ok()); }
  EXPECT_EQ(Lines(path).size(), 0u);
  std::filesystem::remove(path);
}

TEST(ResultWriterTest, ErrorsNameTheFile) {
  Result<ResultWriter> bad = ResultWriter::Open("/nonexistent-dir/out.jsonl");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kIo);
  EXPECT_NE(bad.status().message().find("/nonexistent-dir/out.jsonl"), std::string::npos);

  // A full disk: the write fails with a Status naming the file.
  Result<ResultWriter> full = ResultWriter::Open("/dev/full", /*append=*/true);
  ASSERT_TRUE(full.ok()) << full.status().message();
  Status s = full->WriteError({std::nullopt, 1, "x"});
  EXPECT_EQ(s.code(), StatusCode::kIo);
  EXPECT_NE(s.message().find("/dev/full"), std::string::npos);
}

// One job per results file: a second claim (another job, another --resume)
// is refused while the first holds the file, in this process or another.
TEST(ResultWriterTest, ASecondClaimIsRefusedWhileTheFirstHoldsTheFile) {
  const std::string path = TempPath("locked.jsonl");
  std::filesystem::remove(path);
  {
    Result<ResultWriter> first = ResultWriter::Claim(path, ExistingResults::kRefuse);
    ASSERT_TRUE(first.ok()) << first.status().message();
    ASSERT_TRUE(first->Start().ok());
    ASSERT_TRUE(first->WriteError({std::nullopt, 1, "x"}).ok());
    for (ExistingResults mode :
         {ExistingResults::kRefuse, ExistingResults::kAppend, ExistingResults::kOverwrite}) {
      Result<ResultWriter> second = ResultWriter::Claim(path, mode);
      ASSERT_FALSE(second.ok());
      EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
      EXPECT_NE(second.status().message().find(path + ": another process is writing"),
                std::string::npos)
          << second.status().message();
    }
    // Another process (the lock is the file system's, not this process's).
    const pid_t child = fork();
    if (child == 0) {
      Result<ResultWriter> other = ResultWriter::Claim(path, ExistingResults::kAppend);
      _exit(!other.ok() && other.status().code() == StatusCode::kFailedPrecondition ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(Lines(path).size(), 1u);  // the refused claims touched nothing
  }
  // Released with the first writer.
  EXPECT_TRUE(ResultWriter::Claim(path, ExistingResults::kAppend).ok());
  std::filesystem::remove(path);
}

TEST(ResultWriterTest, ANonEmptyFileIsKeptUnlessAppendingOrOverwritingAtStart) {
  const std::string path = TempPath("existing.jsonl");
  { std::ofstream(path) << "{\"id\":\"a\",\"tokens\":[1]}\n"; }
  Result<ResultWriter> refused = ResultWriter::Claim(path, ExistingResults::kRefuse);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("already holds 24 bytes; --resume continues that "
                                            "job, --force overwrites it"),
            std::string::npos)
      << refused.status().message();
  EXPECT_EQ(Lines(path).size(), 1u);
  {
    Result<ResultWriter> force = ResultWriter::Claim(path, ExistingResults::kOverwrite);
    ASSERT_TRUE(force.ok());
    EXPECT_EQ(Lines(path).size(), 1u);  // not truncated until Start
  }
  EXPECT_EQ(Lines(path).size(), 1u);  // a claim never started keeps the file
  {
    Result<ResultWriter> append = ResultWriter::Claim(path, ExistingResults::kAppend);
    ASSERT_TRUE(append.ok());
    ASSERT_TRUE(append->Start().ok());
    ASSERT_TRUE(append->WriteError({std::nullopt, 2, "y"}).ok());
  }
  EXPECT_EQ(Lines(path).size(), 2u);
  {
    Result<ResultWriter> force = ResultWriter::Claim(path, ExistingResults::kOverwrite);
    ASSERT_TRUE(force.ok());
    ASSERT_TRUE(force->Start().ok());
    ASSERT_TRUE(force->WriteError({std::nullopt, 3, "z"}).ok());
  }
  EXPECT_EQ(Lines(path).size(), 1u);
  std::filesystem::remove(path);
}

TEST(ResultWriterTest, AClaimThatNeverStartsLeavesNoNewFile) {
  const std::string path = TempPath("never.jsonl");
  std::filesystem::remove(path);
  {
    Result<ResultWriter> claimed = ResultWriter::Claim(path, ExistingResults::kRefuse);
    ASSERT_TRUE(claimed.ok());
    EXPECT_TRUE(std::filesystem::exists(path));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  // An existing empty file stays.
  { std::ofstream(path).flush(); }
  { ASSERT_TRUE(ResultWriter::Claim(path, ExistingResults::kRefuse).ok()); }
  EXPECT_TRUE(std::filesystem::exists(path));
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace lockstep::runtime
