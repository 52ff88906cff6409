// Reading the tokenizer of any file lockstep knows (tokenizer_file.h).
#include "lockstep/convert/tokenizer_file.h"

#include <fstream>

#include "lockstep/formats/gguf.h"
#include "lockstep/formats/gguf_tokenizer.h"
#include "lockstep/model/model_file.h"

namespace lockstep::runtime {
namespace {

// The first bytes of every HDF5 file, and of every GGUF file.
constexpr std::string_view kHdf5Signature = "\x89HDF\r\n\x1a\n";
constexpr std::string_view kGgufSignature = "GGUF";

// The first 8 bytes of `path` ("" for a file shorter than that or one that
// cannot be read: ReadTokenizerFile then names the problem).
std::string FileSignature(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string head(kHdf5Signature.size(), '\0');
  if (!in.read(head.data(), static_cast<std::streamsize>(head.size()))) return "";
  return head;
}

}  // namespace

Result<TokenizerData> ReadTokenizerData(const std::string& path) {
  const std::string signature = FileSignature(path);
  TokenizerData data;
  if (signature.starts_with(kHdf5Signature)) {
    LOCKSTEP_ASSIGN_OR_RETURN(ModelFile model, ModelFile::Open(path));
    LOCKSTEP_ASSIGN_OR_RETURN(data, model.ReadTokenizer());
  } else if (signature.starts_with(kGgufSignature)) {
    LOCKSTEP_ASSIGN_OR_RETURN(GgufFile gguf, GgufFile::Open(path));
    LOCKSTEP_ASSIGN_OR_RETURN(data, TokenizerDataFromGguf(gguf));
  } else {
    return ReadTokenizerFile(path);
  }
  LOCKSTEP_RETURN_IF_ERROR(CreateTokenizer(data).status());
  return data;
}

Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path) {
  LOCKSTEP_ASSIGN_OR_RETURN(TokenizerData data, ReadTokenizerData(path));
  return CreateTokenizer(data);
}

}  // namespace lockstep::runtime
