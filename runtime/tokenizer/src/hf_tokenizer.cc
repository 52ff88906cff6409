// The tokenizer.json engine (hf_tokenizer.h): added tokens, normalizer,
// pre-tokenizer, BPE model, post-processor and decoder, each in its own file
// pair (hf_*.h); this file reads the model and post-processor and ties the
// steps together in the Rust library's order.
#include "hf_tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "bpe_model.h"
#include "hf_added_tokens.h"
#include "hf_decoder.h"
#include "hf_normalizer.h"
#include "hf_pre_tokenizer.h"
#include "hf_spec.h"
#include "lockstep/base/json_nesting.h"
#include "utf8.h"

namespace lockstep::runtime {
namespace {

using namespace hf;  // NOLINT: the tokenizer.json components

class HfTokenizer final : public Tokenizer {
 public:
  static std::unique_ptr<HfTokenizer> Build(const TokenizerData& data, const json& spec);

  TokenizerKind kind() const override { return TokenizerKind::kHuggingFace; }
  int32_t vocab_size() const override { return static_cast<int32_t>(id_to_token_.size()); }
  int32_t bos_token_id() const override { return bos_; }
  int32_t eos_token_id() const override { return eos_; }

  Result<std::vector<int32_t>> Encode(std::string_view text, bool add_bos) const override {
    if (std::optional<size_t> bad = FindInvalidUtf8(text)) {
      return InvalidArgument("text is not valid UTF-8 (byte {} of {})", *bad, text.size());
    }
    std::vector<int32_t> ids;
    if (add_bos) {
      for (int32_t id : template_prefix_) ids.push_back(id);
    }
    std::vector<Segment> raw_segments;
    SplitAddedTokens(text, true, raw_matcher_, added_, &raw_segments);
    for (Segment& segment : raw_segments) {
      if (segment.added_id >= 0) {
        ids.push_back(segment.added_id);
        continue;
      }
      std::string normalized = Normalize(std::move(segment.text));
      std::vector<Segment> segments;
      SplitAddedTokens(normalized, segment.at_start, normalized_matcher_, added_, &segments);
      for (Segment& s : segments) {
        if (s.added_id >= 0) {
          ids.push_back(s.added_id);
          continue;
        }
        std::vector<Piece> pieces = {{std::move(s.text), s.at_start}};
        for (const PreTokenizerStep& step : pre_tokenizer_) step.Apply(&pieces);
        for (const Piece& piece : pieces) model_->Tokenize(piece.text, &ids);
      }
    }
    if (add_bos) {
      for (int32_t id : template_suffix_) ids.push_back(id);
    }
    return ids;
  }

  // Added tokens are always split out of tokenizer.json text.
  Result<std::vector<int32_t>> EncodeSpecial(std::string_view text) const override {
    return Encode(text, /*add_bos=*/false);
  }

  std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size() || !has_token_[id]) continue;
      if (skip_special_tokens && special_[id]) continue;
      tokens.push_back(id_to_token_[id]);
    }
    return RunDecoder(std::move(tokens), false);
  }

  std::string DecodeToken(int32_t id) const override {
    if (id < 0 || id >= vocab_size() || !has_token_[id] || special_[id]) return "";
    return RunDecoder({id_to_token_[id]}, true);
  }

  bool IsSpecial(int32_t id) const override { return id >= 0 && id < vocab_size() && special_[id]; }
  std::string TokenText(int32_t id) const override {
    return id >= 0 && id < vocab_size() ? id_to_token_[id] : std::string();
  }
  std::optional<int32_t> TokenId(std::string_view token_text) const override {
    std::string key(token_text);
    for (const AddedToken& a : added_) {
      if (a.content == key) return a.id;
    }
    auto it = model_->vocab().find(key);
    if (it == model_->vocab().end()) return std::nullopt;
    return it->second;
  }

 private:
  std::string Normalize(std::string s) const {
    for (const NormalizerStep& step : normalizer_) s = step.Apply(std::move(s));
    return s;
  }
  std::string RunDecoder(std::vector<std::string> tokens, bool continuation) const {
    for (const DecoderStep& step : decoder_) step.Apply(&tokens, continuation);
    std::string out;
    for (const std::string& t : tokens) out += t;
    return out;
  }

  std::vector<NormalizerStep> normalizer_;
  std::vector<PreTokenizerStep> pre_tokenizer_;
  std::optional<BpeModel> model_;
  std::vector<DecoderStep> decoder_;
  std::vector<AddedToken> added_;
  AddedTokenMatcher raw_matcher_, normalized_matcher_;
  std::vector<std::string> id_to_token_;
  std::vector<uint8_t> has_token_, special_;
  std::vector<int32_t> template_prefix_, template_suffix_;  // added by Encode(add_bos)
  int32_t bos_ = -1, eos_ = -1;
};

// TemplateProcessing: the ids before and after sequence A of `single`.
bool ParseTemplate(const json& p, const std::string& where, std::vector<int32_t>* prefix,
                   std::vector<int32_t>* suffix) {
  const json& single = Field(p, "single", where);
  const json& specials = Field(p, "special_tokens", where);
  if (!single.is_array()) Fail(where + ".single must be a list");
  bool seen_a = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const std::string item_where = fmt::format("{}.single[{}]", where, i);
    const json& item = single[i];
    if (item.contains("Sequence")) {
      const std::string id = StringField(item["Sequence"], "id", item_where + ".Sequence");
      if (id != "A" || seen_a) Fail(item_where + ": the single template must hold sequence A once");
      seen_a = true;
    } else if (item.contains("SpecialToken")) {
      const std::string name =
          StringField(item["SpecialToken"], "id", item_where + ".SpecialToken");
      const json& entry = Field(specials, name.c_str(), where + ".special_tokens");
      const json& ids = Field(entry, "ids", fmt::format("{}.special_tokens.{}", where, name));
      if (!ids.is_array())
        Fail(fmt::format("{}.special_tokens.{}.ids must be a list", where, name));
      for (const json& id : ids) {
        (seen_a ? suffix : prefix)->push_back(TokenIdValue(id, where + ".special_tokens"));
      }
    } else {
      Fail(item_where + " must be a Sequence or a SpecialToken");
    }
  }
  if (!seen_a) Fail(where + ".single has no sequence A");
  return true;
}

// Returns whether a TemplateProcessing was found.
bool ParsePostProcessor(const json& p, const std::string& where, std::vector<int32_t>* prefix,
                        std::vector<int32_t>* suffix) {
  if (p.is_null()) return false;
  const std::string type = TypeOf(p, where);
  if (type == "Sequence") {
    const json& list = Field(p, "processors", where);
    if (!list.is_array()) Fail(where + ".processors must be a list");
    bool found = false;
    for (size_t i = 0; i < list.size(); ++i) {
      found =
          ParsePostProcessor(list[i], fmt::format("{}.processors[{}]", where, i), prefix, suffix) ||
          found;
    }
    return found;
  }
  if (type == "ByteLevel") return false;  // offsets only
  if (type == "TemplateProcessing") return ParseTemplate(p, where, prefix, suffix);
  Fail(fmt::format(
      "{}.type '{}' is not supported (supported: TemplateProcessing, ByteLevel, Sequence)", where,
      type));
}

BpeModelSpec ParseBpeSpec(const json& m) {
  const std::string where = "model";
  const std::string type = m.contains("type") ? TypeOf(m, where) : "BPE";
  if (type != "BPE") {
    Fail(
        fmt::format("model.type '{}' is not supported (only BPE; Llama-2 style SentencePiece "
                    "models should be given as tokenizer.model)",
                    type));
  }
  if (auto it = m.find("dropout"); it != m.end() && !it->is_null()) {
    Fail("model.dropout is set; BPE dropout is not supported (it is random)");
  }
  for (const char* name : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (auto it = m.find(name);
        it != m.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty())) {
      Fail(fmt::format("model.{} is set; it is not supported", name));
    }
  }
  BpeModelSpec spec;
  const json& vocab = Field(m, "vocab", where);
  if (!vocab.is_object()) Fail("model.vocab must be an object {token: id}");
  spec.vocab.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    spec.vocab.emplace(it.key(),
                       TokenIdValue(it.value(), "model.vocab[" + json(it.key()).dump() + "]"));
  }
  const json& merges = Field(m, "merges", where);
  if (!merges.is_array()) Fail("model.merges must be a list");
  spec.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& merge = merges[i];
    if (merge.is_string()) {
      const std::string text = merge.get<std::string>();
      const size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        Fail(fmt::format("model.merges[{}] is {}, expected two tokens separated by one space", i,
                         merge.dump()));
      }
      spec.merges.emplace_back(text.substr(0, space), text.substr(space + 1));
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      spec.merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
    } else {
      Fail(fmt::format("model.merges[{}] must be \"a b\" or [\"a\", \"b\"], got {}", i,
                       merge.dump().substr(0, 60)));
    }
  }
  if (auto it = m.find("unk_token"); it != m.end() && !it->is_null()) {
    if (!it->is_string()) Fail("model.unk_token must be a string or null");
    spec.unk_token = it->get<std::string>();
  }
  spec.fuse_unk = BoolField(m, "fuse_unk", where, false);
  spec.byte_fallback = BoolField(m, "byte_fallback", where, false);
  spec.ignore_merges = BoolField(m, "ignore_merges", where, false);
  return spec;
}

std::unique_ptr<HfTokenizer> HfTokenizer::Build(const TokenizerData& data, const json& spec) {
  auto t = std::make_unique<HfTokenizer>();
  if (!spec.is_object()) Fail("the top level must be a JSON object");
  auto find = [&](const char* name) -> const json& {
    static const json kNull;
    auto it = spec.find(name);
    return it == spec.end() ? kNull : *it;
  };
  if (!spec.contains("model")) Fail("the field 'model' is missing (is this a tokenizer.json?)");
  ParseNormalizer(find("normalizer"), "normalizer", &t->normalizer_);
  ParsePreTokenizer(find("pre_tokenizer"), "pre_tokenizer", &t->pre_tokenizer_);
  ParseDecoder(find("decoder"), "decoder", &t->decoder_);
  Result<BpeModel> model = BpeModel::Create(ParseBpeSpec(spec["model"]), "tokenizer.json");
  if (!model.ok()) Fail(model.status().message());
  t->model_ = std::move(model).value();

  const json& added = find("added_tokens");
  if (!added.is_null() && !added.is_array()) Fail("added_tokens must be a list");
  for (size_t i = 0; i < added.size(); ++i) {
    const std::string where = fmt::format("added_tokens[{}]", i);
    AddedToken a;
    a.id = TokenIdValue(Field(added[i], "id", where), where + ".id");
    a.content = StringField(added[i], "content", where);
    if (a.content.empty()) Fail(where + ".content is empty");
    if (FindInvalidUtf8(a.content)) Fail(where + ".content is not valid UTF-8");
    a.special = BoolField(added[i], "special", where, false);
    a.lstrip = BoolField(added[i], "lstrip", where, false);
    a.rstrip = BoolField(added[i], "rstrip", where, false);
    a.single_word = BoolField(added[i], "single_word", where, false);
    a.normalized = BoolField(added[i], "normalized", where, !a.special);
    t->added_.push_back(std::move(a));
  }

  // id -> token: the model's vocabulary, then the added tokens over it.
  int32_t size = 0;
  for (const auto& [token, id] : t->model_->vocab()) size = std::max(size, id + 1);
  for (const AddedToken& a : t->added_) size = std::max(size, a.id + 1);
  t->id_to_token_.assign(static_cast<size_t>(size), std::string());
  t->has_token_.assign(static_cast<size_t>(size), 0);
  t->special_.assign(static_cast<size_t>(size), 0);
  for (const auto& [token, id] : t->model_->vocab()) {
    t->id_to_token_[id] = token;
    t->has_token_[id] = 1;
  }
  for (size_t i = 0; i < t->added_.size(); ++i) {
    const AddedToken& a = t->added_[i];
    t->id_to_token_[a.id] = a.content;
    t->has_token_[a.id] = 1;
    t->special_[a.id] = a.special;
    if (a.normalized) {
      t->normalized_matcher_.Add(t->Normalize(a.content), i);
    } else {
      t->raw_matcher_.Add(a.content, i);
    }
  }

  auto added_contents = std::make_shared<std::unordered_set<std::string>>();
  for (const AddedToken& a : t->added_) added_contents->insert(a.content);
  for (DecoderStep& step : t->decoder_) {
    if (step.kind == DecoderStep::Kind::kByteLevel) step.added_contents = added_contents;
  }

  const bool has_template = ParsePostProcessor(find("post_processor"), "post_processor",
                                               &t->template_prefix_, &t->template_suffix_);
  auto check_id = [&](int32_t id, const char* what) {
    if (id < -1 || id >= size) {
      Fail(fmt::format("{} {} is outside the vocabulary of {} tokens", what, id, size));
    }
  };
  check_id(data.bos_token_id, "bos_token_id");
  check_id(data.eos_token_id, "eos_token_id");
  for (int32_t id : t->template_prefix_) check_id(id, "post_processor special token id");
  for (int32_t id : t->template_suffix_) check_id(id, "post_processor special token id");
  t->bos_ = data.bos_token_id;
  t->eos_ = data.eos_token_id;
  if (!has_template && data.add_bos_token && data.bos_token_id >= 0) {
    t->template_prefix_ = {data.bos_token_id};
  }
  return t;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> CreateHfTokenizer(const TokenizerData& data) {
  LOCKSTEP_RETURN_IF_ERROR(CheckJsonNesting(data.data, data.source));
  try {
    const json spec = json::parse(data.data);
    return std::unique_ptr<Tokenizer>(HfTokenizer::Build(data, spec));
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    if (size_t end = what.find("] "); what.starts_with("[") && end != std::string::npos) {
      what = what.substr(end + 2);
    }
    return InvalidArgument("{}: not valid JSON: {}", data.source, what);
  } catch (const json::exception& e) {
    return InvalidArgument("{}: malformed tokenizer.json: {}", data.source, e.what());
  } catch (const SpecError& e) {
    return InvalidArgument("{}: {}", data.source, e.message);
  }
}

}  // namespace lockstep::runtime
