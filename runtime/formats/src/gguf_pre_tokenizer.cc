// The regexes of llama.cpp's LLAMA_VOCAB_PRE_TYPE_* (gguf_pre_tokenizer.h).
// Where llama.cpp rewrote a tokenizer.json regex for std::regex (Llama-3,
// Qwen2, Tekken: "(?i:...)" spelled out, Unicode classes approximated) the
// original regex of the model's tokenizer.json is used: lockstep's regex
// engine runs Oniguruma's syntax as the Hugging Face library does
// (unicode_regex.h), and that library made the expected ids the tests
// compare with.
#include "gguf_pre_tokenizer.h"

#include <array>

namespace lockstep::runtime {
namespace {

// GPT-2's regex as llama.cpp lists it (without the final "|\s+" of the
// original: with Isolated splitting the text that alternative matched is a
// piece anyway).
constexpr std::string_view kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr std::string_view kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kBloom = " ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+";

const std::vector<GgufPreTokenizer>& Table() {
  static const std::vector<GgufPreTokenizer> table = {
      {"default", {"default"}, {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}},
      {"llama3", {"llama3", "llama-v3", "llama-bpe", "falcon3"}, {kLlama3}, true, false, true},
      {"dbrx", {"dbrx"}, {kLlama3}},
      {"smaug", {"smaug-bpe"}, {kLlama3}},
      {"deepseek_llm",
       {"deepseek-llm"},
       {"[\r\n]",
        "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-"
        "\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-"
        "\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-"
        "\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-"
        "\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-"
        "\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-"
        "\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-"
        "\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-"
        "\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-"
        "\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-"
        "\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-"
        "\U000104D3\U000104D8-\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-"
        "\U000118DF\U0001E900-\U0001E943]+",
        "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+", "\\s+$",
        "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+", R"(\p{N}+)"}},
      {"deepseek3_llm",
       {"deepseek-v3"},
       {R"(\p{N}{1,3})", "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+",
        "[!\"#$%&'()*+,\\-./"
        ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{"
        "M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}},
      {"deepseek_coder",
       {"deepseek-coder"},
       {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+",
        R"(\p{N})"}},
      {"falcon", {"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}},
      {"mpt", {"mpt"}, {kGpt2}},
      {"starcoder", {"starcoder"}, {R"(\p{N})", kGpt2}},
      {"gpt2",
       {"gpt-2", "gpt2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
        "jina-v2-de", "jina-v2-code", "roberta-bpe"},
       {kGpt2}},
      {"refact", {"refact"}, {R"(\p{N})", kGpt2}},
      {"command_r", {"command-r"}, {R"(\p{N})", kGpt2}},
      {"qwen2", {"qwen2", "deepseek-r1-qwen", "megrez"}, {kQwen2}, false, true},
      {"stablelm2", {"stablelm2"}, {kQwen2}},
      {"olmo", {"olmo"}, {kGpt2}},
      {"poro", {"poro-chat"}, {kBloom}},
      {"chatglm4", {"chatglm-bpe"}, {kLlama3}},
      {"viking", {"viking"}, {kBloom, R"(\p{N})"}},
      {"jais", {"jais"}, {kGpt2}},
      {"tekken",
       {"tekken"},
       {R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
       true,
       false,
       true},
      {"smollm", {"smollm"}, {R"(\p{N})", kGpt2}},
      {"codeshell", {"codeshell"}, {R"(\p{N})", kGpt2}},
      {"bloom", {"bloom"}, {kBloom}},
      {"gpt3_finnish", {"gpt3-finnish"}, {kBloom}},
      {"exaone", {"exaone"}, {R"(\p{N})", kGpt2}},
      {"chameleon",
       {"chameleon"},
       {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )",
        R"(\p{N})", R"([\p{P}!-/:-@\[-`{-~])", kGpt2},
       false,
       false,
       true},
      {"minerva", {"minerva-7b"}, {R"(\p{N})", kGpt2}},
  };
  return table;
}

}  // namespace

std::span<const GgufPreTokenizer> GgufPreTokenizers() {
  return Table();
}

const GgufPreTokenizer* FindGgufPreTokenizer(std::string_view name) {
  for (const GgufPreTokenizer& p : Table()) {
    for (std::string_view n : p.names) {
      if (n == name) return &p;
    }
  }
  return nullptr;
}

}  // namespace lockstep::runtime
