// Reading tokenizer.json components (hf_tokenizer.h): field accessors that
// throw SpecError with the JSON path of the problem, and the text helpers
// the components share. Exceptions stay inside the tokenizer.json reader:
// CreateHfTokenizer turns them into a Status.
#pragma once

#include "utf8.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "unicode_regex.h"

namespace lockstep::runtime::hf {

using nlohmann::json;

// An error in a tokenizer.json; `message` names the field ("pre_tokenizer.
// pretokenizers[1].behavior ...").
struct SpecError {
  std::string message;
};

[[noreturn]] void Fail(std::string message);

// object[name], which must exist (`where` is the path of `object`).
const json& Field(const json& object, const char* name, const std::string& where);
std::string StringField(const json& object, const char* name, const std::string& where);
// Missing or null fields give the fallback.
bool BoolField(const json& object, const char* name, const std::string& where, bool fallback);
int64_t IntField(const json& object, const char* name, const std::string& where, int64_t fallback);
int32_t TokenIdValue(const json& v, const std::string& where);
// component["type"].
std::string TypeOf(const json& component, const std::string& where);
// A {"String": s} or {"Regex": r} pattern field.
UnicodeRegex PatternField(const json& object, const std::string& where);
UnicodeRegex MustCompile(std::string_view pattern, const std::string& where);

// Metaspace (pre-tokenizer and decoder): the replacement character (default
// U+2581) and the prepend scheme (always, first or never; older files say
// add_prefix_space).
std::string MetaspaceReplacement(const json& p);
std::string MetaspaceScheme(const json& p, const std::string& where);

// Unicode White_Space (Rust's char::is_whitespace, Oniguruma's \s).
bool IsWhiteSpace(char32_t c);
// Letters, digits and '_' (the \w of single_word added tokens).
bool IsWordChar(char32_t c);
void ReplaceAll(std::string* s, std::string_view from, std::string_view to);

}  // namespace lockstep::runtime::hf
