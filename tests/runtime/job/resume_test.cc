// Resuming: what a results file holds after a crash, and cutting off a torn
// last line.
#include "resume.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/model_file_test_util.h"

namespace lockstep::runtime {
namespace {

using testing::ScratchDir;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

const char kComplete[] = R"({"id":"a","tokens":[1,2],"finish_reason":"length","usage":{}})"
                         "\n"
                         R"({"id":"b","line":2,"error":"x.jsonl:2: bad"})"
                         "\n"
                         R"({"id":null,"line":3,"error":"x.jsonl:3: not JSON"})"
                         "\n";

TEST(ResumeTest, MissingFileIsAFreshStart) {
  ScratchDir dir;
  Result<ResumeState> s = PrepareResume(dir.File("none.jsonl"));
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->existed);
  EXPECT_TRUE(s->done_ids.empty());
}

TEST(ResumeTest, CompleteLinesAreDone) {
  ScratchDir dir;
  const std::string path = dir.File("out.jsonl");
  Write(path, kComplete);
  Result<ResumeState> s = PrepareResume(path);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->done_ids, (std::set<std::string>{"a"}));  // results by id
  EXPECT_EQ(s->done_lines, (std::set<int64_t>{2, 3}));   // error records by line
  EXPECT_EQ(s->lines, 3);
  EXPECT_EQ(s->torn_bytes, 0u);
  EXPECT_EQ(Read(path), kComplete);
}

TEST(ResumeTest, TornLastLineIsCutOff) {
  ScratchDir dir;
  const std::string path = dir.File("out.jsonl");
  for (const std::string& torn :
       std::vector<std::string>{R"({"id":"c","tokens":[4,)", R"({"id":"c","tokens":[4]})", "{"}) {
    Write(path, std::string(kComplete) + torn);
    Result<ResumeState> s = PrepareResume(path);
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_EQ(s->done_ids.count("c"), 0u) << torn;
    EXPECT_EQ(s->torn_bytes, torn.size());
    EXPECT_EQ(Read(path), kComplete) << torn;
  }
}

TEST(ResumeTest, DamageBeforeTheEndIsDataLoss) {
  ScratchDir dir;
  const std::string path = dir.File("out.jsonl");
  Write(path, std::string("garbage\n") + kComplete);
  Result<ResumeState> s = PrepareResume(path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(s.status().message().find("out.jsonl:1"), std::string::npos) << s.status().message();
}

// A file resumed with another --compute would mix two modes' bits: the first
// result line of the other mode is refused, naming the file, line and modes,
// and the file is left as it was.
TEST(ResumeTest, ResultsOfTheOtherComputeModeAreRefused) {
  ScratchDir dir;
  const std::string path = dir.File("out.jsonl");
  const std::string bf16 = std::string(kComplete) + R"({"id":"b","tokens":[7],"compute":"bf16"})" "\n";
  Write(path, bf16);
  Result<ResumeState> s = PrepareResume(path, "float");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("out.jsonl:4: this result was computed with --compute bf16, "
                                      "this run uses --compute float"),
            std::string::npos)
      << s.status().message();
  EXPECT_EQ(Read(path), bf16);
  // The float line "a" (no "compute" field) under a bf16 run: line 1.
  s = PrepareResume(path, "bf16");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("out.jsonl:1: this result was computed with --compute float"),
            std::string::npos)
      << s.status().message();
  // Error records carry no mode; bf16 results resume under bf16.
  Write(path, std::string(R"({"id":"b","tokens":[7],"compute":"bf16"})") + "\n" +
                  R"({"id":null,"line":2,"error":"bad"})" + "\n");
  s = PrepareResume(path, "bf16");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->done_ids, (std::set<std::string>{"b"}));
  EXPECT_EQ(s->done_lines, (std::set<int64_t>{2}));
}


// A file resumed with another model would mix two models' results: the
// first result line whose model_sha256 differs is refused, naming the file,
// the line and both digests, and the file is left as it was.
TEST(ResumeTest, ResultsOfAnotherModelAreRefused) {
  ScratchDir dir;
  const std::string path = dir.File("out.jsonl");
  const std::string a(64, 'a'), b(64, 'b');
  const std::string text = R"({"id":"x","tokens":[1],"model_sha256":")" + a + "\"}\n" +
                           R"({"id":null,"line":3,"error":"bad"})" + "\n" +
                           R"({"id":"y","tokens":[2],"model_sha256":")" + b + "\"}\n";
  Write(path, text);
  Result<ResumeState> s = PrepareResume(path, "float", a);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find(
                "out.jsonl:3: this result was computed with the model with manifest_sha256 "
                "bbbbbbbbbbbbbbbb..., this run uses the model with manifest_sha256 "
                "aaaaaaaaaaaaaaaa...; resume with the model that wrote the file"),
            std::string::npos)
      << s.status().message();
  EXPECT_EQ(Read(path), text);
  // A model without a manifest against lines that name one: line 1.
  s = PrepareResume(path, "float", "");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("out.jsonl:1: this result was computed with the model with "
                                      "manifest_sha256 aaaaaaaaaaaaaaaa..., this run uses a model "
                                      "file without a manifest_sha256"),
            std::string::npos)
      << s.status().message();
  // The same model resumes; error records carry no model.
  Write(path, R"({"id":"x","tokens":[1],"model_sha256":")" + a + "\"}\n" +
                  R"({"id":null,"line":3,"error":"bad"})" + "\n");
  s = PrepareResume(path, "float", a);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->done_ids, (std::set<std::string>{"x"}));
  EXPECT_EQ(s->done_lines, (std::set<int64_t>{3}));
}

}  // namespace
}  // namespace lockstep::runtime
