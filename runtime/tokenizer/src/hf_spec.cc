// tokenizer.json field accessors and shared text helpers (hf_spec.h).
#include "hf_spec.h"

#include <fmt/format.h>
#include <utf8proc.h>

#include <optional>

#include "utf8.h"

namespace lockstep::runtime::hf {

bool IsWhiteSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

bool IsWordChar(char32_t c) {
  if (c == '_') return true;
  const utf8proc_category_t cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
         (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t hit = s->find(from, pos);
    if (hit == std::string::npos) break;
    out.append(*s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(*s, pos, std::string::npos);
  *s = std::move(out);
}

[[noreturn]] void Fail(std::string message) {
  throw SpecError{std::move(message)};
}

const json& Field(const json& object, const char* name, const std::string& where) {
  if (!object.is_object()) Fail(fmt::format("{} must be an object", where));
  auto it = object.find(name);
  if (it == object.end()) Fail(fmt::format("{}.{} is missing", where, name));
  return *it;
}

std::string StringField(const json& object, const char* name, const std::string& where) {
  const json& v = Field(object, name, where);
  if (!v.is_string())
    Fail(fmt::format("{}.{} must be a string, got {}", where, name, v.type_name()));
  return v.get<std::string>();
}

bool BoolField(const json& object, const char* name, const std::string& where, bool fallback) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) Fail(fmt::format("{}.{} must be true or false", where, name));
  return it->get<bool>();
}

int64_t IntField(const json& object, const char* name, const std::string& where, int64_t fallback) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) Fail(fmt::format("{}.{} must be an integer", where, name));
  return it->get<int64_t>();
}

int32_t TokenIdValue(const json& v, const std::string& where) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
    Fail(fmt::format("{} must be a token id (an integer from 0), got {}", where, v.dump()));
  }
  return static_cast<int32_t>(v.get<int64_t>());
}

std::string TypeOf(const json& component, const std::string& where) {
  return StringField(component, "type", where);
}

// A {"String": s} or {"Regex": r} pattern.
UnicodeRegex PatternField(const json& object, const std::string& where) {
  const json& pattern = Field(object, "pattern", where);
  Result<UnicodeRegex> regex = InvalidArgument("unset");
  if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
    regex = UnicodeRegex::Compile(pattern["Regex"].get<std::string>(), where + ".pattern.Regex");
  } else if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string()) {
    regex = UnicodeRegex::Literal(pattern["String"].get<std::string>(), where + ".pattern.String");
  } else {
    Fail(fmt::format("{}.pattern must be {{\"Regex\": ...}} or {{\"String\": ...}}", where));
  }
  if (!regex.ok()) Fail(regex.status().message());
  return std::move(regex).value();
}

UnicodeRegex MustCompile(std::string_view pattern, const std::string& where) {
  Result<UnicodeRegex> regex = UnicodeRegex::Compile(pattern, where);
  if (!regex.ok()) Fail(regex.status().message());
  return std::move(regex).value();
}

std::string MetaspaceReplacement(const json& p) {
  auto it = p.find("replacement");
  if (it == p.end() || !it->is_string()) return "\xE2\x96\x81";  // ▁
  return it->get<std::string>();
}

std::string MetaspaceScheme(const json& p, const std::string& where) {
  if (auto it = p.find("prepend_scheme"); it != p.end() && it->is_string()) {
    std::string scheme = it->get<std::string>();
    if (scheme != "always" && scheme != "first" && scheme != "never") {
      Fail(fmt::format("{}.prepend_scheme '{}' is not always, first or never", where, scheme));
    }
    return scheme;
  }
  // Older files: add_prefix_space true means "always".
  return BoolField(p, "add_prefix_space", where, true) ? "always" : "never";
}

}  // namespace lockstep::runtime::hf
