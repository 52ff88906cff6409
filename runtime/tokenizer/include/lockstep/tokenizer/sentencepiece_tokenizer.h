// The SentencePiece engine (TokenizerKind::kSentencePiece): Google's
// SentencePiece library does the work (Debian libsentencepiece); this file
// only adapts it to the Tokenizer interface.
//
// Conventions on top of the library: Encode(text, true) prepends the BOS id
// when TokenizerData::add_bos_token is set (the Llama convention; the
// ModelProto does not say). DecodeToken shows a piece as running text: "▁"
// becomes a space, a <0xNN> byte piece its byte, the unknown piece the
// model's unk_surface (" ⁇ " by default), control pieces nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime {

Result<std::unique_ptr<Tokenizer>> CreateSentencePieceTokenizer(const TokenizerData& data);

// What is needed to write a SentencePiece model (tokenizer.ggml.model =
// "llama" in GGUF files).
struct SentencePieceVocab {
  std::vector<std::string> pieces;
  std::vector<float> scores;
  // sentencepiece.ModelProto.SentencePiece.Type: 1 normal, 2 unknown,
  // 3 control, 4 user defined, 5 unused, 6 byte (the same codes as GGUF's
  // tokenizer.ggml.token_type; 0 is read as normal).
  std::vector<int32_t> types;
  int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  bool add_dummy_prefix = true;  // a space in front of the text ("▁" prefix)
};

// A serialized sentencepiece.ModelProto (the bytes of a tokenizer.model) for
// a BPE model with byte fallback over `vocab`, with the identity
// normalization Llama uses (no NFKC, no whitespace folding, spaces escaped
// as "▁"). Written by hand in protobuf wire format (fields numbered as in
// sentencepiece_model.proto), since Debian does not ship the generated
// header.
std::string WriteSentencePieceModel(const SentencePieceVocab& vocab);

}  // namespace lockstep::runtime
