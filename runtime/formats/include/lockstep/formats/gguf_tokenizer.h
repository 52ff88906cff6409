// The tokenizer a GGUF file carries in its tokenizer.ggml.* metadata
// (docs/tokenizers.md).
#pragma once

#include "lockstep/base/status.h"
#include "lockstep/formats/gguf.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime {

// The tokenizer a GGUF file describes (tokenizer.ggml.model "llama" or
// "gpt2", with tokens, scores, token_type, merges, bos/eos, add_bos_token,
// add_space_prefix and pre). Used by ReadTokenizerData and by converters.
Result<TokenizerData> TokenizerDataFromGguf(const GgufFile& gguf);

}  // namespace lockstep::runtime
