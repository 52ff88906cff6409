// ResultCommitter: world rank 0's writer thread. The results of one step
// share one commit (one fsync, counted by the ResultWriter itself), nothing
// is handed back as done before its fsync has returned, and the text is
// decoded on the writer thread exactly as the step loop used to.
#include "result_committer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "completion_text.h"
#include "runtime/tiny_tokenizer.h"

namespace lockstep::runtime {
namespace {

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("lockstep_result_committer_" + std::to_string(getpid()) + "_" + name))
      .string();
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

ResultCommitter::Entry ResultEntry(const std::string& id, std::vector<int32_t> tokens,
                                   int64_t tag) {
  ResultCommitter::Entry e;
  RequestResult& r = e.result.emplace();
  r.id = id;
  r.tokens = std::move(tokens);
  r.prompt_tokens = 2;
  r.include_timings = false;
  e.tag = tag;
  return e;
}

TEST(ResultCommitterTest, TheResultsOfOneStepShareOneCommit) {
  const std::string path = TempPath("one_step");
  auto writer = ResultWriter::Open(path);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  {
    ResultCommitter committer(&*writer, nullptr);
    std::vector<ResultCommitter::Entry> step;
    step.push_back(ResultEntry("a", {1, 2}, 0));
    step.push_back(ResultEntry("b", {3}, 1));
    ResultCommitter::Entry error;
    error.error = RequestError{std::string("c"), 3, "requests.jsonl:3: too long"};
    error.tag = 2;
    step.push_back(std::move(error));
    ASSERT_TRUE(committer.Submit(std::move(step)).ok());
    ASSERT_TRUE(committer.Submit({}).ok());  // a step where nothing finished: no commit
    ASSERT_TRUE(committer.Close().ok());
    EXPECT_EQ(committer.commits(), 1);
    const std::vector<ResultCommitter::Entry> done = committer.TakeCommitted();
    ASSERT_EQ(done.size(), 3u);
    EXPECT_EQ(done[0].tag, 0);
    EXPECT_EQ(done[1].tag, 1);
    EXPECT_EQ(done[2].tag, 2);
  }
  // The writer's own counters: three lines, one fsync.
  EXPECT_EQ(writer->syncs(), 1);
  EXPECT_EQ(writer->lines_written(), 3);
  const std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find(R"("id":"a")"), std::string::npos);
  EXPECT_NE(lines[1].find(R"("id":"b")"), std::string::npos);
  EXPECT_NE(lines[2].find(R"("error":"requests.jsonl:3: too long")"), std::string::npos);
  std::filesystem::remove(path);
}

// The writer thread is held inside a commit, after its write and before its
// fsync (the writer's test hook): nothing of that commit may be handed back
// as done, and its fsync is not counted, until the fsync is let through.
// Groups submitted meanwhile are never split and wait for the next commit.
TEST(ResultCommitterTest, NothingIsDoneBeforeItsFsync) {
  const std::string path = TempPath("held");
  auto writer = ResultWriter::Open(path);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  std::mutex mutex;
  std::condition_variable changed;
  int entered = 0;   // fsyncs the hook has seen begin
  int released = 0;  // fsyncs the test has let through
  writer->SetBeforeSyncForTesting([&] {
    std::unique_lock lock(mutex);
    const int mine = entered++;
    changed.notify_all();
    changed.wait(lock, [&] { return released > mine; });
  });
  const auto wait_entered = [&](int n) {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return entered >= n; });
  };
  const auto release = [&] {
    std::lock_guard lock(mutex);
    ++released;
    changed.notify_all();
  };

  ResultCommitter committer(&*writer, nullptr);
  std::vector<ResultCommitter::Entry> step1;
  step1.push_back(ResultEntry("a", {1}, 0));
  step1.push_back(ResultEntry("b", {2}, 1));
  ASSERT_TRUE(committer.Submit(std::move(step1)).ok());
  wait_entered(1);
  // Written, not yet fsync'd: not done.
  EXPECT_EQ(Lines(path).size(), 2u);
  EXPECT_TRUE(committer.TakeCommitted().empty());
  EXPECT_EQ(committer.commits(), 0);
  EXPECT_EQ(writer->syncs(), 0);
  EXPECT_EQ(writer->lines_written(), 0);
  // Two more steps while the first commit is held: they wait, whole.
  std::vector<ResultCommitter::Entry> step2, step3;
  step2.push_back(ResultEntry("c", {3}, 2));
  step3.push_back(ResultEntry("d", {4}, 3));
  step3.push_back(ResultEntry("e", {5}, 4));
  ASSERT_TRUE(committer.Submit(std::move(step2)).ok());
  ASSERT_TRUE(committer.Submit(std::move(step3)).ok());
  EXPECT_TRUE(committer.TakeCommitted().empty());

  release();
  wait_entered(2);  // the first fsync returned; the second commit is held
  std::vector<ResultCommitter::Entry> done = committer.TakeCommitted();
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].tag, 0);
  EXPECT_EQ(done[1].tag, 1);
  EXPECT_EQ(writer->syncs(), 1);
  EXPECT_EQ(writer->lines_written(), 2);
  EXPECT_TRUE(committer.TakeCommitted().empty());  // steps 2 and 3: written, not synced
  EXPECT_EQ(Lines(path).size(), 5u);

  release();
  ASSERT_TRUE(committer.Close().ok());
  done = committer.TakeCommitted();
  ASSERT_EQ(done.size(), 3u);
  EXPECT_EQ(done[0].tag, 2);
  EXPECT_EQ(done[2].tag, 4);
  // Steps 2 and 3 were queued together: one commit for both, never one
  // step over two commits.
  EXPECT_EQ(committer.commits(), 2);
  EXPECT_EQ(writer->syncs(), 2);
  EXPECT_EQ(writer->lines_written(), 5);
  std::filesystem::remove(path);
}

// The text built on the writer thread from the tokens equals the one built
// token by token in the step loop (stop string, echo, special tokens).
TEST(ResultCommitterTest, TextIsDecodedOnTheWriterThreadAsInTheStepLoop) {
  Result<std::unique_ptr<Tokenizer>> tokenizer = CreateTokenizer(testing::TinyHfData());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  Request plain;
  plain.prompt_tokens = {265, 259};
  Request stopped = plain;
  stopped.stop = {"wor"};
  stopped.echo = true;
  const std::vector<int32_t> tokens = {259, 264, 266, 10, int{'x'}};
  const auto step_loop_text = [&](const Request& r) {
    CompletionText text(**tokenizer, r);
    for (int32_t t : tokens) text.Append(t);
    return text.Text();
  };

  const std::string path = TempPath("text");
  auto writer = ResultWriter::Open(path);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ResultCommitter committer(&*writer, tokenizer->get());
  std::vector<ResultCommitter::Entry> step;
  step.push_back(ResultEntry("p", tokens, 0));
  step.back().text_request = &plain;
  step.push_back(ResultEntry("s", tokens, 1));
  step.back().text_request = &stopped;
  ASSERT_TRUE(committer.Submit(std::move(step)).ok());
  ASSERT_TRUE(committer.Close().ok());
  const std::vector<ResultCommitter::Entry> done = committer.TakeCommitted();
  ASSERT_EQ(done.size(), 2u);
  ASSERT_TRUE(done[0].result->text.has_value());
  EXPECT_EQ(*done[0].result->text, step_loop_text(plain));
  EXPECT_EQ(*done[0].result->text, "hello world\nx");
  EXPECT_EQ(*done[1].result->text, step_loop_text(stopped));
  EXPECT_EQ(done[1].result->tokens, tokens);  // every generated token is kept
  const std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], FormatResultLine(*done[0].result));
  EXPECT_EQ(lines[1], FormatResultLine(*done[1].result));
  std::filesystem::remove(path);
}

// A failed commit (the results file on a full or broken disk) is kept:
// Submit and Close return it, nothing of the failed commit is done.
TEST(ResultCommitterTest, AWriteErrorStopsTheCommitter) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  auto writer = ResultWriter::Open("/dev/full");
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ResultCommitter committer(&*writer, nullptr);
  std::vector<ResultCommitter::Entry> step;
  step.push_back(ResultEntry("a", {1}, 0));
  ASSERT_TRUE(committer.Submit(std::move(step)).ok());
  const Status closed = committer.Close();
  EXPECT_FALSE(closed.ok());
  EXPECT_NE(closed.message().find("/dev/full"), std::string::npos) << closed.ToString();
  EXPECT_TRUE(committer.TakeCommitted().empty());
  EXPECT_EQ(committer.commits(), 0);
  EXPECT_EQ(writer->syncs(), 0);
}

}  // namespace
}  // namespace lockstep::runtime
