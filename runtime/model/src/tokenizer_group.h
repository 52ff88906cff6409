// The /tokenizer group of a model file (docs/model-format.md, "Tokenizer"):
//
//   /tokenizer            group, attributes:
//       kind              string: "sentencepiece" | "huggingface"
//       bos_token_id      int64, -1 for none
//       eos_token_id      int64, -1 for none
//       add_bos_token     int64 0 | 1
//       source            string, informational
//   /tokenizer/data       1-D uint8 dataset: the bytes of the tokenizer file
//                         (a tokenizer.model ModelProto or tokenizer.json text),
//                         attribute sha256: their digest (model_integrity.h)
//
// Call under Hdf5Lock. `file` in messages is the model file's name.
#pragma once

#include <optional>
#include <string>

#include <hdf5.h>

#include <string_view>

#include "lockstep/base/status.h"
#include "lockstep/tokenizer/tokenizer.h"

namespace lockstep::runtime {

inline constexpr const char* kTokenizerGroup = "/tokenizer";
inline constexpr const char* kTokenizerDataset = "/tokenizer/data";
// The chat template's UTF-8 text, when the model has one.
inline constexpr const char* kChatTemplateDataset = "/tokenizer/chat_template";

// Returns the data's SHA-256 (hex), which it also stores as its attribute.
Result<std::string> WriteTokenizerGroup(hid_t file, std::string_view file_name,
                                        const TokenizerData& tokenizer);

// The attributes only (data left empty), checking that the group is well
// formed: every attribute present with its type, the kind known, the ids
// >= -1, and the data dataset 1-D uint8 and not empty. `digest` (may be
// null) receives the data's sha256 attribute, nullopt when it has none.
Result<TokenizerData> ReadTokenizerAttributes(hid_t file, std::string_view file_name,
                                              std::optional<std::string>* digest = nullptr);

// Attributes and data; DataLoss when the data does not match its sha256.
Result<TokenizerData> ReadTokenizerGroup(hid_t file, std::string_view file_name);

}  // namespace lockstep::runtime
