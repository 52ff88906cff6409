// llama2.c's tokenizer.bin (karpathy/llama2.c tokenizer.py export, read by
// run.c's build_tokenizer) as a stored tokenizer.
//
// Layout (little-endian): int32 max_token_length, then for each of the
// model's vocab_size tokens: f32 score, int32 length, `length` bytes. The
// count is not in the file: it is the checkpoint's vocab_size, and the file
// must end right after the last token.
//
// The export wrote SentencePiece pieces with "▁" replaced by a space and
// BOS/EOS as "\n<s>\n" / "\n</s>\n". This reader undoes both and rebuilds
// the SentencePiece model (BPE by score with byte fallback, a dummy space
// prefix, BOS added) that the pieces came from: id 0 is the unknown piece,
// BOS (1) and EOS (2) are control pieces, "<0xNN>" pieces are bytes. That is
// the algorithm run.c's encode approximates, done by libsentencepiece.
#pragma once

#include <cstdint>
#include <string>

#include "lockstep/base/status.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime {

// Errors name the file and the token: kDataLoss for a truncated file,
// kInvalidArgument for a length that exceeds max_token_length or trailing
// bytes (a vocabulary of another size than the model's).
Result<TokenizerData> ReadLlama2cTokenizer(const std::string& path, int64_t vocab_size);

}  // namespace lockstep::runtime
