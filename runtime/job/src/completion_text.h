// The text of one request's completion, built as its tokens are generated:
// the `text` of a batch job's result, "stop" strings and "echo"
// (docs/batch-jobs.md).
//
// Text is bytes: Tokenizer::DecodeToken of each generated token, appended
// (special tokens add nothing). A stop string is searched for in those bytes
// after every token, so it is found even when it spans tokens or cuts a
// multi-byte character; the result's text ends right before the first stop
// string (OpenAI's convention), while the result's tokens keep every token
// generated, the one that completed the stop string included.
//
// Thread safety: one thread at a time. The tokenizer and the request must
// outlive the object.
#pragma once

#include <cstdint>
#include <string>

#include "lockstep/job/request.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime {

class CompletionText {
 public:
  CompletionText(const Tokenizer& tokenizer, const Request& request);

  // Adds one generated token. Returns true when the completion now contains
  // one of the request's stop strings: generation must stop (later calls
  // change nothing).
  bool Append(int32_t token);

  // The result's text: the prompt's text when the request asked for echo
  // (the prompt as given, or its ids decoded without special tokens), then
  // the completion up to the first stop string; invalid UTF-8 (a character
  // cut by max_tokens) replaced by U+FFFD.
  std::string Text() const;

  bool stopped() const { return stop_at_ != std::string::npos; }

 private:
  const Tokenizer* tokenizer_;  // not owned (pointers, so that the object can be assigned)
  const Request* request_;
  std::string completion_;
  size_t stop_at_ = std::string::npos;  // where the first stop string starts
};

}  // namespace lockstep::runtime
