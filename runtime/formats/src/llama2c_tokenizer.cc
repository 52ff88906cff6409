#include "lockstep/formats/llama2c_tokenizer.h"

#include <fmt/format.h>

#include <cstring>
#include <vector>

#include "lockstep/formats/input_file.h"
#include "lockstep/tokenizer/sentencepiece_tokenizer.h"

namespace lockstep::runtime {
namespace {

constexpr int32_t kTypeNormal = 1, kTypeUnknown = 2, kTypeControl = 3, kTypeByte = 6;
constexpr std::string_view kSpace = "\xe2\x96\x81";  // U+2581, SentencePiece's space

bool IsBytePiece(std::string_view p) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  return p.size() == 6 && p.starts_with("<0x") && hex(p[3]) && hex(p[4]) && p[5] == '>';
}

}  // namespace

Result<TokenizerData> ReadLlama2cTokenizer(const std::string& path, int64_t vocab_size) {
  LOCKSTEP_ASSIGN_OR_RETURN(InputFile file, InputFile::Open(path));
  // tokenizer.bin files are small (the Llama 2 vocabulary takes 434 kB).
  if (file.size() > (uint64_t{1} << 30)) {
    return InvalidArgument("{}: {} bytes, too large for a llama2.c tokenizer.bin", path,
                           file.size());
  }
  std::vector<uint8_t> bytes(file.size());
  LOCKSTEP_RETURN_IF_ERROR(file.ReadAt(0, bytes.size(), bytes.data(), "the tokenizer"));
  uint64_t pos = 0;
  auto read_raw = [&](void* dst, uint64_t n, const std::string& what) -> Status {
    if (n > bytes.size() - pos) {
      return DataLoss("{}: truncated: {} needs bytes [{}, {}) but the file has {} bytes", path,
                      what, pos, pos + n, bytes.size());
    }
    std::memcpy(dst, bytes.data() + pos, n);
    pos += n;
    return Status::Ok();
  };
  int32_t max_length = 0;
  LOCKSTEP_RETURN_IF_ERROR(read_raw(&max_length, 4, "max_token_length"));
  if (max_length <= 0 || max_length > (1 << 16)) {
    return InvalidArgument("{}: not a llama2.c tokenizer.bin: max_token_length is {}", path,
                           max_length);
  }
  SentencePieceVocab vocab;
  vocab.pieces.reserve(static_cast<size_t>(vocab_size));
  for (int64_t id = 0; id < vocab_size; ++id) {
    float score = 0;
    int32_t length = 0;
    const std::string what = fmt::format("token {}", id);
    LOCKSTEP_RETURN_IF_ERROR(read_raw(&score, 4, what));
    LOCKSTEP_RETURN_IF_ERROR(read_raw(&length, 4, what));
    if (length < 0 || length > max_length) {
      return InvalidArgument("{}: token {} has length {}, outside [0, max_token_length = {}]", path,
                             id, length, max_length);
    }
    std::string text(static_cast<size_t>(length), '\0');
    LOCKSTEP_RETURN_IF_ERROR(read_raw(text.data(), static_cast<uint64_t>(length), what));
    int32_t type = kTypeNormal;
    if (id == 0) {
      type = kTypeUnknown;
    } else if (text == "\n<s>\n" || text == "\n</s>\n") {
      text = text.substr(1, text.size() - 2);
      type = kTypeControl;
    } else if (IsBytePiece(text)) {
      type = kTypeByte;
    } else {
      std::string piece;
      for (char ch : text) {
        if (ch == ' ') {
          piece += kSpace;
        } else {
          piece += ch;
        }
      }
      text = std::move(piece);
    }
    vocab.pieces.push_back(std::move(text));
    vocab.scores.push_back(score);
    vocab.types.push_back(type);
  }
  if (pos != bytes.size()) {
    return InvalidArgument(
        "{}: {} bytes follow the model's {} tokens: this tokenizer.bin is for a larger "
        "vocabulary than the checkpoint's",
        path, bytes.size() - pos, vocab_size);
  }
  vocab.unk_id = 0;
  vocab.bos_id = vocab_size > 1 ? 1 : -1;
  vocab.eos_id = vocab_size > 2 ? 2 : -1;
  vocab.add_dummy_prefix = true;
  TokenizerData data;
  data.kind = TokenizerKind::kSentencePiece;
  data.data = WriteSentencePieceModel(vocab);
  data.bos_token_id = vocab.bos_id;
  data.eos_token_id = vocab.eos_id;
  data.add_bos_token = true;  // run.c encodes prompts with BOS
  data.source = fmt::format("{} (llama2.c tokenizer.bin)", path);
  LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> check, CreateTokenizer(data));
  return data;
}

}  // namespace lockstep::runtime
