// Reading tokenizers from files, and building them (tokenizer.h).
#include "lockstep/tokenizer/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hf_tokenizer.h"
#include "lockstep/tokenizer/sentencepiece_tokenizer.h"

namespace lockstep::runtime {
namespace {

using nlohmann::json;

Result<std::string> ReadWholeFile(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return NotFound("{}: file not found", path);
  if (!std::filesystem::is_regular_file(path, error)) {
    return InvalidArgument("{}: not a regular file", path);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("{}: cannot open", path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return IoError("{}: read failed", path);
  return text.str();
}

// bos_token / eos_token of a tokenizer_config.json: a string, an AddedToken
// object {"content": ...}, or null.
std::optional<std::string> ConfigTokenName(const json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return std::nullopt;
}

// The chat_template of a tokenizer_config.json: a string, or a list of
// {"name", "template"} of which the one named "default" is used.
Result<std::string> ConfigChatTemplate(const json& config, const std::string& config_path) {
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    for (const json& entry : *it) {
      if (entry.is_object() && entry.value("name", json()) == "default" &&
          entry.contains("template") && entry["template"].is_string()) {
        return entry["template"].get<std::string>();
      }
    }
    return InvalidArgument("{}: chat_template is a list without an entry named \"default\"",
                           config_path);
  }
  return InvalidArgument("{}: chat_template must be a string or a list of named templates",
                         config_path);
}

// The tokenizer_config.json beside a tokenizer file, if there is one (a
// null json otherwise).
Result<json> ConfigBeside(const std::string& path) {
  const std::filesystem::path config_path =
      std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  std::error_code error;
  if (!std::filesystem::is_regular_file(config_path, error)) return json();
  LOCKSTEP_ASSIGN_OR_RETURN(std::string config_text, ReadWholeFile(config_path.string()));
  json config = json::parse(config_text, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) {
    return InvalidArgument("{}: not a JSON object (tokenizer_config.json beside {})",
                           config_path.string(), path);
  }
  return config;
}

// tokenizer.json + the tokenizer_config.json beside it (if any).
Result<TokenizerData> ReadHfJson(const std::string& path, std::string text) {
  TokenizerData data;
  data.kind = TokenizerKind::kHuggingFace;
  data.data = std::move(text);
  data.source = path;
  const std::filesystem::path config_path =
      std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  LOCKSTEP_ASSIGN_OR_RETURN(const json config, ConfigBeside(path));
  if (config.is_null()) return data;
  LOCKSTEP_ASSIGN_OR_RETURN(data.chat_template, ConfigChatTemplate(config, config_path.string()));
  LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, CreateTokenizer(data));
  auto id_of = [&](const char* key) -> Result<int32_t> {
    std::optional<std::string> name = ConfigTokenName(config, key);
    if (!name) return -1;
    std::optional<int32_t> id = tokenizer->TokenId(*name);
    if (!id) {
      return InvalidArgument("{}: {} {:?} is not a token of {}", config_path.string(), key, *name,
                             path);
    }
    return *id;
  };
  LOCKSTEP_ASSIGN_OR_RETURN(data.bos_token_id, id_of("bos_token"));
  LOCKSTEP_ASSIGN_OR_RETURN(data.eos_token_id, id_of("eos_token"));
  if (auto it = config.find("add_bos_token"); it != config.end() && it->is_boolean()) {
    data.add_bos_token = it->get<bool>() && data.bos_token_id >= 0;
  }
  return data;
}

Result<TokenizerData> ReadSentencePiece(const std::string& path, std::string bytes) {
  TokenizerData data;
  data.kind = TokenizerKind::kSentencePiece;
  data.data = std::move(bytes);
  data.source = path;
  Result<std::unique_ptr<Tokenizer>> tokenizer = CreateTokenizer(data);
  if (!tokenizer.ok()) {
    return InvalidArgument(
        "{}: not a tokenizer file this reader knows: not a model file (HDF5), not GGUF, not a "
        "tokenizer.json, and not a SentencePiece tokenizer.model",
        path);
  }
  data.bos_token_id = (*tokenizer)->bos_token_id();
  data.eos_token_id = (*tokenizer)->eos_token_id();
  data.add_bos_token = data.bos_token_id >= 0;
  // A chat template from a tokenizer_config.json beside the model.
  LOCKSTEP_ASSIGN_OR_RETURN(const json config, ConfigBeside(path));
  if (config.is_object()) {
    const std::string config_path =
        (std::filesystem::path(path).parent_path() / "tokenizer_config.json").string();
    LOCKSTEP_ASSIGN_OR_RETURN(data.chat_template, ConfigChatTemplate(config, config_path));
  }
  return data;
}

}  // namespace

std::string_view TokenizerKindName(TokenizerKind kind) {
  return kind == TokenizerKind::kSentencePiece ? "sentencepiece" : "huggingface";
}

Result<TokenizerKind> ParseTokenizerKind(std::string_view name) {
  if (name == "sentencepiece") return TokenizerKind::kSentencePiece;
  if (name == "huggingface") return TokenizerKind::kHuggingFace;
  return InvalidArgument("unknown tokenizer kind '{}' (known: sentencepiece, huggingface)", name);
}

Result<std::unique_ptr<Tokenizer>> CreateTokenizer(const TokenizerData& data) {
  switch (data.kind) {
    case TokenizerKind::kSentencePiece:
      return CreateSentencePieceTokenizer(data);
    case TokenizerKind::kHuggingFace:
      return CreateHfTokenizer(data);
  }
  return InvalidArgument("{}: unknown tokenizer kind", data.source);
}

Result<TokenizerData> ReadTokenizerFile(const std::string& path) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(path));
  TokenizerData data;
  if (size_t first = bytes.find_first_not_of(" \t\r\n");
      first != std::string::npos && bytes[first] == '{') {
    LOCKSTEP_ASSIGN_OR_RETURN(data, ReadHfJson(path, std::move(bytes)));
  } else {
    return ReadSentencePiece(path, std::move(bytes));
  }
  LOCKSTEP_RETURN_IF_ERROR(CreateTokenizer(data).status());
  return data;
}

}  // namespace lockstep::runtime
