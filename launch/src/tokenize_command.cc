// `lockstep tokenize`: text -> token ids (or ids -> text with --decode) with
// the tokenizer of a model file, a GGUF file, a tokenizer.json or a
// tokenizer.model, one input per line, for people and scripts
// (docs/tokenizers.md).
//
// Plain lines: an input line is a text (its newline is not part of it) and
// an output line is the ids separated by spaces; with --decode, the other
// way round. Text holding newlines needs --jsonl: an input line is a JSON
// string or an object with "text" ("ids" with --decode) and an output line is
// {"ids": [...]} ({"text": "..."}). Output lines are flushed one by one, so
// the command can serve as a co-process.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "command.h"
#include "lockstep/convert/tokenizer_file.h"
#include "lockstep/tokenizer/chat_template.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::launch {
namespace {

struct TokenizeArgs {
  std::string tokenizer;
  std::string input;  // "" or "-": stdin
  bool decode = false;
  bool jsonl = false;
  bool no_special_tokens = false;
  bool skip_special_tokens = false;
  bool chat = false;
  std::string chat_template;  // a Jinja file replacing the tokenizer's template
};

// --chat: one conversation (template variables) -> {"text", "ids"}.
Result<std::string> ProcessChatLine(const runtime::Tokenizer& tokenizer,
                                    const runtime::ChatTemplate& chat_template,
                                    const std::string& line) {
  nlohmann::json context = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!context.is_object()) return InvalidArgument("want a JSON object of template variables");
  if (!context.contains("add_generation_prompt")) context["add_generation_prompt"] = true;
  for (auto [key, id] : {std::pair{"bos_token", tokenizer.bos_token_id()},
                         std::pair{"eos_token", tokenizer.eos_token_id()}}) {
    if (!context.contains(key)) context[key] = id >= 0 ? tokenizer.TokenText(id) : "";
  }
  LOCKSTEP_ASSIGN_OR_RETURN(std::string text, chat_template.RenderJson(context.dump()));
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tokenizer.EncodeSpecial(text));
  return nlohmann::json{{"text", text}, {"ids", ids}}.dump();
}

// "12 7,3" -> {12, 7, 3}: integers separated by spaces, tabs or commas.
Result<std::vector<int32_t>> ParseIds(std::string_view line) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < line.size()) {
    const char c = line[i];
    if (c == ' ' || c == '\t' || c == ',' || c == '\r') {
      ++i;
      continue;
    }
    int64_t id = 0;
    const auto [end, error] = std::from_chars(line.data() + i, line.data() + line.size(), id);
    if (error != std::errc() || id < INT32_MIN || id > INT32_MAX ||
        (end != line.data() + line.size() && *end != ' ' && *end != '\t' && *end != ',' &&
         *end != '\r')) {
      return InvalidArgument("'{}' is not a token id (want integers separated by spaces)",
                             line.substr(i, 24));
    }
    ids.push_back(static_cast<int32_t>(id));
    i = static_cast<size_t>(end - line.data());
  }
  return ids;
}

Result<std::vector<int32_t>> IdsFromJson(const nlohmann::json& value) {
  const nlohmann::json* array = &value;
  if (value.is_object()) {
    auto it = value.find("ids");
    if (it == value.end()) return InvalidArgument("the object has no field 'ids'");
    array = &*it;
  }
  if (!array->is_array()) return InvalidArgument("want a JSON array of ids or {{\"ids\": [...]}}");
  std::vector<int32_t> ids;
  ids.reserve(array->size());
  for (const nlohmann::json& id : *array) {
    if (!id.is_number_integer() || id.get<int64_t>() < INT32_MIN || id.get<int64_t>() > INT32_MAX)
      return InvalidArgument("'ids' holds {}, not a 32-bit integer", id.dump());
    ids.push_back(id.get<int32_t>());
  }
  return ids;
}

Result<std::string> TextFromJson(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object()) {
    auto it = value.find("text");
    if (it != value.end() && it->is_string()) return it->get<std::string>();
    return InvalidArgument("the object has no string field 'text'");
  }
  return InvalidArgument("want a JSON string or {{\"text\": \"...\"}}");
}

// One input line -> one output line (without its newline).
Result<std::string> ProcessLine(const runtime::Tokenizer& tokenizer, const TokenizeArgs& args,
                                const std::string& line) {
  nlohmann::json parsed;
  if (args.jsonl) {
    parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return InvalidArgument("not valid JSON");
  }
  if (args.decode) {
    std::vector<int32_t> ids;
    if (args.jsonl) {
      LOCKSTEP_ASSIGN_OR_RETURN(ids, IdsFromJson(parsed));
    } else {
      LOCKSTEP_ASSIGN_OR_RETURN(ids, ParseIds(line));
    }
    std::string text = tokenizer.Decode(ids, args.skip_special_tokens);
    if (!args.jsonl) return text;
    // JSON strings are Unicode: a character cut between tokens becomes U+FFFD.
    return nlohmann::json{{"text", runtime::ValidUtf8(text)}}.dump();
  }
  std::string text;
  if (args.jsonl) {
    LOCKSTEP_ASSIGN_OR_RETURN(text, TextFromJson(parsed));
  } else {
    text = line;
  }
  std::vector<int32_t> ids;
  LOCKSTEP_ASSIGN_OR_RETURN(ids, tokenizer.Encode(text, /*add_bos=*/!args.no_special_tokens));
  if (args.jsonl) return nlohmann::json{{"ids", ids}}.dump();
  return fmt::format("{}", fmt::join(ids, " "));
}

int RunTokenize(const TokenizeArgs& args) {
  Result<runtime::TokenizerData> data = runtime::ReadTokenizerData(args.tokenizer);
  Result<std::unique_ptr<runtime::Tokenizer>> tokenizer =
      data.ok() ? runtime::CreateTokenizer(*data)
                : Result<std::unique_ptr<runtime::Tokenizer>>(data.status());
  if (!tokenizer.ok()) return ReportError(tokenizer.status().WithContext("--tokenizer"));
  std::optional<runtime::ChatTemplate> chat_template;
  if (args.chat) {
    std::string source = data->chat_template;
    if (!args.chat_template.empty()) {
      std::ifstream in(args.chat_template, std::ios::binary);
      if (!in) return ReportError(IoError("{}: cannot open (--chat-template)", args.chat_template));
      source.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else if (source.empty()) {
      return ReportError(InvalidArgument(
          "--chat: {} has no chat template; give one with --chat-template FILE", args.tokenizer));
    }
    Result<runtime::ChatTemplate> parsed = runtime::ChatTemplate::Parse(source);
    if (!parsed.ok()) {
      return ReportError(parsed.status().WithContext(
          args.chat_template.empty() ? args.tokenizer : args.chat_template));
    }
    chat_template = std::move(parsed).value();
  }

  std::ifstream file;
  std::istream* in = &std::cin;
  std::string source = "<stdin>";
  if (!args.input.empty() && args.input != "-") {
    file.open(args.input, std::ios::binary);
    if (!file) return ReportError(IoError("{}: cannot open (--input)", args.input));
    in = &file;
    source = args.input;
  }
  std::ios::sync_with_stdio(false);
  std::string line;
  int64_t line_number = 0;
  while (std::getline(*in, line)) {
    ++line_number;
    Result<std::string> out = chat_template ? ProcessChatLine(**tokenizer, *chat_template, line)
                                            : ProcessLine(**tokenizer, args, line);
    if (!out.ok()) {
      return ReportError(out.status().WithContext(fmt::format("{}:{}", source, line_number)));
    }
    out->push_back('\n');
    std::fwrite(out->data(), 1, out->size(), stdout);
    std::fflush(stdout);
  }
  if (in->bad()) return ReportError(IoError("{}: read error after line {}", source, line_number));
  return kExitOk;
}

}  // namespace

Command AddTokenizeCommand(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* sub = app.add_subcommand(
      "tokenize",
      "Text to token ids (or ids to text with --decode), one input per line (docs/tokenizers.md)");
  sub->add_option("--tokenizer", args->tokenizer,
                  "A model file (.h5) with a tokenizer, a .gguf, a tokenizer.json or a "
                  "tokenizer.model")
      ->required();
  sub->add_option("--input", args->input, "Read this file instead of stdin");
  sub->add_flag("--decode", args->decode, "Read ids (separated by spaces or commas), print text");
  sub->add_flag("--jsonl", args->jsonl,
                "JSON lines: read a string or {\"text\": ...} ({\"ids\": [...]} or an array with "
                "--decode), print {\"ids\": [...]} ({\"text\": ...})");
  sub->add_flag("--no-special-tokens", args->no_special_tokens,
                "Encode without the BOS (or template) tokens the tokenizer adds by default");
  sub->add_flag("--skip-special-tokens", args->skip_special_tokens,
                "Decode without special tokens (BOS, EOS, <|im_start|>, ...)");
  sub->add_flag("--chat", args->chat,
                "Render conversations with the chat template: read JSON objects of template "
                "variables ({\"messages\": [...]}), print {\"text\": ..., \"ids\": [...]}");
  sub->add_option("--chat-template", args->chat_template,
                  "With --chat: a Jinja template file instead of the tokenizer's own");
  Command command;
  command.app = sub;
  command.run = [args]() -> int { return RunTokenize(*args); };
  return command;
}

}  // namespace lockstep::launch
