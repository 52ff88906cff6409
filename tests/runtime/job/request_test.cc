// Request parsing: both forms, defaults, and every error.
#include "lockstep/job/request.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "lockstep/job/result_writer.h"

#include "lockstep/tokenizer/chat_template.h"
#include "lockstep/tokenizer/tokenizer.h"
#include "runtime/tiny_tokenizer.h"

namespace lockstep::runtime {
namespace {

partitioner::ModelConfig SmallConfig() {
  partitioner::ModelConfig c;
  c.vocab_size = 100;
  c.max_position_embeddings = 32;
  return c;
}

Request MustParse(std::string_view line) {
  Result<Request> r = ParseRequestLine(line, "in.jsonl", 3);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? r.value() : Request{};
}

// The message of a line that must fail; checks it names the line.
std::string ErrorOf(std::string_view line) {
  Result<Request> r = ParseRequestLine(line, "in.jsonl", 3);
  EXPECT_FALSE(r.ok()) << line;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind("in.jsonl:3: ", 0), 0u) << r.status().message();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  return r.status().message();
}

TEST(RequestTest, PlainFormAllFields) {
  Request r = MustParse(
      R"({"id": "a", "prompt_tokens": [1, 2, 3], "max_tokens": 5, "temperature": 0.5,
          "top_k": 7, "top_p": 0.9, "seed": 42, "stop_token_ids": [9, 8], "ignore_eos": true})");
  EXPECT_EQ(r.id, "a");
  EXPECT_EQ(r.line, 3);
  EXPECT_EQ(r.prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(r.max_tokens, 5);
  EXPECT_FLOAT_EQ(r.temperature, 0.5f);
  EXPECT_EQ(r.top_k, 7);
  EXPECT_FLOAT_EQ(r.top_p, 0.9f);
  EXPECT_EQ(r.seed, 42u);
  EXPECT_EQ(r.stop_token_ids, (std::vector<int32_t>{9, 8}));
  EXPECT_TRUE(r.ignore_eos);
}

TEST(RequestTest, PlainFormDefaultsAreOpenAis) {
  Request r = MustParse(R"({"id": 17, "prompt_tokens": [4]})");
  EXPECT_EQ(r.id, "17");  // integer ids become their decimal text
  EXPECT_EQ(r.max_tokens, 16);
  EXPECT_EQ(r.temperature, 1.0f);
  EXPECT_EQ(r.top_p, 1.0f);
  EXPECT_EQ(r.top_k, 0);
  EXPECT_EQ(r.seed, 0u);
  EXPECT_TRUE(r.stop_token_ids.empty());
  EXPECT_FALSE(r.ignore_eos);
}

TEST(RequestTest, PlainFormAcceptsPromptAsTokenList) {
  Request r = MustParse(R"({"id": "p", "prompt": [5, 6], "top_k": -1, "seed": -1})");
  EXPECT_EQ(r.prompt_tokens, (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(r.top_k, 0);
  EXPECT_EQ(r.seed, ~uint64_t{0});  // negative seeds wrap modulo 2^64
}

TEST(RequestTest, OpenAiBatchForm) {
  Request r = MustParse(
      R"({"custom_id": "req-1", "method": "POST", "url": "/v1/completions",
          "body": {"model": "x", "prompt": [10, 11], "max_tokens": 3, "temperature": 0,
                   "top_p": 0.5, "seed": 9, "stop": null, "n": 1, "stream": false,
                   "logprobs": null, "echo": false, "presence_penalty": 0,
                   "stop_token_ids": [2], "ignore_eos": false, "user": "ignored"}})");
  EXPECT_EQ(r.id, "req-1");
  EXPECT_EQ(r.prompt_tokens, (std::vector<int32_t>{10, 11}));
  EXPECT_EQ(r.max_tokens, 3);
  EXPECT_EQ(r.temperature, 0.0f);
  EXPECT_FLOAT_EQ(r.top_p, 0.5f);
  EXPECT_EQ(r.seed, 9u);
  EXPECT_EQ(r.stop_token_ids, (std::vector<int32_t>{2}));
}

TEST(RequestTest, OpenAiFormWithoutMethodAndUrlAndEmptyStop) {
  Request r = MustParse(R"({"custom_id": "x", "body": {"prompt": [1], "stop": []}})");
  EXPECT_EQ(r.id, "x");
  MustParse(R"({"custom_id": "x", "body": {"prompt": [1], "stop": ""}})");
}

TEST(RequestTest, TextPromptStopStringsAndEcho) {
  Request r = MustParse(
      R"({"custom_id": "t", "body": {"prompt": "Once upon a time", "stop": ["\n\n", "."],
                                     "echo": true}})");
  EXPECT_EQ(r.prompt_text, "Once upon a time");
  EXPECT_TRUE(r.prompt_tokens.empty());  // until TokenizeRequest
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n\n", "."}));
  EXPECT_TRUE(r.echo);
  EXPECT_TRUE(r.NeedsTokenizer());
  r = MustParse(R"({"id": "s", "prompt_tokens": [1], "stop": "\n"})");
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n"}));
  EXPECT_FALSE(r.echo);
  EXPECT_TRUE(r.NeedsTokenizer());
  EXPECT_FALSE(MustParse(R"({"id": "s", "prompt_tokens": [1], "stop": ""})").NeedsTokenizer());
}

TEST(RequestTest, TokenizeRequestUsesTheModelsTokenizer) {
  Result<std::unique_ptr<Tokenizer>> tiny = CreateTokenizer(testing::TinyHfData());
  ASSERT_TRUE(tiny.ok()) << tiny.status().ToString();
  Request r = MustParse(R"({"id": "t", "prompt": "hello world", "stop": "d"})");
  ASSERT_TRUE(TokenizeRequest(&r, tiny->get(), "in.jsonl").ok());
  EXPECT_EQ(r.prompt_tokens, (std::vector<int32_t>{265, 259, 264}));  // BOS by its template

  // Without a tokenizer: one error per feature that needs one, naming the line.
  for (const auto& [line, what] : std::vector<std::pair<std::string, std::string>>{
           {R"({"id": "t", "prompt": "hello"})", "a text prompt needs a tokenizer"},
           {R"({"id": "t", "prompt_tokens": [1], "stop": ["x"]})", "'stop' strings needs"},
           {R"({"id": "t", "prompt_tokens": [1], "echo": true})", "'echo' needs"}}) {
    Request q = MustParse(line);
    Status s = TokenizeRequest(&q, nullptr, "in.jsonl");
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << line;
    EXPECT_EQ(s.message().rfind("in.jsonl:3: " + what, 0), 0u) << s.message();
  }
  // Token prompts need none.
  Request plain = MustParse(R"({"id": "t", "prompt_tokens": [1]})");
  EXPECT_TRUE(TokenizeRequest(&plain, nullptr, "in.jsonl").ok());
  // Invalid UTF-8 in the prompt names the field.
  // (A JSON line cannot carry it -- the parser refuses the line -- but the
  // API can.)
  Request bad = plain;
  bad.prompt_text = "a\xff";
  Status s = TokenizeRequest(&bad, tiny->get(), "in.jsonl");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("in.jsonl:3: field 'prompt': "), std::string::npos) << s.message();

  // In a file: text lines become requests with a tokenizer, errors without.
  const std::string text =
      "{\"id\": \"a\", \"prompt\": \"hello\"}\n"
      "{\"id\": \"b\", \"prompt_tokens\": [1]}\n";
  RequestFile with = ParseRequestText(text, "in.jsonl", nullptr, tiny->get());
  ASSERT_EQ(with.requests.size(), 2u);
  EXPECT_EQ(with.requests[0].prompt_tokens, (std::vector<int32_t>{265, 259}));
  RequestFile without = ParseRequestText(text, "in.jsonl", nullptr, nullptr);
  ASSERT_EQ(without.requests.size(), 1u);
  ASSERT_EQ(without.errors.size(), 1u);
  EXPECT_EQ(without.errors[0].id, "a");
}

TEST(RequestTest, Errors) {
  struct Case {
    const char* line;
    const char* expected;  // substring of the message
  };
  const Case cases[] = {
      {R"({"id": "a", "prompt_tokens": [1,)", "not valid JSON"},
      {R"([1, 2])", "expected a JSON object"},
      {R"({"prompt_tokens": [1]})", "field 'id' is missing"},
      {R"({"id": "", "prompt_tokens": [1]})", "field 'id' must be a non-empty string"},
      {R"({"id": 1.5, "prompt_tokens": [1]})", "field 'id'"},
      {R"({"id": "a"})", "field 'prompt_tokens' is missing"},
      {R"({"id": "a", "prompt_tokens": []})", "is empty"},
      {R"({"id": "a", "prompt_tokens": "hello"})", "must be a list of token ids"},
      {R"({"id": "a", "prompt": ""})", "'prompt' is empty"},
      {R"({"id": "a", "prompt_tokens": [1], "prompt": [1]})", "not both"},
      {R"({"id": "a", "prompt_tokens": [1, -2]})", "element 1 is -2"},
      {R"({"id": "a", "prompt_tokens": [1, 2.5]})", "element 1 must be an integer"},
      {R"({"id": "a", "prompt_tokens": [1, 4294967296]})", "element 1 is 4294967296"},
      {R"({"id": "a", "prompt_tokens": [[1], [2]]})", "several prompts"},
      {R"({"id": "a", "prompt_tokens": [1], "max_tokens": 0})", "field 'max_tokens' is 0"},
      {R"({"id": "a", "prompt_tokens": [1], "max_tokens": "5"})",
       "'max_tokens' must be an integer"},
      {R"({"id": "a", "prompt_tokens": [1], "temperature": -1})", "'temperature' is -1"},
      {R"({"id": "a", "prompt_tokens": [1], "temperature": "hot"})", "must be a number"},
      {R"({"id": "a", "prompt_tokens": [1], "top_p": 0})", "'top_p' is 0"},
      {R"({"id": "a", "prompt_tokens": [1], "top_p": 1.5})", "'top_p' is 1.5"},
      {R"({"id": "a", "prompt_tokens": [1], "top_k": -2})", "'top_k' is -2"},
      {R"({"id": "a", "prompt_tokens": [1], "seed": 1.5})", "'seed' must be an integer"},
      {R"({"id": "a", "prompt_tokens": [1], "stop_token_ids": [1, "x"]})", "stop_token_ids"},
      {R"({"id": "a", "prompt_tokens": [1], "ignore_eos": 1})", "'ignore_eos' must be true"},
      {R"({"id": "a", "prompt_tokens": [1], "stop": 13})", "'stop' must be a string or a list"},
      {R"({"id": "a", "prompt_tokens": [1], "stop": ["x", ""]})", "'stop' element 1 must be"},
      {R"({"id": "a", "prompt_tokens": [1], "stop": ["x", 5]})", "'stop' element 1 must be"},
      {R"({"id": "a", "prompt_tokens": [1], "n": 2})", "'n' must be 1"},
      {R"({"id": "a", "prompt_tokens": [1], "best_of": 3})", "'best_of' must be 1"},
      {R"({"id": "a", "prompt_tokens": [1], "echo": 1})", "'echo' must be true or false"},
      {R"({"id": "a", "prompt_tokens": [1], "stream": true})", "'stream' is not supported"},
      {R"({"id": "a", "prompt_tokens": [1], "logprobs": 5})", "'logprobs' is not supported"},
      {R"({"id": "a", "prompt_tokens": [1], "presence_penalty": 0.5})", "presence_penalty"},
      {R"({"id": "a", "prompt_tokens": [1], "logit_bias": {"5": 1}})", "logit_bias"},
      {R"({"id": "a", "prompt_tokens": [1], "suffix": "x"})", "suffix"},
      {R"({"custom_id": 5, "body": {"prompt": [1]}})", "'custom_id' must be a non-empty string"},
      {R"({"custom_id": "a", "method": "GET", "body": {"prompt": [1]}})", "'method' must be"},
      {R"({"custom_id": "a", "url": "/v1/chat/completions", "body": {"prompt": [1]}})",
       "'body.messages' is missing (url \"/v1/chat/completions\")"},
      {R"({"custom_id": "a", "url": "/v1/embeddings", "body": {"prompt": [1]}})",
       "supported: \"/v1/completions\" and \"/v1/chat/completions\""},
      {R"({"custom_id": "a", "url": "/v1/completions", "body": {"messages": []}})",
       "'body.messages' needs url \"/v1/chat/completions\""},
      {R"({"id": "a", "messages": []})", "'messages' must be a non-empty list"},
      {R"({"id": "a", "messages": {"role": "user"}})", "'messages' must be a non-empty list"},
      {R"({"id": "a", "messages": [5]})", "'messages[0]' must be an object"},
      {R"({"id": "a", "messages": [{"content": "x"}]})", "'messages[0].role' must be"},
      {R"({"id": "a", "messages": [{"role": "tool", "content": "x"}]})",
       "'messages[0].role' is \"tool\""},
      {R"({"id": "a", "messages": [{"role": "user"}]})",
       "'messages[0].content' must be a string, got nothing"},
      {R"({"id": "a", "messages": [{"role": "user", "content": null}]})",
       "'messages[0].content' must be a string"},
      {R"({"id": "a", "messages": [{"role": "user", "content": "x", "tool_calls": []}]})",
       "'messages[0].tool_calls' is not supported"},
      {R"({"id": "a", "messages": [{"role": "user", "content": "x"}], "prompt_tokens": [1]})",
       "give either 'messages' or 'prompt_tokens'"},
      {R"({"id": "a", "messages": [{"role": "user", "content": "x"}], "tools": []})",
       "'tools' is not supported"},
      {R"({"id": "a", "messages": [{"role": "user", "content": "x"}], "echo": true})",
       "'echo' is not supported for chat requests"},
      {R"({"id": "a", "messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 0})",
       "'max_completion_tokens' is 0"},
      {R"({"custom_id": "a"})", "'body' is missing"},
      {R"({"custom_id": "a", "body": {}})", "'body.prompt' is missing"},
      {R"({"custom_id": "a", "body": {"prompt": 5}})", "'body.prompt' must be a list"},
      {R"({"custom_id": "a", "body": {"prompt": [1], "max_tokens": -3}})",
       "'body.max_tokens' is -3"},
      {R"({"custom_id": "a", "body": {"prompt": [1], "stop": [null]}})", "'body.stop' element 0"},
  };
  for (const Case& c : cases) {
    std::string message = ErrorOf(c.line);
    EXPECT_NE(message.find(c.expected), std::string::npos)
        << "line: " << c.line << "\nmessage: " << message << "\nexpected: " << c.expected;
  }
}

// The hostile lines of issue 15: each becomes an error record naming the
// field (and keeping the id when it was read), never an abort, a crash or a
// silently ignored field.
TEST(RequestTest, HostileLinesGetAnErrorRecordNamingTheField) {
  struct Case {
    std::string line;
    std::vector<std::string> expected;  // substrings of the message
    std::optional<std::string> id;
  };
  const std::string deep_array = std::string(100000, '[') + std::string(100000, ']');
  const std::vector<Case> cases = {
      {R"({"id": "a", "prompt_tokens": [1], "temperature": 1e400})",
       {"field 'temperature'", "1e400 is too large"}, "a"},
      {R"({"custom_id": "o", "body": {"prompt": [1], "temperature": -1e999}})",
       {"field 'body.temperature'", "-1e999 is too large"}, "o"},
      {R"({"id": "a", "prompt_tokens": [1, 2e400]})", {"field 'prompt_tokens[]'", "too large"},
       "a"},
      {R"({"id": "a", "max_tokens": 123456789012345678901234567890, "prompt_tokens": [1]})",
       {"field 'max_tokens' must be an integer"}, "a"},
      {deep_array, {"nested deeper than 32 levels"}, std::nullopt},
      {R"({"id": "deep", "prompt_tokens": [1], "stop": )" + deep_array + "}",
       {"nested deeper than 32 levels", "(in field 'stop[]"}, "deep"},
      {"{\"id\": \"a\xff\", \"prompt_tokens\": [1]}",
       {"field 'id': not valid JSON", "ill-formed UTF-8", "\\xff"}, std::nullopt},
      {"{\"id\": \"t\", \"prompt\": \"caf\xc3\", \"max_tokens\": 2}",
       {"field 'prompt': not valid JSON", "UTF-8"}, "t"},
      {"{\"id\": \"t\", \"prompt\": \"\xed\xa0\x80\"}", {"field 'prompt'", "UTF-8"}, "t"},
      {R"({"id": "t", "prompt": "\ud800"})", {"field 'prompt'", "surrogate"}, "t"},
      {R"({"id": "a", "prompt_tokens": [1], "temprature": 0})",
       {"field 'temprature' is not a request field; did you mean 'temperature'?"}, "a"},
      {R"({"id": "a", "prompt_tokens": [1], "max_token": 3})",
       {"field 'max_token' is not a request field; did you mean 'max_tokens'?"}, "a"},
      {R"({"id": "a", "prompt_tokens": [1], "frobnicate": 3})",
       {"field 'frobnicate' is not a request field"}, "a"},
      {R"({"custom_id": "o", "body": {"prompt": [1], "top-p": 0.5}})",
       {"field 'body.top-p' is not a request field; did you mean 'top_p'?"}, "o"},
      {R"({"custom_id": "o", "body": {"prompt_tokens": [1]}})",
       {"field 'body.prompt_tokens' is not a request field",
        "the OpenAI form takes token ids as 'body.prompt'"},
       "o"},
      {R"({"custom_id": "o", "max_tokens": 3, "body": {"prompt": [1]}})",
       {"field 'max_tokens' is not a request field", "generation fields go in 'body'"}, "o"},
  };
  for (const Case& c : cases) {
    RequestFile f = ParseRequestText(c.line + "\n", "in.jsonl", nullptr);
    ASSERT_EQ(f.errors.size(), 1u) << c.line.substr(0, 80);
    EXPECT_TRUE(f.requests.empty());
    const RequestError& e = f.errors[0];
    EXPECT_EQ(e.line, 1);
    EXPECT_EQ(e.id, c.id) << e.message;
    EXPECT_EQ(e.message.rfind("in.jsonl:1: ", 0), 0u) << e.message;
    EXPECT_EQ(e.message.find('\n'), std::string::npos) << e.message;
    EXPECT_LT(e.message.size(), 400u) << e.message;
    for (const std::string& expected : c.expected) {
      EXPECT_NE(e.message.find(expected), std::string::npos)
          << "message: " << e.message << "\nexpected: " << expected;
    }
    // The error record is valid JSON (no raw invalid UTF-8) and reads back.
    const std::string record = FormatErrorLine(e);
    nlohmann::json parsed = nlohmann::json::parse(record, nullptr, false);
    ASSERT_TRUE(parsed.is_object()) << record;
    EXPECT_EQ(parsed["error"].get<std::string>(), e.message);
  }
  // The fields every documented request uses are all known.
  MustParse(R"({"id": "a", "prompt_tokens": [1], "model": "m", "user": "u", "n": 1,
                "best_of": 1, "stream": false, "logprobs": null, "suffix": "", "echo": false,
                "presence_penalty": 0, "frequency_penalty": 0, "logit_bias": {}})");
}

TEST(RequestTest, ChatRequestsAreRenderedWithTheChatTemplate) {
  Request openai = MustParse(
      R"({"custom_id": "c", "url": "/v1/chat/completions", "body": {"messages": [)"
      R"({"role": "system", "content": "S"}, {"role": "user", "content": "hello world"}],)"
      R"( "max_completion_tokens": 5, "temperature": 0}})");
  ASSERT_TRUE(openai.chat());
  EXPECT_TRUE(openai.NeedsTokenizer());
  EXPECT_EQ(openai.max_tokens, 5);
  ASSERT_EQ(openai.messages->size(), 2u);
  EXPECT_EQ((*openai.messages)[1].role, "user");
  // The url may be left out: "messages" says chat.
  EXPECT_TRUE(MustParse(R"({"custom_id": "c", "body": {"messages": [{"role": "user", )"
                        R"("content": "x"}]}})")
                  .chat());

  Result<std::unique_ptr<Tokenizer>> tiny = CreateTokenizer(testing::TinyHfData());
  ASSERT_TRUE(tiny.ok()) << tiny.status().ToString();
  Result<ChatTemplate> tmpl = ChatTemplate::Parse(
      "{{ bos_token }}{% for m in messages %}<tag>{{ m.content }}{{ eos_token }}{% endfor %}"
      "{% if add_generation_prompt %}<mask>{% endif %}");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().ToString();
  PromptEncoder encoder{tiny->get(), &*tmpl, ""};
  Request r = openai;
  ASSERT_TRUE(TokenizeRequest(&r, encoder, "in.jsonl").ok());
  // <|bos|> <tag> S <|eos|> <tag> hello world <|eos|> <mask>: special-token
  // text becomes the tokens, nothing is added around the rendered text.
  EXPECT_EQ(r.prompt_tokens, (std::vector<int32_t>{265, 267, 'S', 266, 267, 259, 264, 266, 268}));
  EXPECT_EQ(r.stop_token_ids, (std::vector<int32_t>{266}));  // EOS ends the turn

  // No template; a template that did not parse; one that raises.
  Request q = openai;
  Status s = TokenizeRequest(&q, PromptEncoder{tiny->get(), nullptr, ""}, "in.jsonl");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message().rfind("in.jsonl:3: a chat request ('messages') needs a chat template and "
                              "the model file has none",
                              0),
            0u)
      << s.message();
  s = TokenizeRequest(&q, PromptEncoder{tiny->get(), nullptr, "chat_template: line 2: x"},
                      "in.jsonl");
  EXPECT_EQ(s.message(), "in.jsonl:3: field 'messages': the model's chat_template: line 2: x");
  Result<ChatTemplate> raising =
      ChatTemplate::Parse("\n{{ raise_exception('no system messages') }}");
  ASSERT_TRUE(raising.ok());
  s = TokenizeRequest(&q, PromptEncoder{tiny->get(), &*raising, ""}, "in.jsonl");
  EXPECT_EQ(s.message(),
            "in.jsonl:3: field 'messages': chat_template: line 2: raise_exception: no system "
            "messages");
  s = TokenizeRequest(&q, PromptEncoder{nullptr, &*tmpl, ""}, "in.jsonl");
  EXPECT_EQ(s.message().rfind("in.jsonl:3: a chat request ('messages') needs a tokenizer", 0), 0u)
      << s.message();
}

TEST(RequestTest, ModelChecks) {
  const partitioner::ModelConfig c = SmallConfig();
  Request r = MustParse(R"({"id": "a", "prompt_tokens": [0, 99], "max_tokens": 30})");
  EXPECT_TRUE(ValidateRequestForModel(r, c, "in.jsonl").ok());

  r.max_tokens = 31;  // 2 + 31 = 33 > 32
  Status s = ValidateRequestForModel(r, c, "in.jsonl");
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("in.jsonl:3: prompt (2 tokens) + max_tokens (31) = 33 exceeds the "
                             "model's context of 32"),
            std::string::npos)
      << s.message();

  r = MustParse(R"({"id": "a", "prompt_tokens": [0, 100]})");
  s = ValidateRequestForModel(r, c, "in.jsonl");
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("prompt element 1 is token id 100, outside the model's vocabulary "
                             "of 100"),
            std::string::npos)
      << s.message();

  r = MustParse(R"({"id": "a", "prompt_tokens": [0], "stop_token_ids": [250]})");
  s = ValidateRequestForModel(r, c, "in.jsonl");
  EXPECT_NE(s.message().find("stop_token_ids element 0 is token id 250"), std::string::npos);
}

TEST(RequestTest, FileKeepsGoodLinesAndRecordsBadOnes) {
  const partitioner::ModelConfig c = SmallConfig();
  const std::string text =
      "{\"id\": \"a\", \"prompt_tokens\": [1]}\n"
      "\n"                                             // blank: skipped, still counted
      "{\"id\": \"b\", \"prompt_tokens\": [1, \n"      // malformed
      "{\"id\": \"c\", \"prompt_tokens\": [500]}\r\n"  // out of vocabulary (CRLF tolerated)
      "{\"id\": \"a\", \"prompt_tokens\": [2]}\n"      // duplicate id
      "{\"id\": \"d\", \"prompt_tokens\": [1], \"max_tokens\": 40}\n"  // past the context
      "   \n"
      "{\"custom_id\": \"e\", \"body\": {\"prompt\": [3]}}";  // no final newline
  RequestFile f = ParseRequestText(text, "in.jsonl", &c);
  ASSERT_EQ(f.requests.size(), 2u);
  EXPECT_EQ(f.requests[0].id, "a");
  EXPECT_EQ(f.requests[0].line, 1);
  EXPECT_EQ(f.requests[1].id, "e");
  EXPECT_EQ(f.requests[1].line, 8);
  ASSERT_EQ(f.errors.size(), 4u);
  EXPECT_EQ(f.errors[0].line, 3);
  EXPECT_EQ(f.errors[0].id, "b");  // read before the line broke off
  EXPECT_NE(f.errors[0].message.find("in.jsonl:3: field 'prompt_tokens[]': not valid JSON"),
            std::string::npos)
      << f.errors[0].message;
  EXPECT_EQ(f.errors[1].line, 4);
  EXPECT_EQ(f.errors[1].id, "c");
  EXPECT_NE(f.errors[1].message.find("outside the model's vocabulary"), std::string::npos);
  EXPECT_EQ(f.errors[2].line, 5);
  EXPECT_EQ(f.errors[2].id, "a");
  EXPECT_NE(f.errors[2].message.find("already used on line 1"), std::string::npos);
  EXPECT_EQ(f.errors[3].line, 6);
  EXPECT_NE(f.errors[3].message.find("exceeds the model's context"), std::string::npos);
}

TEST(RequestTest, MissingFile) {
  Result<RequestFile> f = ReadRequestFile("/nonexistent/requests.jsonl", nullptr);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("/nonexistent/requests.jsonl"), std::string::npos);
}

}  // namespace
}  // namespace lockstep::runtime
