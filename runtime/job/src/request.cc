#include "lockstep/job/request.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <span>
#include <sstream>
#include <unordered_map>

#include "lockstep/base/nearest_name.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime {
namespace {

using nlohmann::json;

// Where the generation fields of a line live, for messages: "" (plain form)
// or "body." (OpenAI form).
struct Fields {
  const json& object;
  std::string prefix;
};

// nlohmann's messages start with "[json.exception.parse_error.101] "; the
// bracketed code helps nobody running a batch job.
std::string CleanJsonError(const char* what) {
  std::string_view text(what);
  if (!text.empty() && text.front() == '[') {
    if (size_t end = text.find("] "); end != std::string_view::npos) text.remove_prefix(end + 2);
  }
  return std::string(text);
}

std::string Shorten(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

// Request objects nest three levels (line, body, stop list); anything much
// deeper is refused while parsing, before a recursive dump() or destructor
// could run out of stack on it.
constexpr int kMaxNesting = 32;

// The fields each part of a line may have (docs/batch-jobs.md, "Fields").
// A field outside these lists is an error naming it: a misspelt
// "temprature" must not silently run at temperature 1.
constexpr std::string_view kGenerationFields[] = {
    "max_tokens", "max_completion_tokens", "temperature", "top_k", "top_p", "seed", "stop",
    "stop_token_ids", "echo", "ignore_eos",
    // OpenAI fields lockstep refuses unless they have their neutral value
    // (RejectUnsupported).
    "n", "best_of", "stream", "presence_penalty", "frequency_penalty", "logprobs", "logit_bias",
    "suffix",
    // OpenAI fields without an effect on the tokens.
    "model", "user"};
constexpr std::string_view kPlainOnlyFields[] = {"id", "prompt", "prompt_tokens", "messages"};
constexpr std::string_view kBodyOnlyFields[] = {"prompt", "messages"};
// Chat fields lockstep names as unsupported (RejectUnsupportedChat) rather
// than unknown, in chat requests only.
constexpr std::string_view kChatOnlyFields[] = {"tools",        "tool_choice",     "functions",
                                                "function_call", "response_format", "top_logprobs",
                                                "parallel_tool_calls"};
constexpr std::string_view kOpenAiTopFields[] = {"custom_id", "method", "url", "body"};

std::vector<std::string_view> FieldList(std::span<const std::string_view> a,
                                        std::span<const std::string_view> b = {},
                                        std::span<const std::string_view> c = {}) {
  std::vector<std::string_view> all(a.begin(), a.end());
  all.insert(all.end(), b.begin(), b.end());
  all.insert(all.end(), c.begin(), c.end());
  return all;
}

// Text from a malformed line, safe to put in a message and a JSON record:
// valid UTF-8 is kept, any other byte and control characters become \xNN.
std::string PrintableText(std::string_view text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool valid = length > 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) {
      valid = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
    }
    if (valid && length > 1) {
      // Overlong forms, surrogates and code points above U+10FFFF.
      uint32_t cp = c & (0x7f >> length);
      for (size_t k = 1; k < length; ++k) cp = cp << 6 | (static_cast<unsigned char>(text[i + k]) & 0x3f);
      const uint32_t min = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000;
      valid = cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
    }
    if (!valid || c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
      continue;
    }
    out.append(text.substr(i, length));
    i += length;
  }
  return out;
}

// Parses a line, refusing nesting deeper than kMaxNesting and keeping track
// of where the parser is (the field path, for messages) and of the line's id
// as soon as it has been read (so that a line failing later still gets its
// id in the error record).
class TrackingParser {
 public:
  struct TooDeep {};

  // Throws json::exception (syntax, number overflow, invalid UTF-8) or
  // TooDeep.
  json Parse(std::string_view text) {
    return json::parse(
        text,
        [this](int depth, json::parse_event_t event, json& parsed) {
          OnEvent(depth, event, parsed);
          return true;
        },
        /*allow_exceptions=*/true);
  }

  // "body.temperature", "prompt_tokens[]", or "" at the top.
  std::string Path() const {
    std::string path;
    for (const std::string& name : names_) {
      if (name == "[]") {
        path += name;
      } else if (!name.empty()) {
        if (!path.empty()) path += '.';
        path += name;
      }
    }
    return path;
  }
  const std::optional<std::string>& id() const { return id_; }

 private:
  void OnEvent(int depth, json::parse_event_t event, const json& parsed) {
    const size_t level = static_cast<size_t>(std::max(depth, 0));
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= kMaxNesting) throw TooDeep{};
        names_.resize(level);
        names_.push_back(event == json::parse_event_t::array_start ? "[]" : "");
        break;
      case json::parse_event_t::key:
        names_.resize(level);
        if (level > 0) names_[level - 1] = parsed.is_string() ? parsed.get<std::string>() : "";
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        names_.resize(level);
        break;
      case json::parse_event_t::value:
        if (depth == 1 && names_.size() == 1 && (names_[0] == "id" || names_[0] == "custom_id")) {
          if (parsed.is_string()) id_ = parsed.get<std::string>();
          if (parsed.is_number_integer()) id_ = parsed.dump();
        }
        break;
    }
  }

  std::vector<std::string> names_;
  std::optional<std::string> id_;
};

class LineParser {
 public:
  LineParser(std::string_view source, int64_t line) : source_(source), line_(line) {}

  template <typename... Args>
  Status Error(fmt::format_string<Args...> format, Args&&... args) const {
    return InvalidArgument("{}:{}: {}", source_, line_,
                           fmt::format(format, std::forward<Args>(args)...));
  }

  const json* Find(const Fields& f, const char* name) const {
    auto it = f.object.find(name);
    if (it == f.object.end() || it->is_null()) return nullptr;
    return &*it;
  }

  Status ReadTokenList(const Fields& f, const char* name, const json& value, bool allow_empty,
                       std::vector<int32_t>* out) const {
    if (!value.is_array()) {
      return Error("field '{}{}' must be a list of token ids, got {}", f.prefix, name,
                   Shorten(value));
    }
    if (value.empty() && !allow_empty) {
      return Error("field '{}{}' is empty; a prompt needs at least one token", f.prefix, name);
    }
    out->clear();
    out->reserve(value.size());
    for (size_t i = 0; i < value.size(); ++i) {
      const json& v = value[i];
      if (v.is_array()) {
        return Error("field '{}{}' holds several prompts; give one prompt per line", f.prefix,
                     name);
      }
      if (!v.is_number_integer()) {
        return Error("field '{}{}' element {} must be an integer token id, got {}", f.prefix, name,
                     i, Shorten(v));
      }
      if (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t{INT32_MAX}
                                 : (v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)) {
        return Error("field '{}{}' element {} is {}, not a token id (0 or more)", f.prefix, name, i,
                     v.dump());
      }
      out->push_back(static_cast<int32_t>(v.get<int64_t>()));
    }
    return Status::Ok();
  }

  Status ReadPrompt(const Fields& f, bool plain_form, Request* r) const {
    const json* tokens = plain_form ? Find(f, "prompt_tokens") : nullptr;
    const json* prompt = Find(f, "prompt");
    if (const json* messages = Find(f, "messages")) {
      if (tokens != nullptr || prompt != nullptr) {
        return Error("give either 'messages' or '{}', not both",
                     tokens != nullptr ? "prompt_tokens" : "prompt");
      }
      LOCKSTEP_RETURN_IF_ERROR(RejectUnsupportedChat(f));
      return ReadMessages(f, *messages, r);
    }
    if (tokens != nullptr && prompt != nullptr) {
      return Error("give either 'prompt_tokens' or 'prompt', not both");
    }
    if (tokens != nullptr)
      return ReadTokenList(f, "prompt_tokens", *tokens, false, &r->prompt_tokens);
    if (prompt == nullptr) {
      return Error("field '{}' is missing", plain_form ? "prompt_tokens" : "body.prompt");
    }
    if (prompt->is_string()) {
      if (prompt->get_ref<const std::string&>().empty()) {
        return Error("field '{}prompt' is empty; a prompt needs at least one token", f.prefix);
      }
      r->prompt_text = prompt->get<std::string>();
      return Status::Ok();
    }
    return ReadTokenList(f, "prompt", *prompt, false, &r->prompt_tokens);
  }

  // A chat request's "messages": a non-empty list of {"role", "content"}
  // with roles system, user, assistant and string contents.
  Status ReadMessages(const Fields& f, const json& value, Request* r) const {
    if (!value.is_array() || value.empty()) {
      return Error("field '{}messages' must be a non-empty list of messages, got {}", f.prefix,
                   Shorten(value));
    }
    std::vector<ChatMessage> messages;
    for (size_t i = 0; i < value.size(); ++i) {
      const json& m = value[i];
      const std::string where = fmt::format("{}messages[{}]", f.prefix, i);
      if (!m.is_object()) return Error("field '{}' must be an object, got {}", where, Shorten(m));
      for (auto it = m.begin(); it != m.end(); ++it) {
        if (it.key() != "role" && it.key() != "content") {
          return Error("field '{}.{}' is not supported (a message has a role and a content)", where,
                       it.key());
        }
      }
      auto role = m.find("role");
      if (role == m.end() || !role->is_string()) {
        return Error("field '{}.role' must be \"system\", \"user\" or \"assistant\"", where);
      }
      const std::string& name = role->get_ref<const std::string&>();
      if (name != "system" && name != "user" && name != "assistant") {
        return Error("field '{}.role' is {}; a role is \"system\", \"user\" or \"assistant\"",
                     where, Shorten(*role));
      }
      auto content = m.find("content");
      if (content == m.end() || !content->is_string()) {
        return Error("field '{}.content' must be a string, got {}", where,
                     content == m.end() ? std::string("nothing") : Shorten(*content));
      }
      messages.push_back({name, content->get<std::string>()});
    }
    r->messages = std::move(messages);
    return Status::Ok();
  }

  // Fields of the chat completions API lockstep does not implement.
  Status RejectUnsupportedChat(const Fields& f) const {
    for (const char* name : {"tools", "tool_choice", "functions", "function_call",
                             "response_format", "top_logprobs", "parallel_tool_calls"}) {
      if (Find(f, name) != nullptr) return Error("field '{}{}' is not supported", f.prefix, name);
    }
    if (Find(f, "echo") != nullptr) {
      return Error("field '{}echo' is not supported for chat requests", f.prefix);
    }
    // max_completion_tokens: the newer name of max_tokens.
    const json* newer = Find(f, "max_completion_tokens");
    if (newer != nullptr && Find(f, "max_tokens") != nullptr) {
      return Error("give either '{0}max_tokens' or '{0}max_completion_tokens', not both", f.prefix);
    }
    return Status::Ok();
  }

  Status ReadInteger(const Fields& f, const char* name, int64_t min, int64_t max,
                     int64_t* out) const {
    const json* v = Find(f, name);
    if (v == nullptr) return Status::Ok();
    if (!v->is_number_integer()) {
      return Error("field '{}{}' must be an integer, got {}", f.prefix, name, Shorten(*v));
    }
    bool too_big = v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(max);
    if (too_big || v->get<int64_t>() < min || v->get<int64_t>() > max) {
      return Error("field '{}{}' is {}, must be in [{}, {}]", f.prefix, name, v->dump(), min, max);
    }
    *out = v->get<int64_t>();
    return Status::Ok();
  }

  // A finite number in [min, max] (min_open: min itself excluded).
  Status ReadNumber(const Fields& f, const char* name, double min, bool min_open, double max,
                    float* out) const {
    const json* v = Find(f, name);
    if (v == nullptr) return Status::Ok();
    if (!v->is_number()) {
      return Error("field '{}{}' must be a number, got {}", f.prefix, name, Shorten(*v));
    }
    double d = v->get<double>();
    if (!std::isfinite(d) || d > max || d < min || (min_open && d == min)) {
      return Error("field '{}{}' is {}, must be in {}{}, {}]", f.prefix, name, v->dump(),
                   min_open ? "(" : "[", min, max);
    }
    *out = static_cast<float>(d);
    return Status::Ok();
  }

  Status ReadSeed(const Fields& f, uint64_t* out) const {
    const json* v = Find(f, "seed");
    if (v == nullptr) return Status::Ok();
    if (!v->is_number_integer()) {
      return Error("field '{}seed' must be an integer, got {}", f.prefix, Shorten(*v));
    }
    *out = v->is_number_unsigned() ? v->get<uint64_t>() : static_cast<uint64_t>(v->get<int64_t>());
    return Status::Ok();
  }

  Status ReadBool(const Fields& f, const char* name, bool* out) const {
    const json* v = Find(f, name);
    if (v == nullptr) return Status::Ok();
    if (!v->is_boolean()) {
      return Error("field '{}{}' must be true or false, got {}", f.prefix, name, Shorten(*v));
    }
    *out = v->get<bool>();
    return Status::Ok();
  }

  // Fields of the OpenAI API whose meaning lockstep cannot honour: refuse
  // them rather than silently produce something else.
  Status RejectUnsupported(const Fields& f) const {
    for (const char* name : {"n", "best_of"}) {
      if (const json* v = Find(f, name); v != nullptr && *v != json(1)) {
        return Error("field '{}{}' must be 1 (one completion per request line)", f.prefix, name);
      }
    }
    if (const json* v = Find(f, "stream"); v != nullptr && *v != json(false)) {
      return Error("field '{}stream' is not supported", f.prefix);
    }
    for (const char* name : {"presence_penalty", "frequency_penalty"}) {
      if (const json* v = Find(f, name); v != nullptr && !(v->is_number() && *v == json(0))) {
        return Error("field '{}{}' is not supported (only 0)", f.prefix, name);
      }
    }
    if (const json* v = Find(f, "logprobs"); v != nullptr && *v != json(false)) {
      return Error("field '{}logprobs' is not supported", f.prefix);
    }
    if (const json* v = Find(f, "logit_bias"); v != nullptr && !(v->is_object() && v->empty())) {
      return Error("field '{}logit_bias' is not supported", f.prefix);
    }
    if (const json* v = Find(f, "suffix"); v != nullptr && *v != json("")) {
      return Error("field '{}suffix' is not supported", f.prefix);
    }
    return Status::Ok();
  }

  // "stop": a string or a list of strings; "" and [] mean none.
  Status ReadStop(const Fields& f, Request* r) const {
    const json* v = Find(f, "stop");
    if (v == nullptr) return Status::Ok();
    if (v->is_string()) {
      if (!v->get_ref<const std::string&>().empty()) r->stop.push_back(v->get<std::string>());
      return Status::Ok();
    }
    if (!v->is_array()) {
      return Error("field '{}stop' must be a string or a list of strings, got {}", f.prefix,
                   Shorten(*v));
    }
    for (size_t i = 0; i < v->size(); ++i) {
      const json& s = (*v)[i];
      if (!s.is_string() || s.get_ref<const std::string&>().empty()) {
        return Error("field '{}stop' element {} must be a non-empty string, got {}", f.prefix, i,
                     Shorten(s));
      }
      r->stop.push_back(s.get<std::string>());
    }
    return Status::Ok();
  }

  Status ReadGeneration(const Fields& f, Request* r) const {
    LOCKSTEP_RETURN_IF_ERROR(RejectUnsupported(f));
    LOCKSTEP_RETURN_IF_ERROR(ReadInteger(f, "max_tokens", 1, INT32_MAX, &r->max_tokens));
    if (r->chat()) {
      LOCKSTEP_RETURN_IF_ERROR(
          ReadInteger(f, "max_completion_tokens", 1, INT32_MAX, &r->max_tokens));
    }
    LOCKSTEP_RETURN_IF_ERROR(ReadNumber(f, "temperature", 0.0, false, 1e6, &r->temperature));
    LOCKSTEP_RETURN_IF_ERROR(ReadNumber(f, "top_p", 0.0, true, 1.0, &r->top_p));
    int64_t top_k = 0;
    LOCKSTEP_RETURN_IF_ERROR(ReadInteger(f, "top_k", -1, INT32_MAX, &top_k));
    r->top_k = top_k < 0 ? 0 : static_cast<int>(top_k);
    LOCKSTEP_RETURN_IF_ERROR(ReadSeed(f, &r->seed));
    if (const json* v = Find(f, "stop_token_ids")) {
      LOCKSTEP_RETURN_IF_ERROR(ReadTokenList(f, "stop_token_ids", *v, true, &r->stop_token_ids));
    }
    LOCKSTEP_RETURN_IF_ERROR(ReadStop(f, r));
    LOCKSTEP_RETURN_IF_ERROR(ReadBool(f, "echo", &r->echo));
    return ReadBool(f, "ignore_eos", &r->ignore_eos);
  }

  // Fields of `object` that are not in `known`: an error naming the first,
  // with the nearest known name when one is close.
  Status RejectUnknown(const json& object, const std::string& prefix,
                       const std::vector<std::string_view>& known, std::string_view hint) const {
    for (const auto& [key, value] : object.items()) {
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      std::string suggestion = DidYouMean(key, known);
      if (suggestion.empty() && !hint.empty()) suggestion = fmt::format("; {}", hint);
      return Error("field '{}{}' is not a request field{}", prefix, PrintableText(key),
                   suggestion);
    }
    return Status::Ok();
  }

  // The id read from the line so far (also when parsing failed later).
  const std::optional<std::string>& seen_id() const { return seen_id_; }

  Result<Request> Parse(std::string_view text) const {
    json j;
    TrackingParser parser;
    try {
      j = parser.Parse(text);
    } catch (const TrackingParser::TooDeep&) {
      seen_id_ = parser.id();
      return Error("nested deeper than {} levels{}; a request is an object of fields", kMaxNesting,
                   parser.Path().empty() ? "" : fmt::format(" (in field '{}')", parser.Path()));
    } catch (const json::exception& e) {
      seen_id_ = parser.id();
      const std::string where =
          parser.Path().empty() ? "" : fmt::format("field '{}': ", PrintableText(parser.Path()));
      if (e.id == 406) {  // out_of_range: a number beyond the range of a double
        std::string_view what(e.what());
        const size_t open = what.find('\'');
        const size_t close = what.rfind('\'');
        const std::string number =
            open != std::string_view::npos && close > open
                ? PrintableText(what.substr(open + 1, close - open - 1))
                : std::string("the number");
        return Error("{}{} is too large: JSON numbers must fit a double (at most about 1.8e308)",
                     where, number);
      }
      return Error("{}not valid JSON: {}", where, PrintableText(CleanJsonError(e.what())));
    }
    seen_id_ = parser.id();
    if (!j.is_object()) return Error("expected a JSON object, got {}", Shorten(j));

    Request r;
    r.line = line_;
    const bool openai = j.contains("custom_id") || j.contains("body");
    if (openai) {
      auto id = j.find("custom_id");
      if (id == j.end() || !id->is_string() || id->get<std::string>().empty()) {
        return Error("field 'custom_id' must be a non-empty string");
      }
      r.id = id->get<std::string>();
      if (auto m = j.find("method"); m != j.end() && *m != json("POST")) {
        return Error("field 'method' must be \"POST\", got {}", Shorten(*m));
      }
      auto u = j.find("url");
      if (u != j.end() && *u != json("/v1/completions") && *u != json("/v1/chat/completions")) {
        return Error(
            "field 'url' is {}; supported: \"/v1/completions\" and \"/v1/chat/completions\"",
            Shorten(*u));
      }
      auto body = j.find("body");
      if (body == j.end() || !body->is_object()) {
        return Error("field 'body' is missing or not an object");
      }
      LOCKSTEP_RETURN_IF_ERROR(RejectUnknown(
          j, "", FieldList(kOpenAiTopFields),
          "the OpenAI batch form has custom_id, method, url and body (generation fields go in "
          "'body')"));
      Fields f{*body, "body."};
      LOCKSTEP_RETURN_IF_ERROR(RejectUnknown(
          *body, "body.",
          FieldList(kBodyOnlyFields, kGenerationFields,
                    body->contains("messages") ? std::span<const std::string_view>(kChatOnlyFields)
                                               : std::span<const std::string_view>()),
          body->contains("prompt_tokens") ? "the OpenAI form takes token ids as 'body.prompt'"
                                          : ""));
      const bool chat_url = u != j.end() && *u == json("/v1/chat/completions");
      if (u != j.end()) {
        const bool has_messages = Find(f, "messages") != nullptr;
        if (chat_url && !has_messages) {
          return Error("field 'body.messages' is missing (url \"/v1/chat/completions\")");
        }
        if (!chat_url && has_messages) {
          return Error("field 'body.messages' needs url \"/v1/chat/completions\"");
        }
      }
      LOCKSTEP_RETURN_IF_ERROR(ReadPrompt(f, false, &r));
      LOCKSTEP_RETURN_IF_ERROR(ReadGeneration(f, &r));
    } else {
      auto id = j.find("id");
      if (id == j.end() || id->is_null()) return Error("field 'id' is missing");
      if (id->is_string() && !id->get<std::string>().empty()) {
        r.id = id->get<std::string>();
      } else if (id->is_number_integer()) {
        r.id = id->dump();
      } else {
        return Error("field 'id' must be a non-empty string or an integer, got {}", Shorten(*id));
      }
      Fields f{j, ""};
      LOCKSTEP_RETURN_IF_ERROR(RejectUnknown(
          j, "",
          FieldList(kPlainOnlyFields, kGenerationFields,
                    j.contains("messages") ? std::span<const std::string_view>(kChatOnlyFields)
                                           : std::span<const std::string_view>()),
          ""));
      LOCKSTEP_RETURN_IF_ERROR(ReadPrompt(f, true, &r));
      LOCKSTEP_RETURN_IF_ERROR(ReadGeneration(f, &r));
    }
    return r;
  }

 private:
  std::string_view source_;
  int64_t line_;
  mutable std::optional<std::string> seen_id_;
};

}  // namespace

Result<Request> ParseRequestLine(std::string_view text, std::string_view source, int64_t line) {
  return LineParser(source, line).Parse(text);
}

std::vector<int32_t> EndOfTurnTokens(const Tokenizer& tokenizer) {
  std::vector<int32_t> ids;
  if (tokenizer.eos_token_id() >= 0) ids.push_back(tokenizer.eos_token_id());
  for (const char* text : {"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                           "<|endoftext|>", "<EOT>"}) {
    std::optional<int32_t> id = tokenizer.TokenId(text);
    if (id && tokenizer.IsSpecial(*id) && std::find(ids.begin(), ids.end(), *id) == ids.end()) {
      ids.push_back(*id);
    }
  }
  return ids;
}

Status TokenizeRequest(Request* request, const Tokenizer* tokenizer, std::string_view source) {
  return TokenizeRequest(request, PromptEncoder{tokenizer, nullptr, ""}, source);
}

Status TokenizeRequest(Request* request, const PromptEncoder& encoder, std::string_view source) {
  const Tokenizer* tokenizer = encoder.tokenizer;
  if (!request->NeedsTokenizer()) return Status::Ok();
  if (tokenizer == nullptr) {
    const char* what = request->chat()          ? "a chat request ('messages')"
                       : request->prompt_text   ? "a text prompt"
                       : !request->stop.empty() ? "'stop' strings"
                                                : "'echo'";
    return FailedPrecondition(
        "{}:{}: {} needs a tokenizer and the model file has none: give 'prompt_tokens' (and "
        "'stop_token_ids'), or use a model file converted with its tokenizer "
        "(docs/tokenizers.md)",
        source, request->line, what);
  }
  if (request->chat()) {
    if (encoder.chat_template == nullptr) {
      if (!encoder.chat_template_error.empty()) {
        return FailedPrecondition("{}:{}: field 'messages': the model's {}", source, request->line,
                                  encoder.chat_template_error);
      }
      return FailedPrecondition(
          "{}:{}: a chat request ('messages') needs a chat template and the model file has none: "
          "convert the model with its tokenizer_config.json, or give the prompt as text "
          "(docs/batch-jobs.md)",
          source, request->line);
    }
    ChatTemplateInputs inputs;
    inputs.messages = *request->messages;
    inputs.add_generation_prompt = true;
    if (tokenizer->bos_token_id() >= 0)
      inputs.bos_token = tokenizer->TokenText(tokenizer->bos_token_id());
    if (tokenizer->eos_token_id() >= 0)
      inputs.eos_token = tokenizer->TokenText(tokenizer->eos_token_id());
    Result<std::string> text = encoder.chat_template->Render(inputs);
    if (!text.ok()) {
      return InvalidArgument("{}:{}: field 'messages': {}", source, request->line,
                             text.status().message());
    }
    Result<std::vector<int32_t>> ids = tokenizer->EncodeSpecial(*text);
    if (!ids.ok()) {
      return InvalidArgument("{}:{}: field 'messages': {}", source, request->line,
                             ids.status().message());
    }
    if (ids->empty()) {
      return InvalidArgument("{}:{}: field 'messages' renders to no tokens", source, request->line);
    }
    request->prompt_tokens = std::move(ids).value();
    for (int32_t id : EndOfTurnTokens(*tokenizer)) {
      if (std::find(request->stop_token_ids.begin(), request->stop_token_ids.end(), id) ==
          request->stop_token_ids.end()) {
        request->stop_token_ids.push_back(id);
      }
    }
    return Status::Ok();
  }
  if (!request->prompt_text) return Status::Ok();
  Result<std::vector<int32_t>> ids = tokenizer->Encode(*request->prompt_text, /*add_bos=*/true);
  if (!ids.ok()) {
    return InvalidArgument("{}:{}: field 'prompt': {}", source, request->line,
                           ids.status().message());
  }
  if (ids->empty()) {
    return InvalidArgument("{}:{}: field 'prompt' encodes to no tokens", source, request->line);
  }
  request->prompt_tokens = std::move(ids).value();
  return Status::Ok();
}

Status ValidateRequestForModel(const Request& request, const partitioner::ModelConfig& config,
                               std::string_view source) {
  auto check_ids = [&](const std::vector<int32_t>& ids, const char* field) -> Status {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] >= config.vocab_size) {
        return OutOfRange(
            "{}:{}: {} element {} is token id {}, outside the model's vocabulary "
            "of {} (ids 0..{})",
            source, request.line, field, i, ids[i], config.vocab_size, config.vocab_size - 1);
      }
    }
    return Status::Ok();
  };
  LOCKSTEP_RETURN_IF_ERROR(check_ids(request.prompt_tokens, "prompt"));
  LOCKSTEP_RETURN_IF_ERROR(check_ids(request.stop_token_ids, "stop_token_ids"));
  const int64_t total = static_cast<int64_t>(request.prompt_tokens.size()) + request.max_tokens;
  if (total > config.ContextLength()) {
    return OutOfRange(
        "{}:{}: prompt ({} tokens) + max_tokens ({}) = {} exceeds the model's "
        "context of {} positions",
        source, request.line, request.prompt_tokens.size(), request.max_tokens, total,
        config.ContextLength());
  }
  return Status::Ok();
}

RequestFile ParseRequestText(std::string_view text, std::string_view source,
                             const partitioner::ModelConfig* config, const Tokenizer* tokenizer) {
  return ParseRequestText(text, source, config, PromptEncoder{tokenizer, nullptr, ""});
}

RequestFile ParseRequestText(std::string_view text, std::string_view source,
                             const partitioner::ModelConfig* config, const PromptEncoder& encoder) {
  RequestFile file;
  std::unordered_map<std::string, int64_t> first_line_of_id;
  int64_t line = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view row = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    if (!row.empty() && row.back() == '\r') row.remove_suffix(1);
    if (row.find_first_not_of(" \t") == std::string_view::npos) continue;

    LineParser parser(source, line);
    Result<Request> request = parser.Parse(row);
    Status status = request.ok() ? Status::Ok() : request.status();
    if (status.ok()) status = TokenizeRequest(&*request, encoder, source);
    if (status.ok() && config != nullptr) {
      status = ValidateRequestForModel(*request, *config, source);
    }
    if (status.ok()) {
      auto [it, inserted] = first_line_of_id.emplace(request->id, line);
      if (!inserted) {
        status = InvalidArgument("{}:{}: id '{}' was already used on line {}; ids must be unique",
                                 source, line, request->id, it->second);
      }
    }
    if (status.ok()) {
      file.requests.push_back(std::move(request).value());
    } else {
      std::optional<std::string> id = request.ok() ? std::optional(request->id) : parser.seen_id();
      if (id && id->empty()) id.reset();
      file.errors.push_back({std::move(id), line, status.message()});
    }
  }
  return file;
}

Result<RequestFile> ReadRequestFile(const std::string& path, const partitioner::ModelConfig* config,
                                    const Tokenizer* tokenizer) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("{}: cannot open the request file", path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return IoError("{}: read failed", path);
  return ParseRequestText(text.str(), path, config, tokenizer);
}

}  // namespace lockstep::runtime
