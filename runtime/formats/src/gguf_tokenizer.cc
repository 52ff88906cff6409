// TokenizerDataFromGguf: the tokenizer.ggml.* metadata of a GGUF file as a
// TokenizerData (docs/tokenizers.md, "GGUF vocabularies").
//
//   tokenizer.ggml.model = "llama"  -> a SentencePiece ModelProto (BPE with
//     byte fallback, the pieces, scores and token types of the file) run by
//     libsentencepiece: the algorithm llama.cpp's SPM tokenizer reproduces.
//   tokenizer.ggml.model = "gpt2"   -> a tokenizer.json: BPE over the
//     byte-level vocabulary with tokenizer.ggml.merges, the pre-tokenizer
//     regex named by tokenizer.ggml.pre (GPT-2's when absent), control and
//     user-defined tokens as added tokens (control ones special).
#include "lockstep/formats/gguf_tokenizer.h"

#include <nlohmann/json.hpp>

#include "gguf_pre_tokenizer.h"
#include "lockstep/tokenizer/sentencepiece_tokenizer.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime {
namespace {

using nlohmann::json;

constexpr int32_t kTypeNormal = 1;
constexpr int32_t kTypeControl = 3;
constexpr int32_t kTypeUserDefined = 4;

Result<int32_t> OptionalTokenId(const GgufFile& gguf, std::string_view key, int64_t vocab) {
  if (gguf.Find(key) == nullptr) return -1;
  LOCKSTEP_ASSIGN_OR_RETURN(int64_t id, gguf.GetInt(key));
  if (id < 0 || id >= vocab) {
    return InvalidArgument("{}: GGUF key '{}' is {}, outside the vocabulary of {} tokens",
                           gguf.path(), key, id, vocab);
  }
  return static_cast<int32_t>(id);
}

Result<bool> OptionalBool(const GgufFile& gguf, std::string_view key, bool fallback) {
  if (gguf.Find(key) == nullptr) return fallback;
  return gguf.GetBool(key);
}

}  // namespace

Result<TokenizerData> TokenizerDataFromGguf(const GgufFile& gguf) {
  const std::string& path = gguf.path();
  if (gguf.Find("tokenizer.ggml.model") == nullptr) {
    return NotFound("{}: this GGUF file has no tokenizer (no key 'tokenizer.ggml.model')", path);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(std::string model, gguf.GetString("tokenizer.ggml.model"));
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<std::string> tokens,
                            gguf.GetStringArray("tokenizer.ggml.tokens"));
  if (tokens.empty() || tokens.size() > static_cast<size_t>(INT32_MAX)) {
    return InvalidArgument("{}: GGUF key 'tokenizer.ggml.tokens' has {} tokens", path,
                           tokens.size());
  }
  const int64_t vocab = static_cast<int64_t>(tokens.size());
  std::vector<int32_t> types(tokens.size(), kTypeNormal);
  if (gguf.Find("tokenizer.ggml.token_type") != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<int64_t> t,
                              gguf.GetIntArray("tokenizer.ggml.token_type"));
    if (t.size() != tokens.size()) {
      return InvalidArgument(
          "{}: GGUF key 'tokenizer.ggml.token_type' has {} entries but there are {} tokens", path,
          t.size(), tokens.size());
    }
    for (size_t i = 0; i < t.size(); ++i) types[i] = static_cast<int32_t>(t[i]);
  }
  TokenizerData data;
  data.source = fmt::format("{} (tokenizer.ggml.model = {})", path, model);
  LOCKSTEP_ASSIGN_OR_RETURN(data.bos_token_id,
                            OptionalTokenId(gguf, "tokenizer.ggml.bos_token_id", vocab));
  LOCKSTEP_ASSIGN_OR_RETURN(data.eos_token_id,
                            OptionalTokenId(gguf, "tokenizer.ggml.eos_token_id", vocab));
  if (gguf.Find("tokenizer.chat_template") != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(data.chat_template, gguf.GetString("tokenizer.chat_template"));
  }

  if (model == "llama") {
    SentencePieceVocab v;
    v.pieces = std::move(tokens);
    v.types = std::move(types);
    if (gguf.Find("tokenizer.ggml.scores") != nullptr) {
      LOCKSTEP_ASSIGN_OR_RETURN(v.scores, gguf.GetFloatArray("tokenizer.ggml.scores"));
      if (v.scores.size() != v.pieces.size()) {
        return InvalidArgument(
            "{}: GGUF key 'tokenizer.ggml.scores' has {} entries but there are {} tokens", path,
            v.scores.size(), v.pieces.size());
      }
    }
    LOCKSTEP_ASSIGN_OR_RETURN(int32_t unk,
                              OptionalTokenId(gguf, "tokenizer.ggml.unknown_token_id", vocab));
    LOCKSTEP_ASSIGN_OR_RETURN(int32_t pad,
                              OptionalTokenId(gguf, "tokenizer.ggml.padding_token_id", vocab));
    v.unk_id = unk >= 0 ? unk : 0;
    v.bos_id = data.bos_token_id;
    v.eos_id = data.eos_token_id;
    // A pad id equal to another special id (some files use unk) is not a
    // separate piece for SentencePiece.
    v.pad_id = (pad == v.unk_id || pad == v.bos_id || pad == v.eos_id) ? -1 : pad;
    LOCKSTEP_ASSIGN_OR_RETURN(v.add_dummy_prefix,
                              OptionalBool(gguf, "tokenizer.ggml.add_space_prefix", true));
    LOCKSTEP_ASSIGN_OR_RETURN(data.add_bos_token,
                              OptionalBool(gguf, "tokenizer.ggml.add_bos_token", true));
    data.kind = TokenizerKind::kSentencePiece;
    data.data = WriteSentencePieceModel(v);
    return data;
  }

  if (model == "gpt2") {
    std::string pre = "default";
    if (gguf.Find("tokenizer.ggml.pre") != nullptr) {
      LOCKSTEP_ASSIGN_OR_RETURN(pre, gguf.GetString("tokenizer.ggml.pre"));
    }
    const GgufPreTokenizer* found = FindGgufPreTokenizer(pre);
    if (found == nullptr) {
      return InvalidArgument(
          "{}: GGUF key 'tokenizer.ggml.pre' is '{}', a pre-tokenizer neither lockstep nor "
          "llama.cpp knows (docs/tokenizers.md lists the known ones); use the model's "
          "tokenizer.json instead",
          path, pre);
    }
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<std::string> merges,
                              gguf.GetStringArray("tokenizer.ggml.merges"));
    json pre_tokenizers = json::array();
    for (std::string_view regex : found->regexes) {
      pre_tokenizers.push_back({{"type", "Split"},
                                {"pattern", {{"Regex", regex}}},
                                {"behavior", "Isolated"},
                                {"invert", false}});
    }
    pre_tokenizers.push_back({{"type", "ByteLevel"},
                              {"add_prefix_space", false},
                              {"trim_offsets", false},
                              {"use_regex", false}});
    json vocab_json = json::object();
    json added = json::array();
    for (size_t i = 0; i < tokens.size(); ++i) {
      vocab_json[tokens[i]] = i;
      if (types[i] == kTypeControl || types[i] == kTypeUserDefined) {
        added.push_back({{"id", i},
                         {"content", tokens[i]},
                         {"single_word", false},
                         {"lstrip", false},
                         {"rstrip", false},
                         {"normalized", false},
                         {"special", types[i] == kTypeControl}});
      }
    }
    json spec = {
        {"version", "1.0"},
        {"added_tokens", added},
        {"normalizer", found->nfc ? json{{"type", "NFC"}} : json(nullptr)},
        {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", pre_tokenizers}}},
        {"post_processor", nullptr},
        {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}},
        {"model",
         {{"type", "BPE"},
          {"byte_fallback", false},
          {"ignore_merges", found->ignore_merges},
          {"vocab", vocab_json},
          {"merges", merges}}},
    };
    LOCKSTEP_ASSIGN_OR_RETURN(data.add_bos_token,
                              OptionalBool(gguf, "tokenizer.ggml.add_bos_token", found->add_bos));
    data.add_bos_token = data.add_bos_token && data.bos_token_id >= 0;
    data.kind = TokenizerKind::kHuggingFace;
    data.data = spec.dump(-1, ' ', false, json::error_handler_t::replace);
    return data;
  }
  // llama.cpp's other vocabulary models: bert (WordPiece), t5 (Unigram),
  // rwkv, none/no_vocab. None of them belongs to a model family lockstep
  // runs (docs/tokenizers.md says why they are refused, not supported).
  return InvalidArgument(
      "{}: GGUF key 'tokenizer.ggml.model' is '{}', a vocabulary model lockstep does not "
      "support (supported: llama = SentencePiece, gpt2 = byte-level BPE)",
      path, model);
}

}  // namespace lockstep::runtime
