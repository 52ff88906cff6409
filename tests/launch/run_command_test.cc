// `lockstep run` end to end through the real binary: exit codes, the one-line
// error for a bad model file, error records for bad request lines, and that
// an existing results file survives a job that cannot start.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "lockstep/model/model_file.h"
#include "lockstep/model/synth.h"
#include "lockstep/tokenizer/tokenizer.h"
#include "runtime/model_file_test_util.h"
#include "runtime/tiny_tokenizer.h"

namespace lockstep::runtime {
namespace {

using nlohmann::json;
using testing::FileEditor;
using testing::ScratchDir;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

struct CommandRun {
  int exit_code = -1;
  std::string stderr_text;
};

class RunCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = testing::MicroConfig();  // vocab 67, context 64, 2 layers, GQA
    model_ = dir_.File("model.h5");
    ASSERT_TRUE(SynthesizeModel(config_, DType::kBF16, 1, model_).ok());
    requests_ = dir_.File("requests.jsonl");
    output_ = dir_.File("results.jsonl");
    WriteText(requests_,
              R"({"id": "a", "prompt_tokens": [1, 2, 3], "max_tokens": 4, "temperature": 0})"
              "\n"
              R"({"custom_id": "b", "body": {"prompt": [5], "max_tokens": 2, "seed": 3}})"
              "\n");
  }

  // `prefix` goes before the binary (env VAR=..., taskset -c 0).
  CommandRun Lockstep(const std::string& args, const std::string& prefix = "") {
    const std::string err = dir_.File("stderr.txt");
    const std::string command = prefix + std::string(LOCKSTEP_BINARY) + " " + args + " 2>" + err;
    const int status = std::system(command.c_str());
    CommandRun run;
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.stderr_text = ReadText(err);
    return run;
  }
  CommandRun RunJob(const std::string& model, const std::string& extra = "") {
    return Lockstep("run --no-progress --model " + model + " --input " + requests_ + " --output " +
                    output_ + " " + extra);
  }

  // A failed job: exit 1, exactly one stderr line "lockstep: error: ..."
  // containing every string of `names`, and the old results file untouched
  // (even with --force: it is truncated only once the model has loaded).
  void ExpectModelError(const std::string& model, const std::vector<std::string>& names) {
    WriteText(output_, "results of an earlier job\n");
    CommandRun run = RunJob(model, "--force");
    EXPECT_EQ(run.exit_code, 1) << run.stderr_text;
    std::vector<std::string> lines = Lines(run.stderr_text);
    ASSERT_EQ(lines.size(), 1u) << run.stderr_text;
    EXPECT_EQ(lines[0].rfind("lockstep: error: ", 0), 0u) << lines[0];
    for (const std::string& name : names) {
      EXPECT_NE(lines[0].find(name), std::string::npos) << "'" << name << "' not in: " << lines[0];
    }
    EXPECT_EQ(ReadText(output_), "results of an earlier job\n");
  }

  std::string CopyOfModel(const std::string& name) {
    const std::string path = dir_.File(name);
    std::vector<char> bytes = testing::ReadBytes(model_);
    testing::WriteBytes(path, bytes.data(), bytes.size());
    return path;
  }

  ScratchDir dir_;
  partitioner::ModelConfig config_;
  std::string model_, requests_, output_;
};

TEST_F(RunCommandTest, GoodJobExitsZeroWithOneResultPerRequest) {
  CommandRun run = RunJob(model_, "--hash-logits --threads 2");
  EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
  std::vector<std::string> lines = Lines(ReadText(output_));
  ASSERT_EQ(lines.size(), 2u);
  std::map<std::string, json> by_id;
  for (const std::string& line : lines) {
    json j = json::parse(line);
    by_id[j["id"]] = j;
  }
  EXPECT_EQ(by_id["a"]["tokens"].size(), 4u);
  EXPECT_EQ(by_id["a"]["usage"]["prompt_tokens"], 3);
  EXPECT_EQ(by_id["b"]["usage"]["completion_tokens"], by_id["b"]["tokens"].size());
  for (auto& [id, j] : by_id) {
    EXPECT_EQ(j["logits_sha256"].get<std::string>().size(), 64u);
    EXPECT_TRUE(j["finish_reason"] == "length" || j["finish_reason"] == "stop");
    EXPECT_TRUE(j.contains("ttft_ms") && j.contains("decode_tokens_per_s"));
  }
}

// A model carrying a tokenizer: text prompts, "text" in every result, echo
// and stop strings, through the real binary.
TEST_F(RunCommandTest, TextPromptsWithTheModelsTokenizer) {
  partitioner::ModelConfig c = config_;
  c.vocab_size = 269;
  c.bos_token_id = 265;
  c.eos_token_id = 266;
  const TokenizerData data = testing::TinyHfData();
  const std::string model = dir_.File("text.h5");
  ASSERT_TRUE(SynthesizeModel(c, DType::kBF16, 7, model, &data).ok());
  Result<std::unique_ptr<Tokenizer>> made = CreateTokenizer(data);
  ASSERT_TRUE(made.ok());
  const Tokenizer& tokenizer = **made;

  const json greedy = {{"max_tokens", 20}, {"temperature", 0}, {"ignore_eos", true}};
  json text_request = greedy, ids_request = greedy;
  text_request.update({{"id", "text"}, {"prompt", "hello world"}});
  ids_request.update({{"id", "ids"}, {"prompt_tokens", {265, 259, 264}}});
  const json echo_request = {{"custom_id", "echo"},
                             {"body", {{"prompt", "hello"}, {"max_tokens", 3}, {"echo", true}}}};
  WriteText(requests_,
            text_request.dump() + "\n" + ids_request.dump() + "\n" + echo_request.dump() + "\n");
  CommandRun run = RunJob(model);
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  std::map<std::string, json> by_id;
  for (const std::string& line : Lines(ReadText(output_))) {
    json j = json::parse(line);
    by_id[j["id"]] = j;
  }
  ASSERT_EQ(by_id.size(), 3u);
  // The text prompt is the ids its tokenizer gives (BOS included), so the
  // tokens are the same; "text" is the tokens' bytes.
  const std::vector<int32_t> tokens = by_id["text"]["tokens"].get<std::vector<int32_t>>();
  EXPECT_EQ(by_id["text"]["usage"]["prompt_tokens"], 3);
  EXPECT_EQ(tokens, by_id["ids"]["tokens"].get<std::vector<int32_t>>());
  ASSERT_EQ(tokens.size(), 20u);
  std::string raw;
  std::vector<size_t> ends;  // bytes of text after each token
  for (int32_t t : tokens) {
    raw += tokenizer.DecodeToken(t);
    ends.push_back(raw.size());
  }
  EXPECT_EQ(by_id["text"]["text"], ValidUtf8(raw));
  EXPECT_EQ(by_id["ids"]["text"], ValidUtf8(raw));
  EXPECT_EQ(by_id["echo"]["text"].get<std::string>().rfind("hello", 0), 0u);

  // A stop string: the ASCII piece of a later token. Generation stops at the
  // token that completes its first occurrence; the text ends before it.
  std::string stop;
  for (size_t i = 2; i < tokens.size() && stop.empty(); ++i) {
    const std::string piece = tokenizer.DecodeToken(tokens[i]);
    bool ascii = !piece.empty();
    for (unsigned char ch : piece) ascii = ascii && ch >= 0x20 && ch < 0x7F;
    if (ascii) stop = piece;
  }
  ASSERT_FALSE(stop.empty()) << "no ASCII token in the greedy output of this seed";
  const size_t at = raw.find(stop);
  size_t last = 0;  // index of the token that completes the stop string
  while (ends[last] < at + stop.size()) ++last;
  json stop_request = greedy;
  stop_request.update({{"id", "stop"}, {"prompt", "hello world"}, {"stop", {"\u0001never", stop}}});
  WriteText(requests_, stop_request.dump() + "\n");
  run = RunJob(model, "--force");
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  json j = json::parse(Lines(ReadText(output_)).at(0));
  EXPECT_EQ(j["finish_reason"], "stop");
  EXPECT_EQ(j["tokens"].get<std::vector<int32_t>>(),
            std::vector<int32_t>(tokens.begin(), tokens.begin() + static_cast<long>(last) + 1));
  EXPECT_EQ(j["text"], ValidUtf8(raw.substr(0, at)));
}

TEST_F(RunCommandTest, DumpLogitsWritesEveryStep) {
  const std::string dump = dir_.File("logits.jsonl");
  CommandRun run = RunJob(model_, "--dump-logits " + dump);
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  std::map<std::string, std::vector<int32_t>> tokens;
  for (const std::string& line : Lines(ReadText(dump))) {
    json j = json::parse(line);
    EXPECT_EQ(j["logits"].size(), static_cast<size_t>(config_.vocab_size));
    EXPECT_EQ(j["step"], tokens[j["id"]].size());
    tokens[j["id"]].push_back(j["token"]);
  }
  for (const std::string& line : Lines(ReadText(output_))) {
    json j = json::parse(line);
    EXPECT_EQ(tokens[j["id"]], j["tokens"].get<std::vector<int32_t>>());
  }
}

TEST_F(RunCommandTest, BadRequestLinesBecomeErrorRecordsAndTheRestCompletes) {
  WriteText(requests_, R"({"id": "ok-1", "prompt_tokens": [1, 2], "max_tokens": 3})"
                       "\n"
                       R"({"id": "broken", "prompt_tokens": [1, 2)"
                       "\n"
                       R"({"id": "oov", "prompt_tokens": [1, 67], "max_tokens": 3})"
                       "\n"
                       R"({"id": "long", "prompt_tokens": [1, 2, 3, 4], "max_tokens": 61})"
                       "\n"
                       R"({"custom_id": "text", "body": {"prompt": "Once upon a time"}})"
                       "\n"
                       R"({"custom_id": "ok-2", "body": {"prompt": [4, 5, 6], "max_tokens": 2}})"
                       "\n");
  CommandRun run = RunJob(model_);
  EXPECT_EQ(run.exit_code, 3) << run.stderr_text;
  std::map<int64_t, json> errors;
  std::set<std::string> done;
  for (const std::string& line : Lines(ReadText(output_))) {
    json j = json::parse(line);
    if (j.contains("error")) {
      errors[j["line"]] = j;
    } else {
      done.insert(j["id"]);
    }
  }
  EXPECT_EQ(done, (std::set<std::string>{"ok-1", "ok-2"}));
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_EQ(errors[2]["id"], "broken");  // read before the line broke off
  EXPECT_NE(errors[2]["error"].get<std::string>().find(":2: field 'prompt_tokens[]': not valid "
                                                       "JSON"),
            std::string::npos)
      << errors[2]["error"];
  EXPECT_EQ(errors[3]["id"], "oov");
  EXPECT_NE(errors[3]["error"].get<std::string>().find("token id 67, outside the model's "
                                                       "vocabulary of 67"),
            std::string::npos);
  EXPECT_EQ(errors[4]["id"], "long");
  EXPECT_NE(errors[4]["error"].get<std::string>().find("exceeds the model's context of 64"),
            std::string::npos);
  EXPECT_EQ(errors[5]["id"], "text");
  EXPECT_NE(errors[5]["error"].get<std::string>().find("a text prompt needs a tokenizer"),
            std::string::npos);
  // The errors are logged on stderr too, naming the line.
  EXPECT_NE(run.stderr_text.find("requests.jsonl:4:"), std::string::npos);
}

TEST_F(RunCommandTest, RequestTooLargeForTheKvCacheIsAnErrorRecord) {
  // A page of this model is 2 layers * (K + V) * 4 KV heads * 16 * 64 positions
  // * 4 bytes = 32 KiB, so --kv-cache-mb 1 holds 32 pages = 2048 positions.
  partitioner::ModelConfig c = config_;
  c.hidden_size = 64;
  c.num_heads = 4;
  c.num_kv_heads = 4;
  c.head_dim = 16;
  c.max_position_embeddings = 4096;
  const std::string model = dir_.File("long_context.h5");
  ASSERT_TRUE(SynthesizeModel(c, DType::kBF16, 1, model).ok());
  WriteText(requests_, R"({"id": "fits", "prompt_tokens": [1], "max_tokens": 2})"
                       "\n"
                       R"({"id": "huge", "prompt_tokens": [1, 2], "max_tokens": 2047})"
                       "\n");
  CommandRun run = RunJob(model, "--kv-cache-mb 1");
  EXPECT_EQ(run.exit_code, 3) << run.stderr_text;
  std::vector<std::string> lines = Lines(ReadText(output_));
  ASSERT_EQ(lines.size(), 2u);
  json error = json::parse(lines[0]);  // error records come first
  EXPECT_EQ(error["id"], "huge");
  EXPECT_EQ(error["line"], 2);
  EXPECT_NE(error["error"].get<std::string>().find("needs 33 KV cache pages"), std::string::npos)
      << error["error"];
  EXPECT_NE(error["error"].get<std::string>().find("--kv-cache-mb"), std::string::npos);
  EXPECT_EQ(json::parse(lines[1])["id"], "fits");
}

TEST_F(RunCommandTest, MissingModelFile) {
  ExpectModelError(dir_.File("missing.h5"), {dir_.File("missing.h5")});
}

TEST_F(RunCommandTest, NotAnHdf5File) {
  const std::string path = dir_.File("text.h5");
  WriteText(path, "this is not a model\n");
  ExpectModelError(path, {path});
}

TEST_F(RunCommandTest, TruncatedModelFile) {
  const std::string path = CopyOfModel("truncated.h5");
  std::vector<char> bytes = testing::ReadBytes(path);
  testing::WriteBytes(path, bytes.data(), bytes.size() / 2);
  ExpectModelError(path, {path});
}

TEST_F(RunCommandTest, MissingTensor) {
  const std::string path = CopyOfModel("missing_tensor.h5");
  { FileEditor(path).DeleteLink("/layers/1/attn/wk"); }
  ExpectModelError(path, {path, "/layers/1/attn/wk"});
}

TEST_F(RunCommandTest, WrongTensorShape) {
  const std::string path = CopyOfModel("wrong_shape.h5");
  { FileEditor(path).ReplaceDataset("/layers/0/ffn/w_up", H5T_STD_U16LE, {48, 31}); }
  ExpectModelError(path, {path, "/layers/0/ffn/w_up"});
}

TEST_F(RunCommandTest, WrongTensorDtype) {
  const std::string path = CopyOfModel("wrong_dtype.h5");
  { FileEditor(path).ReplaceDataset("/layers/0/attn/wo", H5T_STD_I32LE, {32, 32}); }
  ExpectModelError(path, {path, "/layers/0/attn/wo"});
}

TEST_F(RunCommandTest, ConfigContradictsTheTensors) {
  const std::string path = CopyOfModel("contradiction.h5");
  { FileEditor(path).SetInt("intermediate_size", 64); }  // the tensors say 48
  ExpectModelError(path, {path, "/layers/0/ffn/w_gate"});
}

TEST_F(RunCommandTest, UnreadableRequestFile) {
  WriteText(output_, "kept\n");
  CommandRun run = Lockstep("run --model " + model_ + " --input " + dir_.File("none.jsonl") +
                            " --output " + output_);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.stderr_text.find("none.jsonl"), std::string::npos);
  EXPECT_EQ(ReadText(output_), "kept\n");
}

// The results file (issue 15): never truncated without --resume or
// --force, never the requests or the model, never written by a job whose
// --input is not a request file.
TEST_F(RunCommandTest, ResultsFileIsNeverLostOrConfused) {
  // An existing non-empty results file: refused, kept byte for byte.
  WriteText(output_, "{\"id\":\"x\",\"tokens\":[1]}\n");
  CommandRun run = RunJob(model_);
  EXPECT_EQ(run.exit_code, 1) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("results.jsonl: the results file already holds 24 bytes; "
                                 "--resume continues that job, --force overwrites it"),
            std::string::npos)
      << run.stderr_text;
  EXPECT_EQ(ReadText(output_), "{\"id\":\"x\",\"tokens\":[1]}\n");
  EXPECT_EQ(RunJob(model_, "--force").exit_code, 0);
  EXPECT_EQ(Lines(ReadText(output_)).size(), 2u);
  // --resume and --force together: a bad command line.
  EXPECT_EQ(RunJob(model_, "--resume --force").exit_code, 2);
  // --resume with the other --compute: the file would mix two modes' bits.
  const std::string float_results = ReadText(output_);
  run = RunJob(model_, "--resume --compute bf16");
  EXPECT_EQ(run.exit_code, 1) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("results.jsonl:1: this result was computed with --compute "
                                 "float, this run uses --compute bf16"),
            std::string::npos)
      << run.stderr_text;
  EXPECT_EQ(ReadText(output_), float_results);
  // --resume with another model (other weights: another manifest_sha256).
  const std::string other = dir_.File("other.h5");
  ASSERT_TRUE(SynthesizeModel(config_, DType::kBF16, 2, other).ok());
  run = RunJob(other, "--resume");
  EXPECT_EQ(run.exit_code, 1) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("results.jsonl:1: this result was computed with the model with "
                                 "manifest_sha256 "),
            std::string::npos)
      << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("resume with the model that wrote the file"), std::string::npos);
  EXPECT_EQ(ReadText(output_), float_results);

  // --output naming --input or --model (also through a hard link): exit 2,
  // nothing touched.
  const std::string requests_text = ReadText(requests_);
  const std::vector<char> model_bytes = testing::ReadBytes(model_);
  run = Lockstep("run --model " + model_ + " --input " + requests_ + " --output " + requests_);
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.stderr_text.find("--output " + requests_ + " is the same file as --input"),
            std::string::npos)
      << run.stderr_text;
  const std::string link = dir_.File("model-link.h5");
  ASSERT_EQ(::link(model_.c_str(), link.c_str()), 0);
  run = Lockstep("run --model " + model_ + " --input " + requests_ + " --output " + link +
                 " --force");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.stderr_text.find("is the same file as --model"), std::string::npos)
      << run.stderr_text;
  EXPECT_EQ(ReadText(requests_), requests_text);
  EXPECT_EQ(testing::ReadBytes(model_), model_bytes);

  // --input a directory: refused before the results file is touched.
  const std::string kept = ReadText(output_);
  run = Lockstep("run --model " + model_ + " --input " + dir_.File("") + " --output " + output_ +
                 " --force");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.stderr_text.find("is a directory, not a request file"), std::string::npos)
      << run.stderr_text;
  EXPECT_EQ(ReadText(output_), kept);
  // A job that fails at start-up leaves no new results file behind.
  const std::string fresh = dir_.File("fresh.jsonl");
  run = Lockstep("run --model " + dir_.File("missing.h5") + " --input " + requests_ +
                 " --output " + fresh);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_FALSE(std::filesystem::exists(fresh));
}

// Finite weights whose activations overflow (a final norm of 3e38): the
// logits are not finite, and each request ends with an error record naming
// the generation step instead of tokens sampled from NaNs.
TEST_F(RunCommandTest, NonFiniteLogitsEndTheRequestWithAnErrorRecordNamingTheStep) {
  const std::string model = dir_.File("overflow.h5");
  {
    ModelWriterOptions options;
    options.dtype = DType::kF32;
    Result<ModelWriter> writer = ModelWriter::Create(model, config_, options);
    ASSERT_TRUE(writer.ok());
    for (const partitioner::TensorSpec& spec : partitioner::ModelTensors(config_)) {
      int64_t n = 1;
      for (int64_t d : spec.shape) n *= d;
      std::vector<float> values(static_cast<size_t>(n));
      SynthTensorValues(config_, spec, 1, 0, n, values.data());
      if (spec.path == partitioner::kFinalNormPath) values.assign(values.size(), 3e38f);
      ASSERT_TRUE(writer->WriteTensor(spec, values.data()).ok());
    }
    ASSERT_TRUE(writer->Close().ok());
  }
  CommandRun run = RunJob(model, "--hash-logits");
  EXPECT_EQ(run.exit_code, 3) << run.stderr_text;
  std::vector<std::string> lines = Lines(ReadText(output_));
  ASSERT_EQ(lines.size(), 2u) << ReadText(output_);
  std::set<std::string> ids;
  for (const std::string& line : lines) {
    json j = json::parse(line);
    ASSERT_TRUE(j.contains("error")) << line;
    ids.insert(j["id"]);
    const std::string error = j["error"];
    EXPECT_NE(error.find("the logits of generation step 0 (position "), std::string::npos)
        << error;
    EXPECT_TRUE(error.find("hold a NaN") != std::string::npos ||
                error.find("hold an infinity") != std::string::npos)
        << error;
  }
  EXPECT_EQ(ids, (std::set<std::string>{"a", "b"}));
}

// Under mpirun every rank parses the command line: --help and --version are
// printed by rank 0 only (exit 0 everywhere), like a bad command line's error.
TEST_F(RunCommandTest, HelpIsPrintedOnceUnderALauncher) {
  const std::string out = dir_.File("help.txt");
  for (const char* args : {"calibrate --help", "run --help", "--version"}) {
    CommandRun run = Lockstep(std::string(args) + " > " + out,
                              "env OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_SIZE=2 ");
    EXPECT_EQ(run.exit_code, 0) << args;
    EXPECT_EQ(ReadText(out), "") << args;
    EXPECT_EQ(run.stderr_text, "") << args;
    run = Lockstep(std::string(args) + " > " + out,
                   "env OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=2 ");
    EXPECT_EQ(run.exit_code, 0) << args;
    EXPECT_NE(ReadText(out), "") << args;
  }
}

// Every bad command line: exit 2, one line, in plain words, naming the
// flag; bounds from the machine; the nearest valid name for a misspelling.
// Nothing starts (no thread, no allocation, no results file).
TEST_F(RunCommandTest, BadCommandLinesAreOneLineInPlainWords) {
  struct Case {
    std::string args;
    std::vector<std::string> expected;
  };
  const std::string job =
      "run --model " + model_ + " --input " + requests_ + " --output " + output_ + " ";
  const std::vector<Case> cases = {
      {"rnu --model m.h5", {"unknown command 'rnu'; did you mean 'run'?"}},
      {"frobnicate", {"unknown command 'frobnicate'; `lockstep --help` lists the commands"}},
      {job + "--thraeds 2", {"unknown flag '--thraeds' for `lockstep run`; did you mean "
                             "'--threads'?"}},
      {job + "--max_batch=4", {"unknown flag '--max_batch'", "did you mean '--max-batch'?"}},
      {"inspect --modle x.h5", {"unknown flag '--modle' for `lockstep inspect`"}},
      {job + "--threads 100000", {"--threads: must be a whole number from 1 to ",
                                  "CPUs this process may use), got 100000"}},
      {job + "--threads abc", {"--threads: must be a whole number", "got 'abc'"}},
      {job + "--threads 1.5", {"--threads: must be a whole number", "got '1.5'"}},
      {job + "--threads 0", {"--threads: must be a whole number from 1"}},
      {job + "--transport local --chips 100000", {"--chips: must be a whole number from 1 to"}},
      {job + "--max-batch 1000000000", {"--max-batch: must be a whole number from 1 to 4096"}},
      {job + "--kv-cache-mb 99999999999", {"--kv-cache-mb: must be a whole number from 0 to ",
                                           "(this machine's memory), got 99999999999"}},
      {job + "--kv-cache-mb -1", {"--kv-cache-mb: must be a whole number from 0"}},
      {job + "--max-step-tokens 99999999999999999999", {"--max-step-tokens: must be a whole "
                                                        "number from 1 to 65536"}},
      {job + "--tp 1000000", {"--tp: must be a whole number from 0 to 4096"}},
      {job + "--isa sse9", {"sse9"}},
      {"plan --preset tiny --chips 100000000", {"--chips: must be a whole number from 1 to "
                                                "1048576"}},
  };
  for (const Case& c : cases) {
    CommandRun run = Lockstep(c.args);
    EXPECT_EQ(run.exit_code, 2) << c.args << "\n" << run.stderr_text;
    std::vector<std::string> lines = Lines(run.stderr_text);
    ASSERT_EQ(lines.size(), 1u) << c.args << "\n" << run.stderr_text;
    EXPECT_EQ(lines[0].rfind("lockstep: error: ", 0), 0u) << lines[0];
    for (const std::string& expected : c.expected) {
      EXPECT_NE(lines[0].find(expected), std::string::npos)
          << c.args << "\nmessage: " << lines[0] << "\nexpected: " << expected;
    }
    EXPECT_EQ(lines[0].find("1.797"), std::string::npos) << lines[0];
    EXPECT_FALSE(std::filesystem::exists(output_)) << c.args;
  }
}

TEST_F(RunCommandTest, BadCommandLineExitsTwo) {
  EXPECT_EQ(Lockstep("run --input x --output y").exit_code, 2);
  EXPECT_EQ(RunJob(model_, "--threads 0").exit_code, 2);
  EXPECT_EQ(RunJob(model_, "--threads many").exit_code, 2);
  EXPECT_EQ(RunJob(model_, "--max-batch 0").exit_code, 2);
  CommandRun isa = RunJob(model_, "--isa sse9");
  EXPECT_EQ(isa.exit_code, 2);
  EXPECT_NE(isa.stderr_text.find("sse9"), std::string::npos);
}

// Every subcommand: a bad flag value, a missing or conflicting flag is exit
// 2 with one error line naming the flag, never 1 (bad input) or a crash.
TEST_F(RunCommandTest, BadCommandLinesOfEverySubcommandExitTwo) {
  const std::string out = dir_.File("x.h5");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"synth --preset llama-9 --output " + out, "llama-9"},
      {"synth --preset tiny --dtype q4 --output " + out, "q4"},
      {"synth --output " + out, "--config"},
      {"convert --from onnx in --output " + out, "onnx"},
      {"plan --chip host --chips 2", "exactly one of"},
      {"plan --preset tiny --chip host", "--chips"},
      {"plan --preset tiny --chip tpu --chips 2", "tpu"},
      {"plan --preset tiny --chip host --chips 3 --tp 3 --pp 1", "tp 3"},
      {"plan --preset tiny --chip host --chips 2 --objective fast", "fast"},
      {"calibrate --transport local", "--transport local"},
      {"run --model " + model_ + " --input " + requests_ + " --output " + output_ +
           " --transport pigeon",
       "pigeon"},
      {"run --model " + model_ + " --input " + requests_ + " --output " + output_ + " --chips 2",
       "--chips"},
      {"frobnicate", "unknown command 'frobnicate'"},
  };
  for (const auto& [args, names] : cases) {
    CommandRun run = Lockstep(args);
    EXPECT_EQ(run.exit_code, 2) << args << ": " << run.stderr_text;
    EXPECT_NE(run.stderr_text.find(names), std::string::npos) << args << ": " << run.stderr_text;
  }
}

// --no-progress: nothing on stderr when all goes well (no plan, load,
// progress, closing or calibration lines).
TEST_F(RunCommandTest, NoProgressPrintsNothingButErrors) {
  CommandRun run = Lockstep("run --no-progress --model " + model_ + " --input " + requests_ +
                            " --output " + output_);
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.stderr_text, "");
  WriteText(requests_, "{\"id\": \"bad\", \"prompt_tokens\": []}\n");
  run = Lockstep("run --no-progress --force --model " + model_ + " --input " + requests_ +
                 " --output " + output_);
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_EQ(Lines(run.stderr_text).size(), 1u) << run.stderr_text;  // the request's error
  EXPECT_NE(run.stderr_text.find("requests.jsonl:1"), std::string::npos) << run.stderr_text;
}

// What a new user reads: the plan line in the singular for one rank, the
// job's own token counts, the measured speed beside the predicted one, and
// the calibration hint once, not on every job.
TEST_F(RunCommandTest, JobLinesSpeakPlainly) {
  const std::string env = "env LOCKSTEP_HOST_SPEC=" + dir_.File("host.json") + " ";
  const std::string args =
      "run --model " + model_ + " --input " + requests_ + " --output " + output_ + " --max-batch 4 --force";
  CommandRun first = Lockstep(args, env);
  ASSERT_EQ(first.exit_code, 0) << first.stderr_text;
  const std::string& e = first.stderr_text;
  EXPECT_NE(e.find("this host is not calibrated"), std::string::npos) << e;
  EXPECT_NE(e.find("plan: tp 1 x pp 1 = 1 rank, 1 step in flight"), std::string::npos) << e;
  EXPECT_NE(e.find("layers 0-1 + embedding + lm_head, rank 0\n"), std::string::npos) << e;
  EXPECT_EQ(e.find("ranks 0-0"), std::string::npos) << e;
  EXPECT_EQ(e.find("(s)"), std::string::npos) << e;
  // requests.jsonl: prompts of 3 and 1 tokens, max_tokens 4 and 2.
  EXPECT_NE(e.find("predicted for 2 requests at once, prompts up to 3 tokens, up to 4 generated"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("measured (predicted): decode "), std::string::npos) << e;
  EXPECT_NE(e.find("2 results, 0 error records; "), std::string::npos) << e;
  CommandRun second = Lockstep(args, env);
  ASSERT_EQ(second.exit_code, 0) << second.stderr_text;
  EXPECT_EQ(second.stderr_text.find("not calibrated"), std::string::npos) << second.stderr_text;
}

// --summary: the job's JSON summary, consistent with its results file.
TEST_F(RunCommandTest, SummaryFileHasPercentilesMeasuredPredictedAndRanks) {
  const std::string summary_path = dir_.File("summary.json");
  CommandRun run = RunJob(model_, "--summary " + summary_path);
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const json s = json::parse(ReadText(summary_path));
  EXPECT_EQ(s["format"], "lockstep-job-summary");
  EXPECT_EQ(s["requests"]["completed"], 2);
  int64_t generated = 0;
  for (const std::string& line : Lines(ReadText(output_))) {
    generated += static_cast<int64_t>(json::parse(line)["tokens"].size());
  }
  EXPECT_EQ(s["tokens"]["generated"], generated);
  EXPECT_EQ(s["ttft_ms"]["count"], 2);
  EXPECT_EQ(s["inter_token_ms"]["count"], generated - 2);  // gaps between a request's tokens
  for (const char* key : {"ttft_ms", "inter_token_ms"}) {
    const json& d = s[key];
    EXPECT_LE(d["p50"].get<double>(), d["p90"].get<double>()) << key;
    EXPECT_LE(d["p90"].get<double>(), d["p99"].get<double>()) << key;
    EXPECT_LE(d["p99"].get<double>(), d["max"].get<double>()) << key;
    EXPECT_GT(d["p50"].get<double>(), 0.0) << key;
  }
  EXPECT_GT(s["measured"]["tokens_per_s"].get<double>(), 0.0);
  EXPECT_GT(s["predicted"]["decode_ms_per_token"].get<double>(), 0.0);
  EXPECT_EQ(s["plan"]["prompt_length"], 3);
  EXPECT_EQ(s["plan"]["generated_length"], 4);
  ASSERT_EQ(s["ranks"].size(), 1u);
  EXPECT_GT(s["ranks"][0]["steps"].get<int64_t>(), 0);
  EXPECT_GE(s["ranks"][0]["threads"].get<int>(), 1);
}

// --threads auto (the default) takes the CPUs the rank may run on, and the
// bits do not depend on the thread count.
TEST_F(RunCommandTest, DefaultThreadsAreTheCoresAvailableAndGiveTheSameBits) {
  auto run_with = [&](const std::string& prefix, const std::string& flags) {
    const std::string summary_path = dir_.File("threads.json");
    CommandRun run = Lockstep("run --no-progress --force --hash-logits --no-timings --model " + model_ +
                                  " --input " + requests_ + " --output " + output_ + " --summary " +
                                  summary_path + " " + flags,
                              prefix);
    EXPECT_EQ(run.exit_code, 0) << flags << ": " << run.stderr_text;
    std::vector<std::string> lines = Lines(ReadText(output_));
    std::sort(lines.begin(), lines.end());
    const int threads = json::parse(ReadText(summary_path))["plan"]["threads_per_rank"];
    return std::make_pair(lines, threads);
  };
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  const auto [automatic, auto_threads] = run_with("", "");
  EXPECT_EQ(auto_threads, CPU_COUNT(&set));
  const auto [one, one_threads] = run_with("", "--threads 1");
  EXPECT_EQ(one_threads, 1);
  const auto [three, three_threads] = run_with("", "--threads 3");
  EXPECT_EQ(three_threads, 3);
  EXPECT_EQ(automatic, one);
  EXPECT_EQ(automatic, three);
  // Bound to one CPU (as a cpuset or a launcher's binding would), auto is 1.
  const auto [bound, bound_threads] = run_with("taskset -c 0 ", "");
  EXPECT_EQ(bound_threads, 1);
  EXPECT_EQ(automatic, bound);
}

}  // namespace
}  // namespace lockstep::runtime
