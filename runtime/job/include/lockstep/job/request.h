// Generation requests of a batch job, and the JSONL request file.
//
// A request file has one JSON object per line (blank lines are skipped). Two
// forms are accepted (docs/batch-jobs.md has the full reference):
//
//   OpenAI batch file form (POST /v1/completions):
//     {"custom_id": "r1", "method": "POST", "url": "/v1/completions",
//      "body": {"prompt": [1, 15, 27], "max_tokens": 32, "temperature": 0.7,
//               "top_p": 0.9, "seed": 5, "stop": null}}
//   OpenAI batch file form of a chat request (POST /v1/chat/completions):
//     {"custom_id": "c1", "method": "POST", "url": "/v1/chat/completions",
//      "body": {"messages": [{"role": "system", "content": "Be brief."},
//                            {"role": "user", "content": "Hi!"}],
//               "max_tokens": 64, "temperature": 0}}
//   plain form:
//     {"id": "r1", "prompt_tokens": [1, 15, 27], "max_tokens": 32,
//      "temperature": 0, "top_k": 0, "top_p": 1, "seed": 0,
//      "stop_token_ids": [13], "ignore_eos": false}
//     {"id": "c2", "messages": [{"role": "user", "content": "Hi!"}]}
//
// Both forms take the same generation fields (in "body" for the OpenAI form);
// a missing field takes the OpenAI API default: max_tokens 16, temperature 1,
// top_p 1, top_k 0 (off), seed 0, no stop token ids, no stop strings,
// echo false, ignore_eos false. The prompt is token ids ("prompt_tokens", or
// "prompt" as a list) or text ("prompt" as a string); text, "stop" strings
// and "echo" need the model's tokenizer (docs/tokenizers.md). A chat request
// ("messages") is rendered with the model's chat template, the assistant's
// turn opened (add_generation_prompt), and its prompt is the ids of that
// text (special-token text becoming the tokens); it also stops at the
// model's end-of-turn tokens (docs/batch-jobs.md, "Chat requests").
//
// Parsing is split in three so that the parts can be tested alone:
// ParseRequestLine checks one line on its own (syntax, types, ranges that do
// not depend on the model); TokenizeRequest turns a text prompt into ids
// with the model's tokenizer; ValidateRequestForModel checks it against the
// model (token ids inside the vocabulary, prompt + max_tokens inside the
// context). Error messages name the line ("requests.jsonl:7: ...") and the
// field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/partitioner/model_config.h"
#include "lockstep/tokenizer/chat_template.h"

namespace lockstep::runtime {

class Tokenizer;

struct Request {
  std::string id;    // "custom_id" or "id"; unique within a file
  int64_t line = 0;  // 1-based line of the request file
  // Never empty once TokenizeRequest has run; empty after ParseRequestLine
  // when the prompt is text.
  std::vector<int32_t> prompt_tokens;
  // The prompt as given when it was text (tokenized with the tokenizer's
  // own special tokens: BOS for Llama, none for Qwen).
  std::optional<std::string> prompt_text;
  int64_t max_tokens = 16;              // >= 1
  float temperature = 1.0f;             // >= 0; 0 is greedy (argmax)
  int top_k = 0;                        // 0: no top-k cut (-1 is read as 0)
  float top_p = 1.0f;                   // in (0, 1]
  uint64_t seed = 0;                    // negative JSON seeds wrap modulo 2^64
  std::vector<int32_t> stop_token_ids;  // generation stops after emitting one
  bool ignore_eos = false;              // true: the model's EOS does not stop
  // Generation stops when the completion text contains one of these
  // (non-empty) strings; the result's text ends before it.
  std::vector<std::string> stop;
  bool echo = false;  // the result's text starts with the prompt's text
  // A chat request: its conversation (roles system, user, assistant; string
  // contents), rendered into prompt_tokens by TokenizeRequest.
  std::optional<std::vector<ChatMessage>> messages;

  bool chat() const { return messages.has_value(); }
  // Whether the request needs a tokenizer (text prompt, chat, stop strings,
  // echo).
  bool NeedsTokenizer() const { return prompt_text.has_value() || chat() || !stop.empty() || echo; }
};

// What turns text prompts and conversations into ids: the model's tokenizer
// and its chat template, either of which may be missing.
struct PromptEncoder {
  const Tokenizer* tokenizer = nullptr;
  const ChatTemplate* chat_template = nullptr;
  // Why chat_template is null although the model stores one (it did not
  // parse): the error chat requests get. "" when the model has none.
  std::string chat_template_error;
};

// The tokens that end an assistant's turn for a chat request: the
// tokenizer's EOS and the special tokens llama.cpp treats as end of
// generation (<|eot_id|>, <|eom_id|>, <|im_end|>, <|end|>, <end_of_turn>,
// <|endoftext|>, <EOT>) that the vocabulary has.
std::vector<int32_t> EndOfTurnTokens(const Tokenizer& tokenizer);

// One line that could not become a request: the error record written to the
// results file in place of a result.
struct RequestError {
  std::optional<std::string> id;  // when the line had a readable id
  int64_t line = 0;
  std::string message;  // one line, names the field
};

// Parses one line (without its newline). `source` and `line` locate it in
// messages ("source:line: ..."). Returns InvalidArgument for a malformed line,
// a wrong type, a missing field or a value out of range.
Result<Request> ParseRequestLine(std::string_view text, std::string_view source, int64_t line);

// Encodes a text prompt into prompt_tokens with `tokenizer` (nullptr: the
// model has none). FailedPrecondition when the request needs a tokenizer
// and there is none; InvalidArgument when the prompt is not valid UTF-8 or
// encodes to no token. A request without text is left as it is.
Status TokenizeRequest(Request* request, const Tokenizer* tokenizer, std::string_view source);
// The same with the chat template too: a chat request is rendered
// (FailedPrecondition when the model has no tokenizer or no chat template,
// InvalidArgument naming 'messages' when the template fails on it), its
// prompt is the rendered text's ids (Tokenizer::EncodeSpecial), and its
// end-of-turn tokens join stop_token_ids.
Status TokenizeRequest(Request* request, const PromptEncoder& encoder, std::string_view source);

// Checks a parsed request against the model: every prompt and stop token id
// in [0, vocab_size), and prompt length + max_tokens <= the model's
// ContextLength() (max_position_embeddings, extended by linear, dynamic and
// yarn rope scaling). OutOfRange otherwise.
Status ValidateRequestForModel(const Request& request, const partitioner::ModelConfig& config,
                               std::string_view source);

// All requests of a file, and the lines that failed, in file order. Duplicate
// ids are errors on their second and later occurrences. Every request goes
// through TokenizeRequest with `tokenizer` (which may be nullptr), and when
// `config` is given, through ValidateRequestForModel.
struct RequestFile {
  std::vector<Request> requests;
  std::vector<RequestError> errors;
};

// Reads and parses `path`. Only an unreadable file is an error Status; bad
// lines become RequestErrors.
Result<RequestFile> ReadRequestFile(const std::string& path, const partitioner::ModelConfig* config,
                                    const Tokenizer* tokenizer = nullptr);
// The same, from text already in memory (`source` names it in messages).
RequestFile ParseRequestText(std::string_view text, std::string_view source,
                             const partitioner::ModelConfig* config,
                             const Tokenizer* tokenizer = nullptr);
RequestFile ParseRequestText(std::string_view text, std::string_view source,
                             const partitioner::ModelConfig* config, const PromptEncoder& encoder);

}  // namespace lockstep::runtime
