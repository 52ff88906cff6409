#include "lockstep/tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <cstring>

#include "hf_added_tokens.h"
#include "utf8.h"

namespace lockstep::runtime {
namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // ▁

// Protobuf wire format reading: a varint at *pos, or nullopt past the end.
std::optional<uint64_t> ReadVarint(std::string_view bytes, size_t* pos) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64 && *pos < bytes.size(); shift += 7) {
    const auto b = static_cast<uint8_t>(bytes[(*pos)++]);
    v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) return v;
  }
  return std::nullopt;
}

// Skips one field of wire type `wire`; false when malformed.
bool SkipField(std::string_view bytes, int wire, size_t* pos) {
  switch (wire) {
    case 0:
      return ReadVarint(bytes, pos).has_value();
    case 1:
      *pos += 8;
      return *pos <= bytes.size();
    case 2: {
      std::optional<uint64_t> n = ReadVarint(bytes, pos);
      if (!n || *n > bytes.size() - *pos) return false;
      *pos += *n;
      return true;
    }
    case 5:
      *pos += 4;
      return *pos <= bytes.size();
    default:
      return false;
  }
}

// One piece of a serialized ModelProto: its text (SentencePiece.piece = 1)
// and type (SentencePiece.type = 3, NORMAL when absent).
struct PieceRecord {
  std::string_view text;
  int32_t type = 1;
};

// Every piece of a serialized ModelProto (pieces = 1); nullopt when the
// wire format is malformed (the library then refuses the proto itself).
std::optional<std::vector<PieceRecord>> ReadPieces(std::string_view proto) {
  std::vector<PieceRecord> pieces;
  size_t pos = 0;
  while (pos < proto.size()) {
    std::optional<uint64_t> tag = ReadVarint(proto, &pos);
    if (!tag) return std::nullopt;
    const int field = static_cast<int>(*tag >> 3), wire = static_cast<int>(*tag & 7);
    if (field != 1 || wire != 2) {
      if (!SkipField(proto, wire, &pos)) return std::nullopt;
      continue;
    }
    std::optional<uint64_t> n = ReadVarint(proto, &pos);
    if (!n || *n > proto.size() - pos) return std::nullopt;
    const std::string_view piece = proto.substr(pos, *n);
    pos += *n;
    PieceRecord record;
    size_t p = 0;
    while (p < piece.size()) {
      std::optional<uint64_t> t = ReadVarint(piece, &p);
      if (!t) return std::nullopt;
      const uint64_t f = *t >> 3, w = *t & 7;
      if (f == 3 && w == 0) {
        std::optional<uint64_t> v = ReadVarint(piece, &p);
        if (!v) return std::nullopt;
        record.type = static_cast<int32_t>(*v);
      } else if (f == 1 && w == 2) {
        std::optional<uint64_t> len = ReadVarint(piece, &p);
        if (!len || *len > piece.size() - p) return std::nullopt;
        record.text = piece.substr(p, *len);
        p += *len;
      } else if (!SkipField(piece, static_cast<int>(w), &p)) {
        return std::nullopt;
      }
    }
    pieces.push_back(record);
  }
  return pieces;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  static Result<std::unique_ptr<Tokenizer>> Create(const TokenizerData& data) {
    auto t = std::make_unique<SentencePieceTokenizer>();
    const std::optional<std::vector<PieceRecord>> pieces = ReadPieces(data.data);
    // The library keeps pieces in a trie of NUL-terminated keys and throws on
    // an empty one (a C++ exception, uncaught, ended the fuzzer); the
    // trainer never writes such a piece. Anything else the library throws is
    // caught below.
    for (size_t i = 0; pieces && i < pieces->size(); ++i) {
      const std::string_view text = (*pieces)[i].text;
      if (text.empty() || text.find('\0') != std::string_view::npos) {
        return InvalidArgument("{}: not a valid SentencePiece model: piece {} is {}", data.source,
                               i, text.empty() ? "empty" : "holding a NUL byte");
      }
    }
    sentencepiece::util::Status loaded;
    try {
      loaded = t->processor_.LoadFromSerializedProto(data.data);
    } catch (const std::exception& e) {
      return InvalidArgument("{}: not a valid SentencePiece model: {}", data.source, e.what());
    }
    if (!loaded.ok()) {
      return InvalidArgument("{}: not a valid SentencePiece model: {}", data.source,
                             loaded.ToString());
    }
    const int32_t bos = t->processor_.bos_id(), eos = t->processor_.eos_id();
    if (data.bos_token_id != -1 && data.bos_token_id != bos) {
      return InvalidArgument("{}: bos_token_id {} disagrees with the SentencePiece model's {}",
                             data.source, data.bos_token_id, bos);
    }
    if (data.eos_token_id != -1 && data.eos_token_id != eos) {
      return InvalidArgument("{}: eos_token_id {} disagrees with the SentencePiece model's {}",
                             data.source, data.eos_token_id, eos);
    }
    t->add_bos_ = data.add_bos_token && bos >= 0;
    const int size = t->processor_.GetPieceSize();
    t->running_text_.resize(static_cast<size_t>(size));
    // (Debian's libsentencepiece has no IsUserDefined: read the types.)
    for (int id = 0; id < size; ++id) {
      t->running_text_[id] = t->RunningText(id);
      const bool user_defined =
          pieces && static_cast<size_t>(id) < pieces->size() && (*pieces)[id].type == 4;
      const bool special = t->processor_.IsControl(id) || user_defined;
      if (special && !t->processor_.IdToPiece(id).empty()) {
        t->special_matcher_.Add(t->processor_.IdToPiece(id), t->special_tokens_.size());
        t->special_tokens_.push_back({.id = id, .content = t->processor_.IdToPiece(id)});
      }
    }
    return std::unique_ptr<Tokenizer>(std::move(t));
  }

  TokenizerKind kind() const override { return TokenizerKind::kSentencePiece; }
  int32_t vocab_size() const override { return processor_.GetPieceSize(); }
  int32_t bos_token_id() const override { return processor_.bos_id(); }
  int32_t eos_token_id() const override { return processor_.eos_id(); }

  Result<std::vector<int32_t>> Encode(std::string_view text, bool add_bos) const override {
    if (std::optional<size_t> bad = FindInvalidUtf8(text)) {
      return InvalidArgument("text is not valid UTF-8 (byte {} of {})", *bad, text.size());
    }
    std::vector<int> ids;
    const auto status = processor_.Encode(text, &ids);
    if (!status.ok()) return Internal("SentencePiece failed to encode: {}", status.ToString());
    std::vector<int32_t> out;
    out.reserve(ids.size() + 1);
    if (add_bos && add_bos_) out.push_back(processor_.bos_id());
    out.insert(out.end(), ids.begin(), ids.end());
    return out;
  }

  Result<std::vector<int32_t>> EncodeSpecial(std::string_view text) const override {
    if (std::optional<size_t> bad = FindInvalidUtf8(text)) {
      return InvalidArgument("text is not valid UTF-8 (byte {} of {})", *bad, text.size());
    }
    std::vector<hf::Segment> segments;
    hf::SplitAddedTokens(text, true, special_matcher_, special_tokens_, &segments);
    std::vector<int32_t> out;
    for (const hf::Segment& segment : segments) {
      if (segment.added_id >= 0) {
        out.push_back(segment.added_id);
        continue;
      }
      LOCKSTEP_ASSIGN_OR_RETURN(std::vector<int32_t> ids, Encode(segment.text, false));
      out.insert(out.end(), ids.begin(), ids.end());
    }
    return out;
  }

  std::string Decode(std::span<const int32_t> ids, bool /*skip_special_tokens*/) const override {
    // The library drops control pieces whatever is asked.
    std::vector<int> valid;
    valid.reserve(ids.size());
    for (int32_t id : ids) {
      if (id >= 0 && id < vocab_size()) valid.push_back(id);
    }
    std::string text;
    const auto status = processor_.Decode(valid, &text);
    if (!status.ok()) return std::string();  // only for ids out of range, removed above
    return text;
  }

  std::string DecodeToken(int32_t id) const override {
    if (id < 0 || id >= vocab_size()) return "";
    return running_text_[id];
  }

  bool IsSpecial(int32_t id) const override {
    return id >= 0 && id < vocab_size() && processor_.IsControl(id);
  }
  std::string TokenText(int32_t id) const override {
    if (id < 0 || id >= vocab_size()) return "";
    return processor_.IdToPiece(id);
  }
  std::optional<int32_t> TokenId(std::string_view token_text) const override {
    const int id = processor_.PieceToId(token_text);
    if (id < 0 || processor_.IdToPiece(id) != token_text) return std::nullopt;
    return id;
  }

 private:
  std::string RunningText(int id) const {
    if (processor_.IsControl(id)) return "";
    if (processor_.IsUnknown(id)) {
      std::string surface;
      if (processor_.Decode(std::vector<int>{id}, &surface).ok()) return surface;
      return "";
    }
    const std::string& piece = processor_.IdToPiece(id);
    if (processor_.IsByte(id) && piece.size() == 6) {
      return std::string(1,
                         static_cast<char>(std::strtol(piece.substr(3, 2).c_str(), nullptr, 16)));
    }
    std::string text;
    size_t pos = 0;
    while (true) {
      const size_t hit = piece.find(kMetaspace, pos);
      text.append(piece, pos, hit == std::string::npos ? std::string::npos : hit - pos);
      if (hit == std::string::npos) break;
      text.push_back(' ');
      pos = hit + kMetaspace.size();
    }
    return text;
  }

  sentencepiece::SentencePieceProcessor processor_;
  bool add_bos_ = false;
  std::vector<std::string> running_text_;  // DecodeToken of every id
  // Control and user-defined pieces, for EncodeSpecial.
  std::vector<hf::AddedToken> special_tokens_;
  hf::AddedTokenMatcher special_matcher_;
};

// Protobuf wire format (varint, length-delimited, fixed32).
void Varint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
void Tag(int field, int wire_type, std::string* out) {
  Varint((static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type), out);
}
void VarintField(int field, int64_t v, std::string* out) {
  Tag(field, 0, out);
  Varint(static_cast<uint64_t>(v), out);  // negative int32: 10-byte two's complement
}
void BytesField(int field, std::string_view bytes, std::string* out) {
  Tag(field, 2, out);
  Varint(bytes.size(), out);
  out->append(bytes);
}
void FloatField(int field, float v, std::string* out) {
  Tag(field, 5, out);
  char bytes[4];
  std::memcpy(bytes, &v, 4);
  out->append(bytes, 4);
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> CreateSentencePieceTokenizer(const TokenizerData& data) {
  return SentencePieceTokenizer::Create(data);
}

std::string WriteSentencePieceModel(const SentencePieceVocab& vocab) {
  const int64_t size = static_cast<int64_t>(vocab.pieces.size());
  auto valid = [&](int32_t id) { return id >= 0 && id < size; };
  std::string out;
  bool has_bytes = false;
  // ModelProto.pieces = 1: SentencePiece {piece = 1, score = 2, type = 3}.
  for (size_t i = 0; i < vocab.pieces.size(); ++i) {
    std::string piece;
    BytesField(1, vocab.pieces[i], &piece);
    FloatField(2, i < vocab.scores.size() ? vocab.scores[i] : 0.0f, &piece);
    int32_t type = i < vocab.types.size() ? vocab.types[i] : 1;
    if (type <= 0 || type > 6) type = 1;
    const auto id = static_cast<int32_t>(i);
    // SentencePiece wants exactly one unknown piece, and the BOS/EOS/pad
    // pieces to be control pieces; GGUF vocabularies mark padding slots
    // "unknown" too (Phi-3: [PAD32011]...), which become control pieces:
    // never produced from text, decoded to nothing.
    if (id == vocab.unk_id) {
      type = 2;
    } else if (id == vocab.bos_id || id == vocab.eos_id || id == vocab.pad_id || type == 2) {
      type = 3;
    }
    has_bytes = has_bytes || type == 6;
    VarintField(3, type, &piece);
    BytesField(1, piece, &out);
  }
  // ModelProto.trainer_spec = 2: model_type = 3 (BPE = 2), vocab_size = 4,
  // byte_fallback = 35, unk_id = 40, bos_id = 41, eos_id = 42, pad_id = 43,
  // unk_piece = 45, bos_piece = 46, eos_piece = 47, pad_piece = 48. The
  // library finds BOS/EOS/pad by their piece text, not their ids, so the
  // pieces are written too (Phi-3's EOS is "<|endoftext|>", not "</s>").
  std::string trainer;
  VarintField(3, 2, &trainer);
  VarintField(4, size, &trainer);
  VarintField(35, has_bytes ? 1 : 0, &trainer);
  VarintField(40, vocab.unk_id, &trainer);
  VarintField(41, vocab.bos_id, &trainer);
  VarintField(42, vocab.eos_id, &trainer);
  VarintField(43, vocab.pad_id, &trainer);
  if (valid(vocab.unk_id)) BytesField(45, vocab.pieces[vocab.unk_id], &trainer);
  // A piece text no vocabulary has stands for "none" (the defaults "<s>",
  // "</s>" would find a piece of that text elsewhere).
  constexpr std::string_view kNone = "\x01lockstep:none\x01";
  BytesField(46, valid(vocab.bos_id) ? std::string_view(vocab.pieces[vocab.bos_id]) : kNone,
             &trainer);
  BytesField(47, valid(vocab.eos_id) ? std::string_view(vocab.pieces[vocab.eos_id]) : kNone,
             &trainer);
  BytesField(48, valid(vocab.pad_id) ? std::string_view(vocab.pieces[vocab.pad_id]) : kNone,
             &trainer);
  BytesField(2, trainer, &out);
  // ModelProto.normalizer_spec = 3: name = 1, add_dummy_prefix = 3,
  // remove_extra_whitespaces = 4, escape_whitespaces = 5.
  std::string normalizer;
  BytesField(1, "identity", &normalizer);
  VarintField(3, vocab.add_dummy_prefix ? 1 : 0, &normalizer);
  VarintField(4, 0, &normalizer);
  VarintField(5, 1, &normalizer);
  BytesField(3, normalizer, &out);
  return out;
}

}  // namespace lockstep::runtime
