// Chat templates: a conversation rendered into the prompt text a model was
// trained on, by the model's own Jinja template (the `chat_template` of a
// tokenizer_config.json, GGUF `tokenizer.chat_template`; docs/tokenizers.md,
// "Chat templates").
//
// lockstep runs the templates with its own implementation of the Jinja
// subset chat templates use, following Hugging Face's (transformers renders
// with trim_blocks and lstrip_blocks; @huggingface/jinja is the reference the
// tests compare with byte for byte): text, {{ }}, {% %}, {# #} with `-`
// whitespace control; if/elif/else, for (loop variable, `if` filter,
// unpacking, else, break/continue), set (names, namespace attributes,
// blocks), macros; literals, lists, dicts, arithmetic, comparisons, `in`,
// `and`/`or`/`not`, conditional expressions, attribute and item access,
// slices, the common filters (trim, tojson, length, join, selectattr, ...),
// tests (defined, none, string, mapping, ...), string and dict methods, and
// the globals raise_exception, namespace and range. `strftime_now` is not
// defined on purpose: a prompt that depends on the clock would break "the
// same request gives the same bits" (Llama 3.2's template then uses its
// fixed date).
//
// Anything else is an error naming the line and the construct
// ("chat_template: line 3: filter 'wordwrap' is not supported"), never
// wrong text. Thread safety: a ChatTemplate is immutable; Render may run on
// any number of threads at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/base/status.h"

namespace lockstep::runtime {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

struct ChatTemplateInputs {
  std::vector<ChatMessage> messages;
  // Ends the prompt with the start of an assistant turn.
  bool add_generation_prompt = true;
  // The text of the tokenizer's BOS/EOS tokens ("" when it has none), as
  // transformers passes them (bos_token, eos_token).
  std::string bos_token;
  std::string eos_token;
};

class ChatTemplate {
 public:
  // Parses a template. InvalidArgument "chat_template: line N: ..." for a
  // syntax error or an unsupported construct.
  static Result<ChatTemplate> Parse(std::string_view source);

  // The prompt text for a conversation. InvalidArgument "chat_template:
  // line N: ..." when the template fails (raise_exception, an operation on
  // values of the wrong type, an unsupported filter or method).
  Result<std::string> Render(const ChatTemplateInputs& inputs) const;

  // The same with any variables: `context_json` is a JSON object whose keys
  // become template variables (messages may carry tools, tool_calls, ...).
  Result<std::string> RenderJson(std::string_view context_json) const;

  const std::string& source() const;

  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ChatTemplate(const ChatTemplate&);
  ChatTemplate& operator=(const ChatTemplate&);
  ~ChatTemplate();

  struct Program;  // the parsed template (chat_template.cc)

 private:
  explicit ChatTemplate(std::shared_ptr<const Program> program);
  std::shared_ptr<const Program> program_;
};

}  // namespace lockstep::runtime
