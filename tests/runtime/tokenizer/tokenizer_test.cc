// Tokenizer unit tests on small hand-made tokenizers: the BPE engine, added
// tokens, normalizers and decoders of tokenizer.json, the SentencePiece
// ModelProto writer, storage in model files, and bad input. The checks
// against real tokenizers and their references are in
// tokenizer_reference_test.cc.
#include "lockstep/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "lockstep/convert/tokenizer_file.h"
#include "lockstep/formats/gguf.h"
#include "lockstep/formats/gguf_tokenizer.h"
#include "lockstep/model/model_file.h"
#include "lockstep/model/synth.h"
#include "lockstep/tokenizer/byte_level.h"
#include "lockstep/tokenizer/sentencepiece_tokenizer.h"
#include "runtime/gguf_test_writer.h"
#include "runtime/model_file_test_util.h"
#include "runtime/tiny_tokenizer.h"
#include "unicode_regex.h"
#include "utf8.h"

namespace lockstep::runtime {
namespace {

using nlohmann::json;
using testing::ScratchDir;
using testing::TinyByteLevelSpec;
using testing::TinyHfData;

std::unique_ptr<Tokenizer> MakeHf(const json& spec, int32_t bos = -1, int32_t eos = -1) {
  TokenizerData data;
  data.kind = TokenizerKind::kHuggingFace;
  data.data = spec.dump();
  data.source = "tiny.json";
  data.bos_token_id = bos;
  data.eos_token_id = eos;
  Result<std::unique_ptr<Tokenizer>> t = CreateTokenizer(data);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(t).value() : nullptr;
}

std::vector<int32_t> Ids(const Tokenizer& t, std::string_view text, bool add_bos = false) {
  Result<std::vector<int32_t>> ids = t.Encode(text, add_bos);
  EXPECT_TRUE(ids.ok()) << ids.status().ToString();
  return ids.ok() ? *ids : std::vector<int32_t>{};
}

TEST(ByteLevelTest, AlphabetIsGpt2s) {
  EXPECT_EQ(ByteToUnicode(' '), U'Ġ');
  EXPECT_EQ(ByteToUnicode('\n'), U'Ċ');
  EXPECT_EQ(ByteToUnicode('A'), U'A');
  EXPECT_EQ(ByteToUnicode(0xAD), U'\u0143');  // the soft hyphen byte is remapped
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(UnicodeToByte(ByteToUnicode(static_cast<uint8_t>(b))), b);
  }
  EXPECT_FALSE(UnicodeToByte(U'€').has_value());
}

TEST(Utf8Test, ValidUtf8ReplacesMaximalSubparts) {
  EXPECT_EQ(ValidUtf8("abc é 🦙"), "abc é 🦙");
  EXPECT_EQ(ValidUtf8("a\xE2\x82"), "a\xEF\xBF\xBD");            // cut 3-byte sequence
  EXPECT_EQ(ValidUtf8("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // two bad bytes
  EXPECT_EQ(ValidUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  EXPECT_EQ(ValidUtf8("\xF0\x9F\xA6x"), "\xEF\xBF\xBDx");
  // The Unicode standard's example (3.9, table 3-8) and what Python's
  // bytes.decode("utf-8", "replace") gives for it: one U+FFFD per maximal
  // subpart, e.g. F1 80 80 is one, E1 80 another, C2 a third.
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(ValidUtf8("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + r + r + r + "b" + r + "c" + r + r + "d");
  EXPECT_EQ(ValidUtf8("\xF4\x90\x80\x80z\xC0\xAF"), r + r + r + r + "z" + r + r);
}

TEST(Utf8Test, DecodingIsStrict) {
  auto decodes = [](std::string_view s) {
    size_t pos = 0;
    const std::optional<char32_t> cp = DecodeUtf8(s, &pos);
    return cp && pos == s.size() ? static_cast<int64_t>(*cp) : int64_t{-1};
  };
  EXPECT_EQ(decodes("A"), 0x41);
  EXPECT_EQ(decodes("\xC3\xA9"), 0xE9);
  EXPECT_EQ(decodes("\xEF\xBF\xBD"), 0xFFFD);
  EXPECT_EQ(decodes("\xF0\x9F\xA6\x99"), 0x1F999);
  EXPECT_EQ(decodes("\xF4\x8F\xBF\xBF"), 0x10FFFF);
  EXPECT_EQ(decodes("\xC0\x80"), -1);          // overlong NUL
  EXPECT_EQ(decodes("\xE0\x80\xAF"), -1);      // overlong '/'
  EXPECT_EQ(decodes("\xF0\x8F\xBF\xBF"), -1);  // overlong U+FFFF
  EXPECT_EQ(decodes("\xED\xA0\x80"), -1);      // surrogate U+D800
  EXPECT_EQ(decodes("\xF4\x90\x80\x80"), -1);  // above U+10FFFF
  EXPECT_EQ(decodes("\xE2\x82"), -1);          // truncated
  EXPECT_EQ(decodes("\x80"), -1);              // lone continuation byte
  size_t pos = 1;
  EXPECT_FALSE(DecodeUtf8("a\xFF", &pos).has_value());
  EXPECT_EQ(pos, 1u);  // unchanged on failure
  for (char32_t cp : {U'A', U'\u00E9', U'\u20AC', U'\U0001F999', U'\U0010FFFF'}) {
    std::string s;
    AppendUtf8(cp, &s);
    EXPECT_EQ(decodes(s), static_cast<int64_t>(cp));
  }
  EXPECT_EQ(FindInvalidUtf8("ab\xC3\xA9\xC3"), std::optional<size_t>(4));
  EXPECT_EQ(FindInvalidUtf8("ab\xC3\xA9"), std::nullopt);
}

TEST(UnicodeRegexTest, SpaceIsUnicodeWhiteSpaceLikeOniguruma) {
  EXPECT_EQ(RewriteOnigurumaPattern(R"(\s+(?!\S)|[^\s\p{L}]|\\s)"),
            R"(\p{White_Space}+(?!\P{White_Space})|[^\p{White_Space}\p{L}]|\\s)");
  Result<UnicodeRegex> regex = UnicodeRegex::Compile(R"(\s+)", "test");
  ASSERT_TRUE(regex.ok());
  // U+0085 is White_Space; U+180E (Mongolian vowel separator) is not any more.
  EXPECT_EQ(regex
                ->FindAll("a\xC2\x85"
                          "b")
                .size(),
            1u);
  EXPECT_EQ(regex
                ->FindAll("a\xE1\xA0\x8E"
                          "b")
                .size(),
            0u);
  Result<UnicodeRegex> bad = UnicodeRegex::Compile("(", "tokenizer.json: pre_tokenizer");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().message().starts_with(
      "tokenizer.json: pre_tokenizer: bad regular expression \"(\" at offset 1"))
      << bad.status().message();
}

TEST(HfTokenizerTest, ByteLevelBpeMergesByRank) {
  auto t = MakeHf(TinyByteLevelSpec(), 265, 266);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->vocab_size(), 269);
  EXPECT_EQ(Ids(*t, "hello world"), (std::vector<int32_t>{259, 264}));
  // No merge for these: one id per byte-level character.
  EXPECT_EQ(Ids(*t, "hi\n"), (std::vector<int32_t>{'h', 'i', 10}));
  EXPECT_EQ(Ids(*t, "é"), (std::vector<int32_t>{0xC3, 0xA9}));
  EXPECT_EQ(Ids(*t, ""), (std::vector<int32_t>{}));
  // The list form of merges is the same model.
  auto lists = MakeHf(TinyByteLevelSpec(true));
  EXPECT_EQ(Ids(*lists, "hello world"), (std::vector<int32_t>{259, 264}));
  EXPECT_EQ(t->TokenText(264), "Ġworld");
  EXPECT_EQ(t->TokenId("hello"), 259);
  EXPECT_EQ(t->TokenId("<tag>"), 267);
  EXPECT_FALSE(t->TokenId("nope").has_value());
}

TEST(HfTokenizerTest, TemplateAddsBosAndAddedTokensAreSplitOut) {
  auto t = MakeHf(TinyByteLevelSpec(), 265, 266);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Ids(*t, "hello world", true), (std::vector<int32_t>{265, 259, 264}));
  EXPECT_EQ(Ids(*t, "hello<|eos|><tag>hello"), (std::vector<int32_t>{259, 266, 267, 259}));
  // Longest match wins; a partial token is ordinary text.
  EXPECT_EQ(Ids(*t, "<|eos|"), (std::vector<int32_t>{'<', '|', 'e', 'o', 's', '|'}));
  // <mask> has lstrip: the space before it is part of the token.
  EXPECT_EQ(Ids(*t, "a <mask> b"), (std::vector<int32_t>{'a', 268, 32, 'b'}));
}

TEST(HfTokenizerTest, DecodeSkipsSpecialTokensOnRequest) {
  auto t = MakeHf(TinyByteLevelSpec(), 265, 266);
  ASSERT_NE(t, nullptr);
  const std::vector<int32_t> ids = {265, 259, 264, 267, 266};
  EXPECT_EQ(t->Decode(ids, false), "<|bos|>hello world<tag><|eos|>");
  EXPECT_EQ(t->Decode(ids, true), "hello world<tag>");
  EXPECT_EQ(t->DecodeToken(264), " world");
  EXPECT_EQ(t->DecodeToken(266), "");
  EXPECT_EQ(t->DecodeToken(100000), "");
  EXPECT_TRUE(t->IsSpecial(265));
  EXPECT_FALSE(t->IsSpecial(267));
  // A character cut between tokens is raw bytes until completed.
  EXPECT_EQ(t->Decode(std::vector<int32_t>{0xC3}, false), "\xC3");
  // Every string round-trips (no normalizer).
  for (const char* s : {"hello world", "  x\t\ny", "héllo 🦙<|eos|>", "<ta"}) {
    EXPECT_EQ(t->Decode(Ids(*t, s), false), s);
  }
}

TEST(HfTokenizerTest, InvalidUtf8IsAnError) {
  auto t = MakeHf(TinyByteLevelSpec());
  ASSERT_NE(t, nullptr);
  Result<std::vector<int32_t>> ids = t->Encode("ab\xFF", false);
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().message(), "text is not valid UTF-8 (byte 2 of 3)");
}

// The Llama-2 style of tokenizer.json: metaspace via normalizers, byte
// fallback, and the decoder chain that undoes it.
json MetaspaceSpec() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = 3 + b;
  vocab["▁"] = 259;
  vocab["a"] = 260;
  vocab["▁a"] = 261;
  return json{
      {"added_tokens", {{{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}}}},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", "▁"}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor", nullptr},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"merges", {"▁ a"}},
        {"unk_token", "<unk>"},
        {"byte_fallback", true},
        {"fuse_unk", true}}}};
}

TEST(HfTokenizerTest, ByteFallbackAndMetaspaceDecoders) {
  TokenizerData data;
  data.kind = TokenizerKind::kHuggingFace;
  data.data = MetaspaceSpec().dump();
  data.source = "meta.json";
  data.bos_token_id = 1;
  data.add_bos_token = true;  // no template: the flag decides
  Result<std::unique_ptr<Tokenizer>> made = CreateTokenizer(data);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  const Tokenizer& t = **made;
  // "a €" -> "▁a▁€": ▁a, ▁, then the three bytes of € (not in the vocabulary).
  const std::vector<int32_t> ids = Ids(t, "a €", true);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 261, 259, 3 + 0xE2, 3 + 0x82, 3 + 0xAC}));
  EXPECT_EQ(t.Decode(ids, true), "a €");
  // A byte sequence that is not UTF-8 decodes to U+FFFD per byte token.
  EXPECT_EQ(t.Decode(std::vector<int32_t>{261, 3 + 0xE2}, true), "a\xEF\xBF\xBD");
  // As running text: the leading space stays, bytes stay raw.
  EXPECT_EQ(t.DecodeToken(261), " a");
  EXPECT_EQ(t.DecodeToken(3 + 0xE2), "\xE2");
}

TEST(HfTokenizerTest, NormalizersNfcAndLowercase) {
  json spec = TinyByteLevelSpec();
  spec["normalizer"] = {{"type", "Sequence"},
                        {"normalizers", {{{"type", "NFC"}}, {{"type", "Lowercase"}}}}};
  auto t = MakeHf(spec);
  ASSERT_NE(t, nullptr);
  // "E" + combining acute -> "é" (NFC) -> lowercase.
  EXPECT_EQ(Ids(*t, "E\xCC\x81"), (std::vector<int32_t>{0xC3, 0xA9}));
  EXPECT_EQ(Ids(*t, "HELLO"), (std::vector<int32_t>{259}));
}

std::string HfError(const std::string& text) {
  TokenizerData data;
  data.kind = TokenizerKind::kHuggingFace;
  data.data = text;
  data.source = "bad.json";
  Result<std::unique_ptr<Tokenizer>> t = CreateTokenizer(data);
  return t.ok() ? "ok" : t.status().message();
}

TEST(HfTokenizerTest, CorruptFilesGiveOneLineErrors) {
  EXPECT_TRUE(HfError("{").starts_with("bad.json: not valid JSON: ")) << HfError("{");
  EXPECT_EQ(HfError("[]"), "bad.json: the top level must be a JSON object");
  EXPECT_EQ(HfError("{}"), "bad.json: the field 'model' is missing (is this a tokenizer.json?)");
  json spec = TinyByteLevelSpec();
  spec["model"]["type"] = "WordPiece";
  EXPECT_EQ(HfError(spec.dump()),
            "bad.json: model.type 'WordPiece' is not supported (only BPE; Llama-2 style "
            "SentencePiece models should be given as tokenizer.model)");
  spec = TinyByteLevelSpec();
  spec["model"] = json::array();
  EXPECT_EQ(HfError(spec.dump()), "bad.json: model must be an object");
  spec = TinyByteLevelSpec();
  spec["model"]["vocab"] = "x";
  EXPECT_EQ(HfError(spec.dump()), "bad.json: model.vocab must be an object {token: id}");
  spec = TinyByteLevelSpec();
  spec["model"]["merges"].push_back("zz q");
  EXPECT_EQ(HfError(spec.dump()),
            "bad.json: tokenizer.json: model.merges[9] (\"zz\" \"q\") uses \"zz\", which is not "
            "in model.vocab");
  spec = TinyByteLevelSpec();
  spec["model"]["merges"].push_back("a b c");
  EXPECT_EQ(HfError(spec.dump()),
            "bad.json: model.merges[9] is \"a b c\", expected two tokens separated by one space");
  spec = TinyByteLevelSpec();
  spec["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
  EXPECT_EQ(HfError(spec.dump()),
            "bad.json: pre_tokenizer.type 'BertPreTokenizer' is not supported (supported: Split, "
            "ByteLevel, Digits, Metaspace, Sequence)");
  spec = TinyByteLevelSpec();
  spec["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(("}}}, {"behavior", "Isolated"}};
  EXPECT_TRUE(HfError(spec.dump())
                  .starts_with("bad.json: pre_tokenizer.pattern.Regex: bad regular "
                               "expression \"((\""))
      << HfError(spec.dump());
  spec = TinyByteLevelSpec();
  spec["added_tokens"][0]["id"] = -3;
  EXPECT_EQ(HfError(spec.dump()),
            "bad.json: added_tokens[0].id must be a token id (an integer from 0), got -3");
  spec = TinyByteLevelSpec();
  spec["decoder"] = {{"type", "WordPiece"}};
  EXPECT_TRUE(
      HfError(spec.dump()).starts_with("bad.json: decoder.type 'WordPiece' is not supported"));
  spec = TinyByteLevelSpec();
  spec["model"]["dropout"] = 0.1;
  EXPECT_EQ(HfError(spec.dump()),
            "bad.json: model.dropout is set; BPE dropout is not supported (it is random)");
}

// A SentencePiece BPE model written by WriteSentencePieceModel and run by
// the library.
SentencePieceVocab TinySentencePieceVocab() {
  SentencePieceVocab v;
  auto add = [&](std::string piece, float score, int type) {
    v.pieces.push_back(std::move(piece));
    v.scores.push_back(score);
    v.types.push_back(type);
  };
  add("<unk>", 0, 2);
  add("<s>", 0, 3);
  add("</s>", 0, 3);
  for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), 0, 6);
  add("▁", -1, 1);       // 259
  add("a", -2, 1);       // 260
  add("b", -3, 1);       // 261
  add("▁a", -0.5f, 1);   // 262
  add("▁ab", -0.1f, 1);  // 263
  return v;
}

TEST(SentencePieceTest, HandWrittenModelProtoRunsInTheLibrary) {
  TokenizerData data;
  data.kind = TokenizerKind::kSentencePiece;
  data.data = WriteSentencePieceModel(TinySentencePieceVocab());
  data.source = "tiny.model";
  data.add_bos_token = true;
  Result<std::unique_ptr<Tokenizer>> made = CreateTokenizer(data);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  const Tokenizer& t = **made;
  EXPECT_EQ(t.vocab_size(), 264);
  EXPECT_EQ(t.bos_token_id(), 1);
  EXPECT_EQ(t.eos_token_id(), 2);
  EXPECT_EQ(Ids(t, "ab"), (std::vector<int32_t>{263}));
  EXPECT_EQ(Ids(t, "ab", true), (std::vector<int32_t>{1, 263}));
  EXPECT_EQ(Ids(t, "c a"), (std::vector<int32_t>{259, 3 + 'c', 262}));
  EXPECT_EQ(t.Decode(Ids(t, "c a", true), true), "c a");
  EXPECT_EQ(t.DecodeToken(262), " a");
  EXPECT_EQ(t.DecodeToken(3 + '\n'), "\n");
  EXPECT_EQ(t.DecodeToken(1), "");
  EXPECT_TRUE(t.IsSpecial(2));
  EXPECT_EQ(t.TokenId("▁ab"), 263);
  EXPECT_FALSE(t.TokenId("zzz").has_value());

  data.bos_token_id = 5;
  EXPECT_EQ(CreateTokenizer(data).status().message(),
            "tiny.model: bos_token_id 5 disagrees with the SentencePiece model's 1");
  data.data = "not a proto";
  EXPECT_TRUE(CreateTokenizer(data).status().message().starts_with(
      "tiny.model: not a valid SentencePiece model"));
}

// The library's trie takes NUL-terminated keys and throws on an empty one:
// such a piece is refused with a Status naming it, before the library sees it.
TEST(SentencePieceTest, EmptyOrNulPieceIsRefusedByIndex) {
  TokenizerData data;
  data.kind = TokenizerKind::kSentencePiece;
  data.source = "bad.model";
  SentencePieceVocab v = TinySentencePieceVocab();
  v.pieces[260] = std::string("a\0b", 3);
  data.data = WriteSentencePieceModel(v);
  EXPECT_EQ(CreateTokenizer(data).status().message(),
            "bad.model: not a valid SentencePiece model: piece 260 is holding a NUL byte");
  v = TinySentencePieceVocab();
  v.pieces[261].clear();
  data.data = WriteSentencePieceModel(v);
  EXPECT_EQ(CreateTokenizer(data).status().message(),
            "bad.model: not a valid SentencePiece model: piece 261 is empty");
}

partitioner::ModelConfig ConfigWithVocab(int64_t vocab) {
  partitioner::ModelConfig c = testing::MicroConfig();
  c.vocab_size = vocab;
  return c;
}

TEST(TokenizerStorageTest, ModelFileCarriesItsTokenizer) {
  ScratchDir dir;
  const TokenizerData data = TinyHfData();
  ASSERT_TRUE(SynthesizeModel(ConfigWithVocab(300), DType::kF32, 1, dir.File("m.h5"), &data).ok());
  Result<ModelFile> model = ModelFile::Open(dir.File("m.h5"));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_TRUE(model->has_tokenizer());
  Result<TokenizerData> read = model->ReadTokenizer();
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->kind, data.kind);
  EXPECT_EQ(read->data, data.data);
  EXPECT_EQ(read->bos_token_id, 265);
  EXPECT_EQ(read->eos_token_id, 266);
  EXPECT_TRUE(read->add_bos_token);
  EXPECT_NE(read->source.find("tiny tokenizer.json"), std::string::npos);
  // LoadTokenizer reads it straight from the model file.
  Result<std::unique_ptr<Tokenizer>> t = LoadTokenizer(dir.File("m.h5"));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(Ids(**t, "hello world", true), (std::vector<int32_t>{265, 259, 264}));
  // Same inputs, same bytes.
  ASSERT_TRUE(SynthesizeModel(ConfigWithVocab(300), DType::kF32, 1, dir.File("m2.h5"), &data).ok());
  EXPECT_EQ(testing::ReadBytes(dir.File("m.h5")), testing::ReadBytes(dir.File("m2.h5")));
}

TEST(TokenizerStorageTest, VocabularyMustFitTheModel) {
  ScratchDir dir;
  const TokenizerData data = TinyHfData();
  Status status = SynthesizeModel(ConfigWithVocab(200), DType::kF32, 1, dir.File("m.h5"), &data);
  EXPECT_EQ(status.message(),
            dir.File("m.h5") +
                ": the tokenizer (tiny tokenizer.json) has 269 tokens but the "
                "model's vocab_size is 200; the tokenizer does not belong to this "
                "model");
}

TEST(TokenizerStorageTest, ModelWithoutTokenizerSaysHowToAddOne) {
  ScratchDir dir;
  ASSERT_TRUE(SynthesizeModel(ConfigWithVocab(300), DType::kF32, 1, dir.File("m.h5")).ok());
  Result<ModelFile> model = ModelFile::Open(dir.File("m.h5"));
  ASSERT_TRUE(model.ok());
  EXPECT_FALSE(model->has_tokenizer());
  Result<TokenizerData> read = model->ReadTokenizer();
  EXPECT_EQ(read.status().code(), StatusCode::kNotFound);
  EXPECT_NE(read.status().message().find("lockstep synth --tokenizer"), std::string::npos);
}

TEST(TokenizerStorageTest, DamagedTokenizerGroupIsRefusedAtOpen) {
  ScratchDir dir;
  const TokenizerData data = TinyHfData();
  ASSERT_TRUE(SynthesizeModel(ConfigWithVocab(300), DType::kF32, 1, dir.File("m.h5"), &data).ok());
  {
    testing::FileEditor edit(dir.File("m.h5"));
    edit.ReplaceDataset("/tokenizer/data", H5T_IEEE_F32LE, {4});
  }
  Result<ModelFile> model = ModelFile::Open(dir.File("m.h5"));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(
      model.status().message(),
      dir.File("m.h5") + ": dataset '/tokenizer/data' must be a non-empty 1-D array of uint8");
  {
    testing::FileEditor edit(dir.File("m.h5"));
    edit.DeleteLink("/tokenizer/data");
  }
  EXPECT_EQ(ModelFile::Open(dir.File("m.h5")).status().message(),
            dir.File("m.h5") + ": the tokenizer group has no dataset '/tokenizer/data'");
  // An unknown kind.
  ASSERT_TRUE(SynthesizeModel(ConfigWithVocab(300), DType::kF32, 1, dir.File("k.h5"), &data).ok());
  {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    hid_t file = H5Fopen(dir.File("k.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t group = H5Gopen2(file, "/tokenizer", H5P_DEFAULT);
    H5Adelete(group, "kind");
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, 6);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(group, "kind", type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, type, "bogus");
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    H5Gclose(group);
    H5Fclose(file);
  }
  EXPECT_EQ(ModelFile::Open(dir.File("k.h5")).status().message(),
            dir.File("k.h5") +
                " (group /tokenizer): attribute 'kind': unknown tokenizer kind 'bogus' (known: "
                "sentencepiece, huggingface)");
}

TEST(ReadTokenizerDataTest, RecognisesFilesByContent) {
  ScratchDir dir;
  // tokenizer.json with a tokenizer_config.json beside it.
  testing::WriteBytes(dir.File("tokenizer.json"), TinyByteLevelSpec().dump().data(),
                      TinyByteLevelSpec().dump().size());
  const std::string config = R"({"bos_token": "<|bos|>", "eos_token": {"content": "<|eos|>"},
                                 "add_bos_token": false})";
  testing::WriteBytes(dir.File("tokenizer_config.json"), config.data(), config.size());
  Result<TokenizerData> json_data = ReadTokenizerData(dir.File("tokenizer.json"));
  ASSERT_TRUE(json_data.ok()) << json_data.status().ToString();
  EXPECT_EQ(json_data->kind, TokenizerKind::kHuggingFace);
  EXPECT_EQ(json_data->bos_token_id, 265);
  EXPECT_EQ(json_data->eos_token_id, 266);
  // A SentencePiece model under any name.
  const std::string proto = WriteSentencePieceModel(TinySentencePieceVocab());
  testing::WriteBytes(dir.File("spm.bin"), proto.data(), proto.size());
  Result<TokenizerData> spm = ReadTokenizerData(dir.File("spm.bin"));
  ASSERT_TRUE(spm.ok()) << spm.status().ToString();
  EXPECT_EQ(spm->kind, TokenizerKind::kSentencePiece);
  EXPECT_TRUE(spm->add_bos_token);
  EXPECT_EQ(spm->bos_token_id, 1);
  // Garbage, a missing file.
  testing::WriteBytes(dir.File("junk"), "\x01\x02garbage", 9);
  EXPECT_EQ(ReadTokenizerData(dir.File("junk")).status().message(),
            dir.File("junk") +
                ": not a tokenizer file this reader knows: not a model file (HDF5), "
                "not GGUF, not a tokenizer.json, and not a SentencePiece "
                "tokenizer.model");
  EXPECT_EQ(ReadTokenizerData(dir.File("nope")).status().code(), StatusCode::kNotFound);
}

TEST(GgufTokenizerTest, UnknownOrMissingTokenizerTypes) {
  testing::GgufTestWriter w;
  w.AddString("tokenizer.ggml.model", "bert");
  w.AddStringArray("tokenizer.ggml.tokens", {"a", "b"});
  Result<GgufFile> file = GgufFile::Parse(w.Bytes(), "v.gguf");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(TokenizerDataFromGguf(*file).status().message(),
            "v.gguf: GGUF key 'tokenizer.ggml.model' is 'bert', a vocabulary model lockstep does "
            "not support (supported: llama = SentencePiece, gpt2 = byte-level BPE)");
  for (const char* model : {"t5", "rwkv", "none", "no_vocab", "plamo2"}) {
    testing::GgufTestWriter other;
    other.AddString("tokenizer.ggml.model", model);
    other.AddStringArray("tokenizer.ggml.tokens", {"a", "b"});
    Result<GgufFile> other_file = GgufFile::Parse(other.Bytes(), "o.gguf");
    EXPECT_EQ(TokenizerDataFromGguf(*other_file).status().message(),
              fmt::format("o.gguf: GGUF key 'tokenizer.ggml.model' is '{}', a vocabulary model "
                          "lockstep does not support (supported: llama = SentencePiece, gpt2 = "
                          "byte-level BPE)",
                          model));
  }
  testing::GgufTestWriter none;
  none.AddString("general.architecture", "llama");
  Result<GgufFile> no_tokenizer = GgufFile::Parse(none.Bytes(), "w.gguf");
  EXPECT_EQ(TokenizerDataFromGguf(*no_tokenizer).status().message(),
            "w.gguf: this GGUF file has no tokenizer (no key 'tokenizer.ggml.model')");
  testing::GgufTestWriter pre;
  pre.AddString("tokenizer.ggml.model", "gpt2");
  pre.AddString("tokenizer.ggml.pre", "chatglm-9000");
  pre.AddStringArray("tokenizer.ggml.tokens", {"a", "b"});
  Result<GgufFile> pre_file = GgufFile::Parse(pre.Bytes(), "p.gguf");
  EXPECT_EQ(TokenizerDataFromGguf(*pre_file).status().message(),
            "p.gguf: GGUF key 'tokenizer.ggml.pre' is 'chatglm-9000', a pre-tokenizer neither "
            "lockstep nor llama.cpp knows (docs/tokenizers.md lists the known ones); use the "
            "model's tokenizer.json instead");
  testing::GgufTestWriter lie;
  lie.AddString("tokenizer.ggml.model", "llama");
  lie.AddStringArray("tokenizer.ggml.tokens", {"a", "b"});
  lie.AddArray<float>("tokenizer.ggml.scores", 6, {1.0f});
  Result<GgufFile> lie_file = GgufFile::Parse(lie.Bytes(), "l.gguf");
  EXPECT_EQ(TokenizerDataFromGguf(*lie_file).status().message(),
            "l.gguf: GGUF key 'tokenizer.ggml.scores' has 1 entries but there are 2 tokens");
}

}  // namespace
}  // namespace lockstep::runtime

namespace lockstep::runtime {
namespace {

// Every tokenizer.ggml.pre value llama.cpp's vocab code (src/llama-vocab.cpp
// at the commit of tests/data/tokenizers) accepts, written out here rather
// than taken from lockstep's table: each must load, and split text so that
// byte-level BPE over all 256 byte tokens round-trips it.
TEST(GgufTokenizerTest, EveryPreTokenizerLlamaCppKnows) {
  const char* names[] = {
      "default",      "llama3",         "llama-v3",     "llama-bpe",  "falcon3",
      "deepseek-llm", "deepseek-coder", "deepseek-v3",  "falcon",     "mpt",
      "starcoder",    "gpt-2",          "phi-2",        "jina-es",    "jina-de",
      "gigachat",     "jina-v1-en",     "jina-v2-es",   "jina-v2-de", "jina-v2-code",
      "roberta-bpe",  "refact",         "command-r",    "qwen2",      "deepseek-r1-qwen",
      "stablelm2",    "olmo",           "dbrx",         "smaug-bpe",  "poro-chat",
      "chatglm-bpe",  "viking",         "jais",         "tekken",     "smollm",
      "codeshell",    "bloom",          "gpt3-finnish", "exaone",     "chameleon",
      "minerva-7b",   "megrez"};
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(BytesToByteLevel(std::string(1, char(b))));
  const std::string text =
      "Hello World! It's 2024-12-31, 3.14159 * 12345 = ??? \n\n\ttabs  and   spaces "
      "\xC3\xA9t\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80 <sentinel:3> "
      "IMGIMGABZ caf\xC3\xA9\r\n";
  for (const char* name : names) {
    testing::GgufTestWriter w;
    w.AddString("tokenizer.ggml.model", "gpt2");
    w.AddString("tokenizer.ggml.pre", name);
    w.AddStringArray("tokenizer.ggml.tokens", tokens);
    w.AddStringArray("tokenizer.ggml.merges", {});
    Result<GgufFile> file = GgufFile::Parse(w.Bytes(), std::string(name) + ".gguf");
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    Result<TokenizerData> data = TokenizerDataFromGguf(*file);
    ASSERT_TRUE(data.ok()) << name << ": " << data.status().ToString();
    Result<std::unique_ptr<Tokenizer>> t = CreateTokenizer(*data);
    ASSERT_TRUE(t.ok()) << name << ": " << t.status().ToString();
    Result<std::vector<int32_t>> ids = (*t)->Encode(text, false);
    ASSERT_TRUE(ids.ok()) << name;
    EXPECT_EQ(ids->size(), text.size()) << name;  // one byte token per byte
    EXPECT_EQ((*t)->Decode(*ids, false), text) << name;
  }
}

}  // namespace
}  // namespace lockstep::runtime
