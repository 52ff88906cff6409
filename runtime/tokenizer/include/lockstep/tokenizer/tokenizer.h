// Tokenizers: text <-> token ids behind one interface, the files they are
// read from, and the serialized form stored in model files
// (docs/tokenizers.md).
//
// Two engines, each following a reference no one here wrote:
//   kSentencePiece  Google's SentencePiece library (Debian libsentencepiece):
//                   a `tokenizer.model` (Llama-2 family), or a GGUF
//                   vocabulary with tokenizer.ggml.model = "llama", turned
//                   into the same ModelProto.
//   kHuggingFace    a Hugging Face `tokenizer.json` with a BPE model
//                   (Llama-3, Qwen, GPT-2 families): added tokens,
//                   normalizers, pre-tokenizers (PCRE2 regexes with the
//                   Oniguruma semantics the Rust library has), byte-level
//                   BPE, post-processor, decoders. A GGUF vocabulary with
//                   tokenizer.ggml.model = "gpt2" becomes such a JSON.
//
// Text is UTF-8. Ids are int32. Thread safety: a Tokenizer is immutable
// after creation; all its methods are const and may run on any number of
// threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/base/status.h"

namespace lockstep::runtime {

enum class TokenizerKind { kSentencePiece, kHuggingFace };
std::string_view TokenizerKindName(TokenizerKind kind);  // "sentencepiece", "huggingface"
Result<TokenizerKind> ParseTokenizerKind(std::string_view name);

// A tokenizer as stored in a model file (the /tokenizer group,
// docs/model-format.md): the bytes of a file in the tokenizer's own
// well-known format, plus the conventions that file does not carry.
struct TokenizerData {
  TokenizerKind kind = TokenizerKind::kSentencePiece;
  // kSentencePiece: a serialized sentencepiece.ModelProto (what a
  // tokenizer.model holds). kHuggingFace: the text of a tokenizer.json.
  std::string data;
  // -1 when there is none. For kSentencePiece the ModelProto's own ids are
  // used and these must agree with them; for kHuggingFace they name tokens
  // of the JSON (bos/eos are not part of tokenizer.json; they come from
  // tokenizer_config.json or the GGUF metadata).
  int32_t bos_token_id = -1;
  int32_t eos_token_id = -1;
  // Whether Encode(text, /*add_bos=*/true) prepends bos_token_id. For a
  // tokenizer.json whose post_processor is a TemplateProcessing, the
  // template decides instead and this flag is ignored.
  bool add_bos_token = false;
  // The model's Jinja chat template (chat_template.h): the chat_template of
  // the tokenizer_config.json beside a tokenizer file (a string, or the
  // entry named "default" of a list), GGUF tokenizer.chat_template; "" when
  // the model has none. Stored with the tokenizer; chat requests need it.
  std::string chat_template;
  // Where it came from, for people ("tokenizer.json", "x.gguf
  // (tokenizer.ggml.model = llama)"); stored but never interpreted.
  std::string source;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual TokenizerKind kind() const = 0;
  // Ids are in [0, vocab_size()): the model's vocabulary plus added tokens.
  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_token_id() const = 0;  // -1: none
  virtual int32_t eos_token_id() const = 0;  // -1: none

  // Text -> ids. add_bos: add the special tokens this tokenizer's model was
  // trained with -- the BOS token for Llama-2 and Llama-3 (per
  // TokenizerData::add_bos_token or the tokenizer.json TemplateProcessing),
  // nothing for Qwen or GPT-2; false adds none. Text that spells a special
  // token is handled as the reference does: a tokenizer.json's added tokens
  // are split out and become their ids ("<|begin_of_text|>" inside text is
  // id 128000 for Llama-3); SentencePiece encodes control-token text
  // ("<s>") as ordinary characters. InvalidArgument if `text` is not valid
  // UTF-8 (naming the byte offset).
  virtual Result<std::vector<int32_t>> Encode(std::string_view text, bool add_bos) const = 0;

  // Text -> ids for a prompt rendered from a chat template: no tokens are
  // added, and text that spells a special token of the vocabulary becomes
  // that token, as Hugging Face's apply_chat_template(tokenize=True) and
  // llama.cpp (parse_special) do -- "<|eot_id|>" is 128009 for Llama-3,
  // "<s>" is BOS and "<|user|>" 32010 for a Phi-3 SentencePiece vocabulary
  // (its control and user-defined pieces, longest match first; the text
  // between them is encoded as by Encode, each piece with the space
  // SentencePiece puts in front). InvalidArgument for invalid UTF-8.
  virtual Result<std::vector<int32_t>> EncodeSpecial(std::string_view text) const = 0;

  // Ids -> text, as the reference's decode does (SentencePiece drops the
  // space it added in front of the first word; byte-level tokens become
  // their bytes). skip_special_tokens drops BOS/EOS/control tokens (the
  // SentencePiece library always drops control tokens). Ids outside
  // [0, vocab_size()) decode to nothing, as in Hugging Face's decoders. The
  // result is raw bytes and may hold an incomplete UTF-8 sequence where a
  // multi-byte character was cut between tokens; use ValidUtf8 before
  // putting it in JSON.
  virtual std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens) const = 0;

  // The bytes one token adds to running text when it follows other tokens
  // (no start-of-text rule applies): " Paris" for "▁Paris" or "ĠParis", the
  // byte 0x0A for "<0x0A>", "" for special/control tokens and ids outside
  // the vocabulary. Concatenating DecodeToken over generated tokens is the
  // completion text of a batch job.
  virtual std::string DecodeToken(int32_t id) const = 0;

  // True for control/special tokens (BOS, EOS, "<|im_start|>", ...).
  virtual bool IsSpecial(int32_t id) const = 0;
  // The vocabulary entry of an id as stored ("▁Hello", "ĠHello", "<s>");
  // "" outside the vocabulary.
  virtual std::string TokenText(int32_t id) const = 0;
  // The id of a vocabulary entry or added token, if there is one.
  virtual std::optional<int32_t> TokenId(std::string_view token_text) const = 0;
};

// The tokenizer in a tokenizer file, recognised by its content (not its
// name): a tokenizer.json (JSON text; bos/eos and add_bos_token from a
// tokenizer_config.json in the same folder when there is one), or a
// SentencePiece tokenizer.model (anything else that parses as one; BOS
// added, the Llama convention). Errors name the file and say what was
// expected. The result is checked by building the tokenizer once. Model
// files and GGUF files hold tokenizers too: ReadTokenizerData
// (lockstep/convert/tokenizer_file.h) reads any of them.
Result<TokenizerData> ReadTokenizerFile(const std::string& path);

// Builds a tokenizer. InvalidArgument, naming `data.source` and the JSON
// field or proto problem, for anything malformed or unsupported.
Result<std::unique_ptr<Tokenizer>> CreateTokenizer(const TokenizerData& data);

// `text` with every invalid UTF-8 sequence replaced by U+FFFD (one per
// maximal invalid subpart, as the Unicode standard recommends and Python's
// errors="replace" does).
std::string ValidUtf8(std::string_view text);

}  // namespace lockstep::runtime
