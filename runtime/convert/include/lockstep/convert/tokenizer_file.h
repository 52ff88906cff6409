// Reading the tokenizer of any file lockstep knows: a model file, a GGUF
// file, a tokenizer.json or a SentencePiece tokenizer.model
// (docs/tokenizers.md). It sits beside the converters because it needs
// both readers of foreign formats (GGUF) and the model file.
#pragma once

#include <memory>
#include <string>

#include "lockstep/base/status.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime {

// The serialized tokenizer in `path`, recognised by its content (not its
// name): a model file (HDF5, its /tokenizer group), a GGUF file (its
// tokenizer.ggml.* metadata), or a tokenizer file (ReadTokenizerFile:
// tokenizer.json or tokenizer.model). Errors name the file and say what was
// expected. The result is checked by building the tokenizer once.
Result<TokenizerData> ReadTokenizerData(const std::string& path);

// ReadTokenizerData + CreateTokenizer.
Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path);

}  // namespace lockstep::runtime
