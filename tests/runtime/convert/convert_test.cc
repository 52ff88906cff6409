// Unit tests of the converter's pieces: the safetensors header parser, the
// decoding of source encodings, the RoPE row permutation, and a whole
// conversion of a hand-written checkpoint read back from the model file.
#include "lockstep/convert/convert.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "convert_progress.h"
#include "lockstep/base/dtype.h"
#include "lockstep/formats/input_file.h"
#include "lockstep/formats/safetensors.h"
#include "lockstep/formats/source_tensor.h"
#include "lockstep/model/model_file.h"
#include "runtime/model_file_test_util.h"

namespace lockstep::runtime {
namespace {

using testing::ScratchDir;

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <typename T>
std::string Raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// A safetensors file: 8-byte length, the header text, the data.
std::string Safetensors(const std::string& header, const std::string& data) {
  const uint64_t n = header.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + header + data;
}

Result<SafetensorsHeader> ParseSafetensors(const ScratchDir& dir, const std::string& bytes) {
  const std::string path = dir.File("t.safetensors");
  WriteBytes(path, bytes);
  LOCKSTEP_ASSIGN_OR_RETURN(InputFile file, InputFile::Open(path));
  return ReadSafetensorsHeader(file);
}

TEST(SafetensorsTest, ParsesEntriesWithAbsoluteOffsets) {
  ScratchDir dir;
  const std::string header =
      R"({"__metadata__": {"format": "pt"},
          "b": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [16, 28]},
          "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})";
  Result<SafetensorsHeader> parsed =
      ParseSafetensors(dir, Safetensors(header, std::string(28, 'x')));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->tensors.size(), 2u);
  EXPECT_EQ(parsed->tensors[0].name, "a");  // offset order
  EXPECT_EQ(parsed->tensors[0].offset, 8 + header.size());
  EXPECT_EQ(parsed->tensors[1].dtype, "BF16");
  EXPECT_EQ(parsed->tensors[1].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(parsed->tensors[1].offset, 8 + header.size() + 16);
  EXPECT_EQ(parsed->tensors[1].size, 12u);
  EXPECT_EQ(parsed->metadata.at("format"), "pt");
  EXPECT_NE(parsed->Find("b"), nullptr);
  EXPECT_EQ(parsed->Find("c"), nullptr);
}

TEST(SafetensorsTest, RefusesBadHeadersWithNamedErrors) {
  ScratchDir dir;
  struct Case {
    std::string bytes;
    StatusCode code;
    std::string message;
  };
  const std::string f32x4 = R"("dtype": "F32", "shape": [4], "data_offsets": )";
  const std::vector<Case> cases = {
      {"abc", StatusCode::kDataLoss, "3 bytes, too short"},
      {Safetensors("{}", "").substr(0, 8), StatusCode::kDataLoss, "header length field says 2"},
      {Safetensors("[1, 2]", ""), StatusCode::kInvalidArgument, "not a safetensors file"},
      {Safetensors("{\"a\": ", ""), StatusCode::kInvalidArgument, "not valid JSON"},
      {Safetensors(R"({"a": {"dtype": "F12", "shape": [1], "data_offsets": [0, 1]}})", "x"),
       StatusCode::kInvalidArgument, "tensor 'a' has unknown dtype 'F12'"},
      {Safetensors(R"({"a": {)" + f32x4 + "[0, 12]}}", std::string(16, 'x')),
       StatusCode::kInvalidArgument, "the safetensors header lies"},
      {Safetensors(R"({"a": {)" + f32x4 + "[8, 24]}}", std::string(16, 'x')), StatusCode::kDataLoss,
       "tensor 'a' needs bytes [8, 24) of the data section, which has 16"},
      {Safetensors(R"({"a": {)" + f32x4 + "[16, 0]}}", std::string(16, 'x')),
       StatusCode::kInvalidArgument, "begin > end"},
      {Safetensors(R"({"a": {)" + f32x4 + "[0, 16]}, \"b\": {" + f32x4 + "[12, 28]}}",
                   std::string(28, 'x')),
       StatusCode::kInvalidArgument, "tensors 'a' and 'b' overlap"},
      {Safetensors(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0]}})", ""),
       StatusCode::kInvalidArgument, "'data_offsets' is not a list of two"},
      {Safetensors(R"({"a": {"dtype": "F32", "shape": [1099511627777, 1099511627777],
                    "data_offsets": [0, 0]}})",
                   ""),
       StatusCode::kInvalidArgument, "a dimension of 'shape'"},
      {Safetensors(R"({"a": {"dtype": "F64", "shape": [4294967296, 4294967296, 4],
                    "data_offsets": [0, 0]}})",
                   ""),
       StatusCode::kInvalidArgument, "overflows"},
  };
  for (const Case& c : cases) {
    Result<SafetensorsHeader> parsed = ParseSafetensors(dir, c.bytes);
    ASSERT_FALSE(parsed.ok()) << c.message;
    EXPECT_EQ(parsed.status().code(), c.code) << parsed.status().ToString();
    EXPECT_NE(parsed.status().message().find(c.message), std::string::npos)
        << parsed.status().message() << " lacks " << c.message;
    EXPECT_NE(parsed.status().message().find("t.safetensors"), std::string::npos);
  }
}

class SourceTensorTest : public ::testing::Test {
 protected:
  // A file holding `bytes` and a tensor over it.
  SourceTensor Tensor(const std::string& bytes, SourceEncoding encoding,
                      std::vector<int64_t> shape) {
    WriteBytes(dir_.File("data"), bytes);
    Result<InputFile> file = InputFile::Open(dir_.File("data"));
    EXPECT_TRUE(file.ok());
    file_ = std::move(*file);
    SourceTensor t;
    t.name = "t";
    t.file = &file_;
    t.encoding = encoding;
    t.shape = std::move(shape);
    return t;
  }
  std::vector<float> Rows(const SourceTensor& t, int64_t begin, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n * t.cols()));
    std::vector<uint8_t> scratch;
    Status s = ReadSourceRows(t, begin, n, out.data(), &scratch);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  ScratchDir dir_;
  InputFile file_;
};

TEST_F(SourceTensorTest, WidensF16AndBf16Exactly) {
  // f16: 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal)
  std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x7bff, 0x0001};
  SourceTensor t = Tensor(Raw(f16), SourceEncoding::kF16, {2, 2});
  EXPECT_EQ(Rows(t, 0, 2), (std::vector<float>{1.0f, -2.0f, 65504.0f, 0x1p-24f}));
  EXPECT_EQ(Rows(t, 1, 1), (std::vector<float>{65504.0f, 0x1p-24f}));
  std::vector<uint16_t> bf16 = {0x3f80, 0xc0a0, 0x0001, 0x7f7f};
  SourceTensor b = Tensor(Raw(bf16), SourceEncoding::kBF16, {4});
  EXPECT_EQ(Rows(b, 0, 4), (std::vector<float>{1.0f, -5.0f, std::bit_cast<float>(0x00010000u),
                                               std::bit_cast<float>(0x7f7f0000u)}));
}

TEST_F(SourceTensorTest, DequantisesQ8_0Blocks) {
  // One row of 64 values = two blocks: d = 0.5 then d = -0.25 (f16), q = i - 16.
  std::string bytes;
  for (uint16_t d : {uint16_t{0x3800}, uint16_t{0xb400}}) {
    bytes += std::string(reinterpret_cast<const char*>(&d), 2);
    for (int i = 0; i < 32; ++i) bytes.push_back(static_cast<char>(static_cast<int8_t>(i - 16)));
  }
  bytes += bytes;  // a second, identical row
  SourceTensor t = Tensor(bytes, SourceEncoding::kQ8_0, {2, 64});
  ASSERT_EQ(*SourceTensorBytes(t), 4u * 34u);
  std::vector<float> row = Rows(t, 1, 1);
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(row[i], 0.5f * static_cast<float>(i - 16));
    EXPECT_EQ(row[32 + i], -0.25f * static_cast<float>(i - 16));
  }
  t.shape = {2, 48};
  EXPECT_FALSE(SourceTensorBytes(t).ok());  // rows not a multiple of 32
}

TEST_F(SourceTensorTest, DequantisesLlama2cGroupsAcrossRows) {
  // 3 rows of 4 values, groups of 6 (straddling rows): q = 1..12, scales 0.5, 3.
  std::vector<int8_t> q(12);
  std::iota(q.begin(), q.end(), int8_t{1});
  std::vector<float> scales = {0.5f, 3.0f};
  SourceTensor t = Tensor(Raw(q) + Raw(scales), SourceEncoding::kGroupQ8, {3, 4});
  t.group_size = 6;
  t.scale_offset = 12;
  ASSERT_TRUE(CheckSourceTensorBounds(t).ok());
  EXPECT_EQ(Rows(t, 1, 1), (std::vector<float>{2.5f, 3.0f, 21.0f, 24.0f}));
  EXPECT_EQ(Rows(t, 0, 3)[11], 36.0f);
}

TEST_F(SourceTensorTest, BoundsAreCheckedAgainstTheFile) {
  SourceTensor t = Tensor(std::string(30, '\0'), SourceEncoding::kF32, {2, 4});
  Status s = CheckSourceTensorBounds(t);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("tensor 't' needs bytes [0, 32) but the file has 30 bytes"),
            std::string::npos)
      << s.message();
  t.offset = ~uint64_t{0} - 4;  // offset + size overflows
  EXPECT_FALSE(CheckSourceTensorBounds(t).ok());
}

TEST(RopeLayoutTest, InterleavedRowsBecomeRotateHalf) {
  // Two heads of head_dim 4, one column: rows hold their own index.
  std::vector<float> in(8);
  std::iota(in.begin(), in.end(), 0.0f);
  std::vector<float> out(8);
  InterleavedToHalfRows(in.data(), 8, 1, 4, out.data());
  // Head rows (0 1 2 3) pair as (0,1), (2,3); rotate-half wants (0,2), (1,3)
  // at positions (0,2), (1,3): rows 0 2 1 3.
  EXPECT_EQ(out, (std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7}));
}

// A whole HF folder written here by hand, converted, and read back.
TEST(ConvertTest, HfCheckpointRoundTripsThroughTheModelFile) {
  ScratchDir dir;
  partitioner::ModelConfig c;
  c.vocab_size = 10;
  c.hidden_size = 8;
  c.intermediate_size = 12;
  c.num_layers = 1;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = 4;
  c.max_position_embeddings = 16;
  c.tie_word_embeddings = true;
  std::filesystem::create_directories(dir.File("hf"));
  {
    nlohmann::json config = partitioner::ModelConfigToHfJson(c);
    std::ofstream(dir.File("hf/config.json")) << config.dump();
  }
  // Every element of tensor k is k + i / 1000, stored as f32.
  const std::vector<partitioner::TensorSpec> specs = partitioner::ModelTensors(c);
  const char* names[] = {"model.embed_tokens.weight",
                         "model.layers.0.input_layernorm.weight",
                         "model.layers.0.self_attn.q_proj.weight",
                         "model.layers.0.self_attn.k_proj.weight",
                         "model.layers.0.self_attn.v_proj.weight",
                         "model.layers.0.self_attn.o_proj.weight",
                         "model.layers.0.post_attention_layernorm.weight",
                         "model.layers.0.mlp.gate_proj.weight",
                         "model.layers.0.mlp.up_proj.weight",
                         "model.layers.0.mlp.down_proj.weight",
                         "model.norm.weight"};
  ASSERT_EQ(specs.size(), std::size(names));
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  std::vector<std::vector<float>> values;
  for (size_t k = 0; k < specs.size(); ++k) {
    const int64_t n = std::accumulate(specs[k].shape.begin(), specs[k].shape.end(), int64_t{1},
                                      std::multiplies<>());
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(k) + i / 1000.0f;
    header[names[k]] = {{"dtype", "F32"},
                        {"shape", specs[k].shape},
                        {"data_offsets", {data.size(), data.size() + v.size() * 4}}};
    data += Raw(v);
    values.push_back(std::move(v));
  }
  WriteBytes(dir.File("hf/model.safetensors"), Safetensors(header.dump(), data));

  ConvertOptions options;
  options.input = dir.File("hf");
  options.output = dir.File("model.h5");
  options.progress = false;
  options.block_bytes = 64;  // many blocks per tensor
  Result<ConvertSummary> summary = ConvertCheckpoint(options);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->dtype, DType::kF32);
  EXPECT_EQ(summary->source_dtypes, "f32");
  EXPECT_EQ(summary->num_tensors, static_cast<int64_t>(specs.size()));
  EXPECT_FALSE(summary->rope_permuted);
  EXPECT_FALSE(std::filesystem::exists(options.output + ".partial"));

  Result<ModelFile> model = ModelFile::Open(options.output);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(model->config().num_kv_heads, 1);
  EXPECT_TRUE(model->config().tie_word_embeddings);
  for (size_t k = 0; k < specs.size(); ++k) {
    std::vector<float> read(values[k].size());
    ASSERT_TRUE(model->ReadAll(specs[k].path, read.data()).ok());
    EXPECT_EQ(read, values[k]) << specs[k].path;
  }

  // bf16 output: every value rounded to nearest even.
  options.dtype = DType::kBF16;
  ASSERT_TRUE(ConvertCheckpoint(options).ok());
  Result<ModelFile> narrow = ModelFile::Open(options.output);
  ASSERT_TRUE(narrow.ok());
  EXPECT_EQ(narrow->weight_dtype(), DType::kBF16);
  std::vector<uint16_t> bits(values[2].size());
  ASSERT_TRUE(narrow->ReadAll(specs[2].path, bits.data()).ok());
  for (size_t i = 0; i < bits.size(); ++i) EXPECT_EQ(bits[i], F32ToBf16(values[2][i]));
}

TEST(ConvertTest, FailedConversionLeavesNoFile) {
  ScratchDir dir;
  std::filesystem::create_directories(dir.File("hf"));
  std::ofstream(dir.File("hf/config.json"))
      << R"({"hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 1,
             "num_attention_heads": 2, "vocab_size": 10})";
  WriteBytes(dir.File("hf/model.safetensors"), Safetensors("{}", ""));
  WriteBytes(dir.File("model.h5"), "an existing file");
  ConvertOptions options;
  options.input = dir.File("hf");
  options.output = dir.File("model.h5");
  options.progress = false;
  Result<ConvertSummary> summary = ConvertCheckpoint(options);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), StatusCode::kNotFound);
  EXPECT_NE(summary.status().message().find("tensor 'model.embed_tokens.weight' is missing"),
            std::string::npos)
      << summary.status().message();
  EXPECT_FALSE(std::filesystem::exists(options.output + ".partial"));
  std::ifstream existing(options.output);
  std::string text((std::istreambuf_iterator<char>(existing)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "an existing file");  // untouched
}

TEST(ConvertTest, ProgressText) {
  EXPECT_EQ(ConvertProgress::Format(12, 39, 1'500'000'000, 3'000'000'000, 10.0, true),
            "[###############               ] 12/39 tensors, 1.50 GB/3.00 GB (50%), 150.0 MB/s, "
            "elapsed 10s, ETA 10s");
  EXPECT_EQ(ConvertProgress::Format(39, 39, 3'000'000, 3'000'000, 0.0, false),
            "39/39 tensors, 3.0 MB/3.0 MB (100%), 0 kB/s, elapsed 0s, ETA 0s");
}

TEST(ConvertTest, FormatNames) {
  for (CheckpointFormat f :
       {CheckpointFormat::kHuggingFace, CheckpointFormat::kGguf, CheckpointFormat::kLlama2c}) {
    EXPECT_EQ(*ParseCheckpointFormat(CheckpointFormatName(f)), f);
  }
  EXPECT_FALSE(ParseCheckpointFormat("onnx").ok());
}

}  // namespace
}  // namespace lockstep::runtime
