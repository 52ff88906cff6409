// The pre-tokenizers that GGUF vocabularies name in tokenizer.ggml.pre
// (docs/tokenizers.md, "GGUF vocabularies"): every name llama.cpp's vocab
// code knows (src/llama-vocab.cpp, LLAMA_VOCAB_PRE_TYPE_*, at the commit
// tests/data/tokenizers comes from), each with the regexes that split text
// before byte-level BPE. A text is split by the first regex, each piece by
// the next, and so on, keeping the text between matches as pieces too
// (Hugging Face's Split with behaviour Isolated) -- what llama.cpp's
// unicode_regex_split does and what the models' own tokenizer.json
// pre-tokenizers do.
#pragma once

#include <span>
#include <string_view>
#include <vector>

namespace lockstep::runtime {

struct GgufPreTokenizer {
  // llama.cpp's LLAMA_VOCAB_PRE_TYPE_* the names map to, lower case
  // ("llama3", "qwen2"), for messages and docs.
  std::string_view type;
  std::vector<std::string_view> names;  // values of tokenizer.ggml.pre
  std::vector<std::string_view> regexes;
  bool ignore_merges = false;  // a word that is a token is that token (Llama-3, Tekken)
  bool nfc = false;            // NFC-normalize first (Qwen2's tokenizer.json does)
  bool add_bos = false;        // llama.cpp's default when add_bos_token is absent
};

// Every known pre-tokenizer.
std::span<const GgufPreTokenizer> GgufPreTokenizers();

// The pre-tokenizer of a tokenizer.ggml.pre value; nullptr for a name
// llama.cpp does not know either. An absent key is "default".
const GgufPreTokenizer* FindGgufPreTokenizer(std::string_view name);

}  // namespace lockstep::runtime
