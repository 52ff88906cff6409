// A tiny byte-level BPE tokenizer.json for tests that need a real tokenizer
// without data files: 269 ids (bytes 0..255, nine merges spelling "hello"
// and " world", added tokens <|bos|> 265, <|eos|> 266, <tag> 267, <mask>
// 268); "hello world" with its BOS template is {265, 259, 264}.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "lockstep/tokenizer/byte_level.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime::testing {

// A byte-level BPE tokenizer.json: ids 0..255 are the byte-level characters
// of bytes 0..255, then the merge results, then added tokens.
inline nlohmann::json TinyByteLevelSpec(bool list_merges = false) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[BytesToByteLevel(std::string(1, static_cast<char>(b)))] = b;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"}, {"l", "l"},   {"he", "ll"}, {"hell", "o"}, {"Ġ", "w"},
      {"o", "r"}, {"Ġw", "or"}, {"l", "d"},   {"Ġwor", "ld"}};
  nlohmann::json merge_list = nlohmann::json::array();
  int next = 256;
  for (const auto& [a, b] : merges) {
    vocab[a + b] = next++;
    if (list_merges) {
      merge_list.push_back({a, b});
    } else {
      merge_list.push_back(a + " " + b);
    }
  }
  auto added = [](int id, const char* content, bool special, bool lstrip = false) {
    return nlohmann::json{{"id", id},          {"content", content}, {"single_word", false},
                          {"lstrip", lstrip},  {"rstrip", false},    {"normalized", false},
                          {"special", special}};
  };
  return nlohmann::json{
      {"version", "1.0"},
      {"added_tokens",
       {added(265, "<|bos|>", true), added(266, "<|eos|>", true), added(267, "<tag>", false),
        added(268, "<mask>", true, true)}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single",
         {{{"SpecialToken", {{"id", "<|bos|>"}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair", nlohmann::json::array()},
        {"special_tokens",
         {{"<|bos|>", {{"id", "<|bos|>"}, {"ids", {265}}, {"tokens", {"<|bos|>"}}}}}}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}, {"byte_fallback", false}}}};
}

// The same as stored in a model file: BOS 265 added, EOS 266.
inline TokenizerData TinyHfData() {
  TokenizerData data;
  data.kind = TokenizerKind::kHuggingFace;
  data.data = TinyByteLevelSpec().dump();
  data.bos_token_id = 265;
  data.eos_token_id = 266;
  data.add_bos_token = true;
  data.source = "tiny tokenizer.json";
  return data;
}

}  // namespace lockstep::runtime::testing
