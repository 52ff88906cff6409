#include "lockstep/model/model_file.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>

#include "hdf5_dtype.h"
#include "lockstep/base/quant_block.h"
#include "lockstep/model/synth.h"
#include "runtime/model_file_test_util.h"

namespace lockstep::runtime {
namespace {

using partitioner::ModelConfig;
using partitioner::ModelTensors;
using partitioner::TensorRole;
using partitioner::TensorSpec;
using testing::FileEditor;
using testing::MicroConfig;
using testing::ScratchDir;

int64_t Elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Distinct values over a wide exponent range, most of them not representable
// in f16/bf16, so the rounding on write is exercised.
std::vector<float> TestValues(size_t tensor_index, int64_t count) {
  std::vector<float> v(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    v[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i) + tensor_index) *
                              std::ldexp(1.0, static_cast<int>(i % 13) - 6));
  }
  return v;
}

// Writes a model of `config` with TestValues in `dtype`.
void WriteTestModel(const std::string& path, const ModelConfig& config, DType dtype,
                    int64_t target_chunk_bytes = 1 << 20) {
  ModelWriterOptions options;
  options.dtype = dtype;
  options.target_chunk_bytes = target_chunk_bytes;
  Result<ModelWriter> writer = ModelWriter::Create(path, config, options);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  std::vector<TensorSpec> specs = ModelTensors(config);
  for (size_t t = 0; t < specs.size(); ++t) {
    std::vector<float> values = TestValues(t, Elements(specs[t].shape));
    ASSERT_TRUE(writer->WriteTensor(specs[t], values.data()).ok());
  }
  Status closed = writer->Close();
  ASSERT_TRUE(closed.ok()) << closed.ToString();
}

// The stored bits a value must have after writing in `dtype`.
uint32_t ExpectedBits(float value, DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return std::bit_cast<uint32_t>(value);
    case DType::kF16:
      return F32ToF16(value);
    case DType::kBF16:
      return F32ToBf16(value);
    case DType::kQ8_0:
    case DType::kQ4_0:
      break;  // blocks: QuantizedModelFileTest
  }
  return 0;
}

uint32_t StoredBits(const std::vector<uint8_t>& buffer, int64_t i, DType dtype) {
  if (dtype == DType::kF32) {
    uint32_t bits;
    std::memcpy(&bits, buffer.data() + 4 * i, 4);
    return bits;
  }
  uint16_t bits;
  std::memcpy(&bits, buffer.data() + 2 * i, 2);
  return bits;
}

class ModelFileDTypeTest : public ::testing::TestWithParam<DType> {};

TEST_P(ModelFileDTypeTest, RoundTripStoresTheRoundedValuesExactly) {
  const DType dtype = GetParam();
  ScratchDir dir;
  const std::string path = dir.File("model.h5");
  const ModelConfig config = MicroConfig();
  WriteTestModel(path, config, dtype);

  Result<ModelFile> file = ModelFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->config(), config);
  EXPECT_EQ(file->weight_dtype(), dtype);
  std::vector<TensorSpec> specs = ModelTensors(config);
  ASSERT_EQ(file->tensors().size(), specs.size());
  for (size_t t = 0; t < specs.size(); ++t) {
    const TensorInfo& info = file->tensors()[t];
    EXPECT_EQ(info.path, specs[t].path);
    EXPECT_EQ(info.shape, specs[t].shape);
    EXPECT_EQ(info.role, specs[t].role);
    const DType stored = specs[t].role == TensorRole::kNorm ? DType::kF32 : dtype;
    EXPECT_EQ(info.dtype, stored) << info.path;
    EXPECT_EQ(file->Find(info.path), &info);

    std::vector<uint8_t> buffer(static_cast<size_t>(info.bytes()));
    ASSERT_TRUE(file->ReadAll(info.path, buffer.data()).ok());
    std::vector<float> written = TestValues(t, info.elements());
    for (int64_t i = 0; i < info.elements(); ++i) {
      ASSERT_EQ(StoredBits(buffer, i, stored), ExpectedBits(written[i], stored))
          << info.path << " element " << i;
    }
  }
  EXPECT_EQ(file->Find("/layers/9/attn/wq"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(AllDTypes, ModelFileDTypeTest,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(DTypeName(info.param)); });

TEST(ModelFileTest, TiedModelHasNoLmHead) {
  ScratchDir dir;
  ModelConfig config = MicroConfig();
  config.tie_word_embeddings = true;
  WriteTestModel(dir.File("tied.h5"), config, DType::kBF16);
  Result<ModelFile> file = ModelFile::Open(dir.File("tied.h5"));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_TRUE(file->config().tie_word_embeddings);
  EXPECT_EQ(file->Find(partitioner::kLmHeadPath), nullptr);
  EXPECT_EQ(file->tensors().back().path, partitioner::kFinalNormPath);
}

// Format version 2: every family's features survive the file, the version
// is 2 exactly when they are used, biases are f32 whatever the weight dtype,
// and a plain Llama file is still version 1 with the version-1 attributes.
TEST(ModelFileTest, FamilyFeaturesRoundTripAsVersion2) {
  ScratchDir dir;
  for (const char* name : {"tiny", "tiny-llama3", "tiny-qwen2", "tiny-mistral", "tiny-phi3"}) {
    const ModelConfig config = *partitioner::ModelPreset(name);
    const std::string path = dir.File(std::string(name) + ".h5");
    WriteTestModel(path, config, DType::kBF16);
    Result<ModelFile> file = ModelFile::Open(path);
    ASSERT_TRUE(file.ok()) << name << ": " << file.status().message();
    EXPECT_EQ(file->config(), config) << name;
    EXPECT_EQ(file->format_version(), config.NeedsFormatV2() ? 2 : 1) << name;
    for (const TensorInfo& t : file->tensors()) {
      if (t.role == TensorRole::kColumnBias) EXPECT_EQ(t.dtype, DType::kF32) << t.path;
    }
  }
  EXPECT_NE(ModelFile::Open(dir.File("tiny-qwen2.h5"))->Find("/layers/2/attn/bk"), nullptr);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  hid_t file = H5Fopen(dir.File("tiny.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  for (const char* attribute : {"qkv_bias", "sliding_window", "rope_scaling_type"}) {
    EXPECT_LE(H5Aexists(file, attribute), 0) << attribute;
  }
  H5Fclose(file);
}

TEST(ModelFileTest, BiasesMustBeF32AndOfTheirMatrixRows) {
  ScratchDir dir;
  ModelConfig config = MicroConfig();
  config.architecture = "qwen2";
  config.qkv_bias = true;
  const std::string path = dir.File("qwen.h5");
  WriteTestModel(path, config, DType::kBF16);
  {
    FileEditor edit(path);
    edit.ReplaceDataset("/layers/1/attn/bk", H5T_IEEE_F32LE, {17});
  }
  Result<ModelFile> file = ModelFile::Open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find(
                "'/layers/1/attn/bk' has shape [17], but the config attributes imply [16] = "
                "[num_key_value_heads * head_dim]"),
            std::string::npos)
      << file.status().message();
  WriteTestModel(path, config, DType::kBF16);
  {
    FileEditor edit(path);
    edit.ReplaceDataset("/layers/0/attn/bq", H5T_IEEE_F64LE, {32});
  }
  file = ModelFile::Open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("'/layers/0/attn/bq' has an unsupported datatype"),
            std::string::npos)
      << file.status().message();
  WriteTestModel(path, config, DType::kBF16);
  {
    FileEditor edit(path);
    edit.DeleteLink("/layers/0/attn/bv");
  }
  file = ModelFile::Open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("'/layers/0/attn/bv' is missing"), std::string::npos)
      << file.status().message();
}

TEST(ModelFileTest, SlicesMatchTheWholeTensor) {
  ScratchDir dir;
  const std::string path = dir.File("model.h5");
  // A small chunk target, so slices cross many chunk boundaries.
  WriteTestModel(path, MicroConfig(), DType::kBF16, /*target_chunk_bytes=*/256);
  Result<ModelFile> file = ModelFile::Open(path);
  ASSERT_TRUE(file.ok());

  const std::string matrix = "/layers/1/ffn/w_gate";  // [48, 32]
  const TensorInfo* info = file->Find(matrix);
  ASSERT_NE(info, nullptr);
  const int64_t cols = info->shape[1];
  std::vector<uint16_t> whole(static_cast<size_t>(info->elements()));
  ASSERT_TRUE(file->ReadAll(matrix, whole.data()).ok());

  struct Case {
    const char* what;
    TensorSlice slice;
  };
  for (const Case& c :
       {Case{"rows", {5, 17, 0, 32}}, Case{"columns", {0, 48, 3, 29}}, Case{"both", {7, 41, 9, 10}},
        Case{"one element", {47, 48, 31, 32}}, Case{"tp=4 shard 2 rows", {24, 36, 0, 32}}}) {
    const TensorSlice& s = c.slice;
    std::vector<uint16_t> part(static_cast<size_t>(s.elements(2)), 0xdead);
    ASSERT_TRUE(file->Read(matrix, s, part.data()).ok()) << c.what;
    for (int64_t r = s.row_begin; r < s.row_end; ++r) {
      for (int64_t k = s.col_begin; k < s.col_end; ++k) {
        ASSERT_EQ(part[(r - s.row_begin) * (s.col_end - s.col_begin) + (k - s.col_begin)],
                  whole[r * cols + k])
            << c.what << " at " << r << "," << k;
      }
    }
  }

  // 1-D: a range of a norm (f32).
  std::vector<float> norm(32), part(13);
  ASSERT_TRUE(file->ReadAll("/layers/0/ffn_norm", norm.data()).ok());
  ASSERT_TRUE(file->Read("/layers/0/ffn_norm", TensorSlice{10, 23, 0, 0}, part.data()).ok());
  for (int i = 0; i < 13; ++i) EXPECT_EQ(part[i], norm[10 + i]);

  // An empty slice is a no-op that still succeeds (collective reads need it).
  EXPECT_TRUE(file->Read(matrix, TensorSlice{3, 3, 0, 32}, nullptr).ok());
}

TEST(ModelFileTest, ReadErrorsNameTheFileAndTensor) {
  ScratchDir dir;
  const std::string path = dir.File("model.h5");
  WriteTestModel(path, MicroConfig(), DType::kF32);
  Result<ModelFile> file = ModelFile::Open(path);
  ASSERT_TRUE(file.ok());
  std::vector<float> buffer(4096);

  Status outside = file->Read("/layers/0/attn/wk", TensorSlice{0, 17, 0, 32}, buffer.data());
  EXPECT_EQ(outside.code(), StatusCode::kOutOfRange);
  EXPECT_NE(outside.message().find(path), std::string::npos) << outside.message();
  EXPECT_NE(outside.message().find("/layers/0/attn/wk"), std::string::npos);
  EXPECT_NE(outside.message().find("[16, 32]"), std::string::npos);

  Status backwards = file->Read("/layers/0/attn/wk", TensorSlice{0, 4, 9, 3}, buffer.data());
  EXPECT_EQ(backwards.code(), StatusCode::kOutOfRange);

  Status unknown = file->Read("/layers/0/attn/wz", TensorSlice{0, 1, 0, 1}, buffer.data());
  EXPECT_EQ(unknown.code(), StatusCode::kNotFound);
  EXPECT_NE(unknown.message().find("/layers/0/attn/wz"), std::string::npos);
}

TEST(ModelFileTest, MoveKeepsTheFileUsable) {
  ScratchDir dir;
  WriteTestModel(dir.File("m.h5"), MicroConfig(), DType::kF16);
  Result<ModelFile> opened = ModelFile::Open(dir.File("m.h5"));
  ASSERT_TRUE(opened.ok());
  ModelFile file = std::move(opened).value();
  ModelFile moved = std::move(file);
  std::vector<float> norm(32);
  EXPECT_TRUE(moved.ReadAll("/norm", norm.data()).ok());
  EXPECT_EQ(moved.bytes_requested(), 32u * 4u);
}

// ---------------------------------------------------------------------------
// Writer contract
// ---------------------------------------------------------------------------

TEST(ModelWriterTest, RejectsTensorsOutsideTheInventoryAndIncompleteModels) {
  ScratchDir dir;
  const std::string path = dir.File("partial.h5");
  const ModelConfig config = MicroConfig();
  Result<ModelWriter> writer = ModelWriter::Create(path, config, {});
  ASSERT_TRUE(writer.ok());
  std::vector<float> values(67 * 32, 0.5f);

  TensorSpec stranger{"/layers/0/attn/wx", TensorRole::kColumnParallel, 0, {32, 32}};
  Status bad_path = writer->WriteTensor(stranger, values.data());
  EXPECT_EQ(bad_path.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_path.message().find("/layers/0/attn/wx"), std::string::npos);

  TensorSpec wrong_shape = ModelTensors(config)[0];
  wrong_shape.shape = {66, 32};
  EXPECT_EQ(writer->WriteTensor(wrong_shape, values.data()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(writer->WriteRows(ModelTensors(config)[0], 60, 8, values.data()).code(),
            StatusCode::kOutOfRange);

  // Only the embedding, and not all of it.
  ASSERT_TRUE(writer->WriteRows(ModelTensors(config)[0], 0, 60, values.data()).ok());
  Status closed = writer->Close();
  EXPECT_EQ(closed.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(closed.message().find("/tok_embeddings"), std::string::npos) << closed.message();
  EXPECT_NE(closed.message().find("row 60"), std::string::npos) << closed.message();

  // What is left on disk is not mistaken for a model.
  Result<ModelFile> file = ModelFile::Open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("'format'"), std::string::npos);
}

TEST(ModelWriterTest, RejectsAnInvalidConfig) {
  ScratchDir dir;
  ModelConfig config = MicroConfig();
  config.num_kv_heads = 3;
  Result<ModelWriter> writer = ModelWriter::Create(dir.File("x.h5"), config, {});
  ASSERT_FALSE(writer.ok());
  EXPECT_NE(writer.status().message().find("num_key_value_heads"), std::string::npos);
  EXPECT_NE(writer.status().message().find(dir.File("x.h5")), std::string::npos);
}

// The layout is fixed at Create(): the same tensors written in another order
// and in other row blocks give the same bytes.
TEST(ModelWriterTest, BytesDoNotDependOnWriteOrderOrBlocks) {
  ScratchDir dir;
  const ModelConfig config = MicroConfig();
  const uint64_t seed = 11;
  ASSERT_TRUE(SynthesizeModel(config, DType::kBF16, seed, dir.File("synth.h5")).ok());

  Result<ModelWriter> writer = ModelWriter::Create(dir.File("reverse.h5"), config,
                                                   ModelWriterOptions{DType::kBF16, 1 << 20});
  ASSERT_TRUE(writer.ok());
  std::vector<TensorSpec> specs = ModelTensors(config);
  for (auto it = specs.rbegin(); it != specs.rend(); ++it) {
    const int64_t rows = it->shape[0];
    const int64_t cols = it->shape.size() == 2 ? it->shape[1] : 1;
    std::vector<float> values(static_cast<size_t>(rows * cols));
    SynthTensorValues(config, *it, seed, 0, rows * cols, values.data());
    // Blocks of 7 rows, last block first.
    for (int64_t r = ((rows - 1) / 7) * 7; r >= 0; r -= 7) {
      const int64_t n = std::min<int64_t>(7, rows - r);
      ASSERT_TRUE(writer->WriteRows(*it, r, n, values.data() + r * cols).ok());
    }
  }
  ASSERT_TRUE(writer->Close().ok());
  EXPECT_TRUE(testing::ReadBytes(dir.File("synth.h5")) ==
              testing::ReadBytes(dir.File("reverse.h5")));
}

// ---------------------------------------------------------------------------
// Bad input: each a one-line Status naming the file and what is wrong.
// ---------------------------------------------------------------------------

struct BadFileCase {
  std::string name;
  DType dtype;
  std::function<void(const std::string& path)> damage;
  StatusCode code;
  std::vector<std::string> mentions;  // substrings the message must contain
};

void PrintTo(const BadFileCase& c, std::ostream* os) {
  *os << c.name;
}

class BadModelFileTest : public ::testing::TestWithParam<BadFileCase> {};

TEST_P(BadModelFileTest, OpenFailsWithOneLineNamingFileAndCulprit) {
  const BadFileCase& c = GetParam();
  ScratchDir dir;
  const std::string path = dir.File("model.h5");
  WriteTestModel(path, MicroConfig(), c.dtype);
  c.damage(path);
  Result<ModelFile> file = ModelFile::Open(path);
  ASSERT_FALSE(file.ok()) << c.name;
  const std::string& message = file.status().message();
  EXPECT_EQ(file.status().code(), c.code) << message;
  EXPECT_EQ(message.rfind(path, 0), 0u) << "must start with the file name: " << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  for (const std::string& s : c.mentions) {
    EXPECT_NE(message.find(s), std::string::npos) << "'" << s << "' not in: " << message;
  }
}

std::vector<BadFileCase> BadFileCases() {
  auto edit = [](auto f) {
    return [f](const std::string& path) {
      FileEditor editor(path);
      f(editor);
    };
  };
  auto copy_prefix = [](size_t bytes) {
    return [bytes](const std::string& path) {
      std::vector<char> all = testing::ReadBytes(path);
      testing::WriteBytes(path, all.data(), std::min(bytes, all.size()));
    };
  };
  const StatusCode kInvalid = StatusCode::kInvalidArgument;
  return {
      {"missing_file",
       DType::kF32,
       [](const std::string& p) { std::remove(p.c_str()); },
       StatusCode::kNotFound,
       {"not found"}},
      {"not_hdf5",
       DType::kF32,
       [](const std::string& p) { testing::WriteBytes(p, "{\"hidden_size\": 4}\n", 19); },
       kInvalid,
       {"not an HDF5 file"}},
      {"empty_file",
       DType::kF32,
       [](const std::string& p) { testing::WriteBytes(p, "", 0); },
       kInvalid,
       {"not an HDF5 file"}},
      {"truncated_half",
       DType::kF32,
       [copy_prefix](const std::string& p) { copy_prefix(testing::ReadBytes(p).size() / 2)(p); },
       StatusCode::kDataLoss,
       {"truncated"}},
      {"truncated_after_superblock",
       DType::kF32,
       copy_prefix(600),
       StatusCode::kDataLoss,
       {"truncated"}},
      {"wrong_format_name",
       DType::kF32,
       edit([](FileEditor& e) { e.SetString("format", "safetensors"); }),
       kInvalid,
       {"'format'", "safetensors"}},
      {"format_missing",
       DType::kF32,
       edit([](FileEditor& e) { e.DeleteAttribute("format"); }),
       kInvalid,
       {"'format'"}},
      {"format_version_3",
       DType::kF32,
       edit([](FileEditor& e) { e.SetInt("format_version", 3); }),
       kInvalid,
       {"'format_version'", "3", "versions 1 to 2"}},
      {"version_1_with_rope_scaling",
       DType::kF32,
       edit([](FileEditor& e) {
         e.SetString("rope_scaling_type", "linear");
         e.SetDouble("rope_scaling_factor", 2.0);
       }),
       kInvalid,
       {"'format_version' is 1", "need format version 2"}},
      {"unknown_rope_scaling",
       DType::kF32,
       edit([](FileEditor& e) {
         e.SetInt("format_version", 2);
         e.SetString("rope_scaling_type", "ntk");
       }),
       kInvalid,
       {"'rope_scaling_type' is 'ntk'"}},
      {"bias_in_a_llama",
       DType::kF32,
       edit([](FileEditor& e) {
         e.SetInt("format_version", 2);
         e.SetInt("qkv_bias", 1);
       }),
       kInvalid,
       {"qkv_bias", "architecture 'llama'"}},
      {"format_version_string",
       DType::kF32,
       edit([](FileEditor& e) { e.SetString("format_version", "1"); }),
       kInvalid,
       {"'format_version'", "integer"}},
      {"missing_attribute",
       DType::kF32,
       edit([](FileEditor& e) { e.DeleteAttribute("hidden_size"); }),
       StatusCode::kNotFound,
       {"'hidden_size'", "missing"}},
      {"missing_rope_theta",
       DType::kF32,
       edit([](FileEditor& e) { e.DeleteAttribute("rope_theta"); }),
       StatusCode::kNotFound,
       {"'rope_theta'"}},
      {"attribute_wrong_type",
       DType::kF32,
       edit([](FileEditor& e) { e.SetString("num_hidden_layers", "2"); }),
       kInvalid,
       {"'num_hidden_layers'", "integer", "string"}},
      {"float_attribute_wrong_type",
       DType::kF32,
       edit([](FileEditor& e) { e.SetString("rms_norm_eps", "1e-5"); }),
       kInvalid,
       {"'rms_norm_eps'", "number"}},
      {"flag_not_0_or_1",
       DType::kF32,
       edit([](FileEditor& e) { e.SetInt("tie_word_embeddings", 2); }),
       kInvalid,
       {"'tie_word_embeddings'", "0 or 1"}},
      {"config_fails_validation",
       DType::kF32,
       edit([](FileEditor& e) { e.SetInt("num_attention_heads", 3); }),
       kInvalid,
       {"invalid config", "num_attention_heads"}},
      {"negative_size",
       DType::kF32,
       edit([](FileEditor& e) { e.SetInt("vocab_size", -67); }),
       kInvalid,
       {"vocab_size"}},
      {"unsupported_architecture",
       DType::kF32,
       edit([](FileEditor& e) { e.SetString("architecture", "gpt2"); }),
       kInvalid,
       {"architecture", "gpt2"}},
      {"rope_layout_interleaved",
       DType::kF32,
       edit([](FileEditor& e) { e.SetString("rope_layout", "interleaved"); }),
       kInvalid,
       {"'rope_layout'", "interleaved"}},
      {"weight_dtype_unknown",
       DType::kF32,
       edit([](FileEditor& e) { e.SetString("weight_dtype", "int4"); }),
       kInvalid,
       {"'weight_dtype'", "int4"}},
      {"weight_dtype_contradicts_tensors",
       DType::kBF16,
       edit([](FileEditor& e) { e.SetString("weight_dtype", "f16"); }),
       kInvalid,
       {"'weight_dtype'", "f16", "bf16"}},
      {"missing_tensor",
       DType::kF32,
       edit([](FileEditor& e) { e.DeleteLink("/layers/1/ffn/w_up"); }),
       StatusCode::kNotFound,
       {"'/layers/1/ffn/w_up'", "missing", "[48, 32]"}},
      {"missing_layer_group",
       DType::kF32,
       edit([](FileEditor& e) { e.DeleteLink("/layers/1"); }),
       StatusCode::kNotFound,
       {"'/layers/1/attn_norm'", "missing"}},
      {"missing_lm_head",
       DType::kF32,
       edit([](FileEditor& e) { e.DeleteLink("/lm_head"); }),
       StatusCode::kNotFound,
       {"'/lm_head'"}},
      {"tensor_is_a_group",
       DType::kF32,
       edit([](FileEditor& e) {
         e.DeleteLink("/norm");
         e.CreateGroup("/norm");
       }),
       kInvalid,
       {"'/norm'", "not a readable dataset"}},
      {"wrong_shape",
       DType::kF32,
       edit([](FileEditor& e) {
         e.ReplaceDataset("/layers/0/attn/wk", H5T_IEEE_F32LE, {17, 32});
       }),
       kInvalid,
       {"'/layers/0/attn/wk'", "[17, 32]", "[16, 32]", "num_key_value_heads * head_dim"}},
      {"wrong_rank",
       DType::kF32,
       edit([](FileEditor& e) {
         e.ReplaceDataset("/layers/0/ffn_norm", H5T_IEEE_F32LE, {32, 1});
       }),
       kInvalid,
       {"'/layers/0/ffn_norm'", "[32, 1]", "[hidden_size]"}},
      {"config_contradicts_tensors",
       DType::kF32,
       edit([](FileEditor& e) { e.SetInt("intermediate_size", 64); }),
       kInvalid,
       {"'/layers/0/ffn/w_gate'", "[48, 32]", "[64, 32]", "intermediate_size", "contradicts"}},
      {"tied_but_lm_head_present",
       DType::kF32,
       edit([](FileEditor& e) { e.SetInt("tie_word_embeddings", 1); }),
       kInvalid,
       {"'tie_word_embeddings'", "/lm_head", "contradicts"}},
      {"fewer_layers_than_file",
       DType::kF32,
       edit([](FileEditor& e) { e.SetInt("num_hidden_layers", 1); }),
       kInvalid,
       {"'num_hidden_layers'", "/layers/1", "contradicts"}},
      {"unsupported_dtype_int",
       DType::kF32,
       edit([](FileEditor& e) {
         e.ReplaceDataset("/layers/0/attn/wq", H5T_STD_I32LE, {32, 32});
       }),
       kInvalid,
       {"'/layers/0/attn/wq'", "unsupported datatype", "integer"}},
      {"unsupported_dtype_f64",
       DType::kF32,
       edit([](FileEditor& e) {
         e.ReplaceDataset("/layers/0/attn/wq", H5T_IEEE_F64LE, {32, 32});
       }),
       kInvalid,
       {"'/layers/0/attn/wq'", "unsupported datatype", "8 bytes"}},
      {"unsupported_dtype_big_endian",
       DType::kF32,
       edit([](FileEditor& e) {
         e.ReplaceDataset("/lm_head", H5T_IEEE_F32BE, {67, 32});
       }),
       kInvalid,
       {"'/lm_head'", "big-endian"}},
      {"mixed_dtypes",
       DType::kBF16,
       edit([](FileEditor& e) {
         e.ReplaceDataset("/layers/1/attn/wv", MakeHdf5Type(DType::kF16).get(), {16, 32});
       }),
       kInvalid,
       {"'/layers/1/attn/wv'", "f16", "bf16", "one dtype"}},
      {"norm_not_f32",
       DType::kBF16,
       edit([](FileEditor& e) {
         e.ReplaceDataset("/norm", MakeHdf5Type(DType::kBF16).get(), {32});
       }),
       kInvalid,
       {"'/norm'", "must be f32"}},
  };
}

INSTANTIATE_TEST_SUITE_P(AllCases, BadModelFileTest, ::testing::ValuesIn(BadFileCases()),
                         [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------
// Quantized tensors (q8_0, q4_0): [rows, cols/32] datasets of blocks.
// ---------------------------------------------------------------------------

// MicroConfig with rows of whole blocks: hidden 64, q_dim 64, ffn 96.
ModelConfig QuantConfig() {
  ModelConfig c = MicroConfig();
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.head_dim = 16;
  return c;
}

class QuantizedModelFileTest : public ::testing::TestWithParam<DType> {};

TEST_P(QuantizedModelFileTest, StoresTheReferenceBlocksAndReadsBlockSlices) {
  const DType dtype = GetParam();
  ScratchDir dir;
  const std::string path = dir.File("model.h5");
  const ModelConfig config = QuantConfig();
  WriteTestModel(path, config, dtype, 1024);
  Result<ModelFile> file = ModelFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(file->weight_dtype(), dtype);
  const std::vector<TensorSpec> specs = ModelTensors(config);
  for (size_t t = 0; t < specs.size(); ++t) {
    const TensorSpec& spec = specs[t];
    const TensorInfo* info = file->Find(spec.path);
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->shape, spec.shape) << "shapes count values, not blocks";
    if (spec.role == TensorRole::kNorm) {
      EXPECT_EQ(info->dtype, DType::kF32);
      continue;
    }
    EXPECT_EQ(info->dtype, dtype);
    EXPECT_EQ(info->bytes(), DTypeBytes(dtype, Elements(spec.shape)));
    EXPECT_EQ(info->chunk[1] % kQuantBlockSize, 0) << spec.path;
    // The stored blocks are the reference quantizer's of the values written.
    const std::vector<float> values = TestValues(t, Elements(spec.shape));
    std::vector<uint8_t> expected(static_cast<size_t>(info->bytes()));
    QuantizeRow(dtype, values.data(), Elements(spec.shape), expected.data());
    std::vector<uint8_t> all(expected.size());
    ASSERT_TRUE(file->ReadAll(spec.path, all.data()).ok());
    EXPECT_EQ(all, expected) << spec.path;
    // A column slice on block boundaries: those blocks of every row.
    const int64_t rows = spec.shape[0], cols = spec.shape[1];
    const TensorSlice slice{1, rows, 32, cols};
    std::vector<uint8_t> part(static_cast<size_t>(DTypeBytes(dtype, slice.elements(2))));
    ASSERT_TRUE(file->Read(spec.path, slice, part.data()).ok());
    const int64_t row_bytes = DTypeBytes(dtype, cols), part_row = DTypeBytes(dtype, cols - 32);
    for (int64_t r = 1; r < rows; ++r) {
      EXPECT_EQ(std::memcmp(part.data() + (r - 1) * part_row,
                            expected.data() + r * row_bytes + DTypeBlockBytes(dtype), part_row),
                0)
          << spec.path << " row " << r;
    }
  }
  // A slice that cuts a block is refused, naming the tensor.
  std::vector<uint8_t> buffer(4096);
  const Status cut = file->Read("/layers/0/ffn/w_down", TensorSlice{0, 2, 16, 48}, buffer.data());
  EXPECT_EQ(cut.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(cut.message().find("'/layers/0/ffn/w_down'"), std::string::npos) << cut.message();
  EXPECT_NE(cut.message().find("block boundaries"), std::string::npos) << cut.message();
}

INSTANTIATE_TEST_SUITE_P(QuantTypes, QuantizedModelFileTest,
                         ::testing::Values(DType::kQ8_0, DType::kQ4_0),
                         [](const auto& info) { return std::string(DTypeName(info.param)); });

TEST(QuantizedModelFileTest, BadQuantizedFilesNameTheTensor) {
  ScratchDir dir;
  const std::string path = dir.File("model.h5");
  auto open_error = [&](auto damage) {
    WriteTestModel(path, QuantConfig(), DType::kQ8_0);
    {
      FileEditor editor(path);
      damage(editor);
    }
    Result<ModelFile> file = ModelFile::Open(path);
    EXPECT_FALSE(file.ok());
    return file.ok() ? std::string() : file.status().message();
  };
  // A block count that disagrees with the shape the config implies.
  std::string error = open_error([](FileEditor& e) {
    e.ReplaceDataset("/layers/1/attn/wq", MakeHdf5Type(DType::kQ8_0).get(), {64, 3});
  });
  EXPECT_NE(error.find("'/layers/1/attn/wq' is q8_0 with 3 blocks per row"), std::string::npos)
      << error;
  EXPECT_NE(error.find("= 2 blocks of 32"), std::string::npos) << error;
  // A q4_0 matrix in a q8_0 file: mixed dtypes.
  error = open_error([](FileEditor& e) {
    e.ReplaceDataset("/layers/1/ffn/w_up", MakeHdf5Type(DType::kQ4_0).get(), {96, 2});
  });
  EXPECT_NE(error.find("'/layers/1/ffn/w_up' is q4_0"), std::string::npos) << error;
  EXPECT_NE(error.find("one dtype"), std::string::npos) << error;
  // A quantized norm.
  error = open_error([](FileEditor& e) {
    e.ReplaceDataset("/norm", MakeHdf5Type(DType::kQ8_0).get(), {2});
  });
  EXPECT_NE(error.find("'/norm'"), std::string::npos) << error;

  // Writing: a config whose rows are not whole blocks, and a NaN value.
  ModelWriterOptions options;
  options.dtype = DType::kQ4_0;
  Result<ModelWriter> bad_config = ModelWriter::Create(dir.File("bad.h5"), MicroConfig(), options);
  ASSERT_FALSE(bad_config.ok());
  EXPECT_NE(bad_config.status().message().find("not whole 32-value blocks"), std::string::npos)
      << bad_config.status().message();
  Result<ModelWriter> writer = ModelWriter::Create(dir.File("nan.h5"), QuantConfig(), options);
  ASSERT_TRUE(writer.ok()) << writer.status().message();
  const TensorSpec spec = ModelTensors(QuantConfig())[0];
  std::vector<float> values = TestValues(0, Elements(spec.shape));
  values[5 * 64 + 40] = std::nanf("");
  const Status nan = writer->WriteTensor(spec, values.data());
  EXPECT_EQ(nan.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(nan.message().find("'/tok_embeddings' has a non-finite value (nan) at row 5, column 40"),
            std::string::npos)
      << nan.message();
  // Stored blocks with an Inf scale are refused too.
  std::vector<uint8_t> blocks(static_cast<size_t>(DTypeBytes(DType::kQ4_0, 2 * 64)));
  QuantizeRow(DType::kQ4_0, values.data(), 2 * 64, blocks.data());
  const uint16_t inf = 0x7c00;
  std::memcpy(blocks.data() + 3 * 18, &inf, 2);  // row 1, block 1
  const Status scale = writer->WriteStoredRows(spec, 0, 2, blocks.data());
  EXPECT_NE(scale.message().find("non-finite scale in block 1 of row 1"), std::string::npos)
      << scale.message();
}

TEST(ModelFileTest, OpenIsRejectedForADirectory) {
  ScratchDir dir;
  Result<ModelFile> file = ModelFile::Open(dir.File(""));
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("not a regular file"), std::string::npos);
}

// What a converter written with h5py produces: variable-length strings, a
// numpy bool enum, integer-valued floats. All accepted.
TEST(ModelFileTest, AcceptsWhatH5pyWrites) {
  ScratchDir dir;
  const std::string path = dir.File("model.h5");
  WriteTestModel(path, MicroConfig(), DType::kF16);
  {
    FileEditor e(path);
    e.SetString("architecture", "llama", /*variable_length=*/true);
    e.SetString("weight_dtype", "f16", /*variable_length=*/true);
    e.SetH5pyBool("tie_word_embeddings", false);
    e.SetInt("rope_theta", 50000);
    int32_t layers = 2;
    e.SetScalar("num_hidden_layers", H5T_STD_I32BE, H5T_NATIVE_INT32, &layers);
    e.DeleteAttribute("name");  // optional
  }
  {
    Result<ModelFile> file = ModelFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    ModelConfig expected = MicroConfig();
    expected.name = "";
    EXPECT_EQ(file->config(), expected);
  }
  {
    FileEditor e(path);
    e.SetH5pyBool("tie_word_embeddings", true);  // now contradicts /lm_head
  }
  Result<ModelFile> tied = ModelFile::Open(path);
  ASSERT_FALSE(tied.ok());
  EXPECT_NE(tied.status().message().find("tie_word_embeddings"), std::string::npos);
}

// ---------------------------------------------------------------------------
// Measured I/O: a rank reads only its shard.
// ---------------------------------------------------------------------------

TEST(ModelFileTest, ATp4ShardReadsAQuarterOfTheTensor) {
  // Realistic widths (TinyLlama's FFN over a 1024 model dimension); one layer
  // and a small vocabulary keep the file at ~45 MB.
  ModelConfig config = MicroConfig();
  config.vocab_size = 256;
  config.hidden_size = 1024;
  config.intermediate_size = 2816;
  config.num_layers = 1;
  config.num_heads = 16;
  config.num_kv_heads = 4;
  config.head_dim = 64;
  ScratchDir dir;
  const std::string path = dir.File("wide.h5");
  ASSERT_TRUE(SynthesizeModel(config, DType::kF32, 3, path).ok());

  Result<ModelFile> file = ModelFile::Open(path);
  ASSERT_TRUE(file.ok());
  // Open reads metadata only.
  const uint64_t file_size = testing::ReadBytes(path).size();
  EXPECT_GT(file->bytes_read(), 0u);
  EXPECT_LT(file->bytes_read(), 64u * 1024u) << "of a " << file_size << " byte file";

  const int tp = 4;
  auto measure = [&](const std::string& tensor, TensorSlice slice, uint64_t* read,
                     uint64_t* requested) {
    const TensorInfo* info = file->Find(tensor);
    ASSERT_NE(info, nullptr);
    std::vector<uint8_t> buffer(static_cast<size_t>(slice.elements(2)) * 4);
    const uint64_t read_before = file->bytes_read();
    const uint64_t requested_before = file->bytes_requested();
    ASSERT_TRUE(file->Read(tensor, slice, buffer.data()).ok());
    *read = file->bytes_read() - read_before;
    *requested = file->bytes_requested() - requested_before;
  };

  // Column-parallel: rank 1's rows of w_gate [2816, 1024] (11.5 MB).
  {
    const int64_t rows = 2816 / tp;
    uint64_t read = 0, requested = 0;
    measure("/layers/0/ffn/w_gate", TensorSlice{rows, 2 * rows, 0, 1024}, &read, &requested);
    const double quarter = 2816.0 * 1024 * 4 / tp;
    EXPECT_EQ(requested, static_cast<uint64_t>(quarter));
    EXPECT_GE(read, requested);
    EXPECT_LT(read, quarter * 1.01) << "read " << read << " for a shard of " << quarter;
  }
  // Row-parallel: rank 2's columns of w_down [1024, 2816].
  {
    const int64_t cols = 2816 / tp;
    uint64_t read = 0, requested = 0;
    measure("/layers/0/ffn/w_down", TensorSlice{0, 1024, 2 * cols, 3 * cols}, &read, &requested);
    const double quarter = 2816.0 * 1024 * 4 / tp;
    EXPECT_EQ(requested, static_cast<uint64_t>(quarter));
    EXPECT_GE(read, requested);
    EXPECT_LT(read, quarter * 1.01) << "read " << read << " for a shard of " << quarter;
  }
  // A shard off the chunk grid by one row touches a whole extra row of chunks:
  // the counter measures what the driver read, not what was asked for.
  {
    const int64_t rows = 2816 / tp;
    uint64_t read = 0, requested = 0;
    measure("/layers/0/ffn/w_up", TensorSlice{rows + 1, 2 * rows + 1, 0, 1024}, &read, &requested);
    const TensorInfo* info = file->Find("/layers/0/ffn/w_up");
    const uint64_t chunk_row_bytes = static_cast<uint64_t>(info->chunk[0]) * 1024 * 4;
    EXPECT_GE(read, requested + chunk_row_bytes - 1024 * 4);
  }
}

}  // namespace
}  // namespace lockstep::runtime
