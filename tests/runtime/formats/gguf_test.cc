#include "lockstep/formats/gguf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "runtime/gguf_test_writer.h"
#include "runtime/model_file_test_util.h"

namespace lockstep::runtime {
namespace {

using testing::GgufTestWriter;

// A file with one key of every type, a nested array, and two tensors.
GgufTestWriter EveryTypeWriter() {
  GgufTestWriter w;
  w.AddString("general.architecture", "llama");
  w.AddScalar<uint8_t>("u8", 0, 200);
  w.AddScalar<int8_t>("i8", 1, -5);
  w.AddScalar<uint16_t>("u16", 2, 65000);
  w.AddScalar<int16_t>("i16", 3, -30000);
  w.AddScalar<uint32_t>("u32", 4, 4000000000u);
  w.AddScalar<int32_t>("i32", 5, -2000000000);
  w.AddScalar<float>("f32", 6, 1.5f);
  w.AddScalar<uint8_t>("bool", 7, 1);
  w.AddScalar<uint64_t>("u64", 10, 18000000000000000000ull);
  w.AddScalar<int64_t>("i64", 11, -9000000000000000000ll);
  w.AddScalar<double>("f64", 12, 0.25);
  w.AddStringArray("strings", {"a", "", "héllo"});
  w.AddArray<float>("floats", 6, {0.5f, -1.0f});
  w.AddArray<int32_t>("ints", 5, {1, -2, 3});
  {
    // [[1, 2], [3]] as an array of arrays of uint8.
    std::vector<uint8_t> v;
    GgufTestWriter::Put<uint32_t>(&v, 9);
    GgufTestWriter::Put<uint64_t>(&v, 2);
    GgufTestWriter::Put<uint32_t>(&v, 0);
    GgufTestWriter::Put<uint64_t>(&v, 2);
    v.push_back(1);
    v.push_back(2);
    GgufTestWriter::Put<uint32_t>(&v, 0);
    GgufTestWriter::Put<uint64_t>(&v, 1);
    v.push_back(3);
    w.AddRaw("nested", 9, v);
  }
  std::vector<uint8_t> f32(3 * 2 * 4);
  for (size_t i = 0; i < 6; ++i) {
    float x = static_cast<float>(i);
    std::memcpy(&f32[i * 4], &x, 4);
  }
  w.AddTensor("weight", {3, 2}, kGgmlTypeF32, f32);
  w.AddTensor("q", {64}, kGgmlTypeQ8_0, std::vector<uint8_t>(2 * 34, 7));
  return w;
}

TEST(GgufTest, ReadsEveryValueTypeAndTensorInfo) {
  Result<GgufFile> file = GgufFile::Parse(EveryTypeWriter().Bytes(), "every.gguf");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->version(), 3u);
  EXPECT_EQ(file->alignment(), 32u);
  EXPECT_EQ(file->metadata().size(), 16u);
  EXPECT_EQ(file->metadata()[0].first, "general.architecture");
  EXPECT_EQ(*file->GetString("general.architecture"), "llama");
  EXPECT_EQ(*file->GetInt("u8"), 200);
  EXPECT_EQ(*file->GetInt("i8"), -5);
  EXPECT_EQ(*file->GetInt("u16"), 65000);
  EXPECT_EQ(*file->GetInt("i16"), -30000);
  EXPECT_EQ(*file->GetInt("u32"), 4000000000ll);
  EXPECT_EQ(*file->GetInt("i32"), -2000000000);
  EXPECT_EQ(*file->GetFloat("f32"), 1.5);
  EXPECT_TRUE(*file->GetBool("bool"));
  EXPECT_EQ(*file->GetInt("i64"), -9000000000000000000ll);
  EXPECT_EQ(*file->GetFloat("f64"), 0.25);
  // A uint64 above INT64_MAX is readable, but not as an int64.
  ASSERT_NE(file->Find("u64"), nullptr);
  EXPECT_EQ(std::get<uint64_t>(file->Find("u64")->storage()), 18000000000000000000ull);
  EXPECT_FALSE(file->GetInt("u64").ok());
  EXPECT_EQ(*file->GetStringArray("strings"), (std::vector<std::string>{"a", "", "héllo"}));
  EXPECT_EQ(*file->GetFloatArray("floats"), (std::vector<float>{0.5f, -1.0f}));
  EXPECT_EQ(*file->GetIntArray("ints"), (std::vector<int64_t>{1, -2, 3}));
  const GgufArray* nested = file->Find("nested")->array();
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->values.size(), 2u);
  EXPECT_EQ(nested->values[0].array()->values.size(), 2u);
  EXPECT_EQ(*nested->values[1].array()->values[0].ToInt64(), 3);
  EXPECT_EQ(file->Find("nested")->Describe(), "array of 2 array");

  ASSERT_EQ(file->tensors().size(), 2u);
  const GgufTensorInfo* weight = file->FindTensor("weight");
  ASSERT_NE(weight, nullptr);
  EXPECT_EQ(weight->dims, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(weight->bytes, 24u);
  EXPECT_EQ(weight->offset, 0u);
  EXPECT_EQ(file->data_offset() % 32, 0u);
  std::span<const uint8_t> data = file->TensorData(*weight);
  float last;
  std::memcpy(&last, data.data() + 20, 4);
  EXPECT_EQ(last, 5.0f);
  const GgufTensorInfo* q = file->FindTensor("q");
  EXPECT_EQ(q->bytes, 68u);  // 2 blocks of 34 bytes
  EXPECT_EQ(q->offset, 32u);
  EXPECT_EQ(file->TensorData(*q)[67], 7);
}

TEST(GgufTest, TypedGettersNameTheKeyAndType) {
  Result<GgufFile> file = GgufFile::Parse(EveryTypeWriter().Bytes(), "every.gguf");
  ASSERT_TRUE(file.ok());
  Result<std::string> wrong = file->GetString("u32");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().message(), "every.gguf: GGUF key 'u32' is uint32, expected a string");
  Result<std::vector<std::string>> not_strings = file->GetStringArray("floats");
  EXPECT_EQ(not_strings.status().message(),
            "every.gguf: GGUF key 'floats' is array of 2 float32, expected an array of strings");
  EXPECT_EQ(file->GetInt("absent").status().code(), StatusCode::kNotFound);
}

TEST(GgufTest, HonoursGeneralAlignment) {
  GgufTestWriter w;
  w.AddScalar<uint32_t>("general.alignment", 4, 64);
  w.AddTensor("a", {4}, kGgmlTypeF32, std::vector<uint8_t>(16, 1));
  w.AddTensor("b", {2}, kGgmlTypeF16, std::vector<uint8_t>(4, 2));
  Result<GgufFile> file = GgufFile::Parse(w.Bytes(3, 64), "aligned.gguf");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->alignment(), 64u);
  EXPECT_EQ(file->data_offset() % 64, 0u);
  EXPECT_EQ(file->FindTensor("b")->offset, 64u);
  EXPECT_EQ(file->TensorData(*file->FindTensor("b"))[0], 2);

  GgufTestWriter bad;
  bad.AddScalar<uint32_t>("general.alignment", 4, 48);
  EXPECT_EQ(GgufFile::Parse(bad.Bytes(), "x.gguf").status().message(),
            "x.gguf: GGUF key 'general.alignment' is 48, not a power of two");
}

// Every proper prefix of a valid file is an error (never a crash or an
// out-of-bounds read: run under ASan), and the full file is fine.
TEST(GgufTest, EveryTruncationIsAnError) {
  const std::vector<uint8_t> bytes = EveryTypeWriter().Bytes();
  for (size_t n = 0; n < bytes.size(); ++n) {
    // Cutting only the zero padding after the last tensor leaves a file
    // whose tensors still all fit.
    std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    Result<GgufFile> file = GgufFile::Parse(prefix, "cut.gguf");
    const size_t needed = bytes.size() - (32 - 68 % 32);
    if (n >= needed) {
      EXPECT_TRUE(file.ok()) << n;
    } else {
      ASSERT_FALSE(file.ok()) << "prefix of " << n << " bytes was accepted";
      EXPECT_EQ(file.status().message().find('\n'), std::string::npos);
      EXPECT_TRUE(file.status().message().starts_with("cut.gguf: ")) << file.status().message();
    }
  }
  ASSERT_TRUE(GgufFile::Parse(bytes, "full.gguf").ok());
}

// Seeded random damage: any result is fine as long as nothing crashes and
// errors are one line.
TEST(GgufTest, RandomMutationsNeverCrash) {
  const std::vector<uint8_t> bytes = EveryTypeWriter().Bytes();
  std::mt19937_64 rng(1234);
  int errors = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<uint8_t> damaged = bytes;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      const size_t at = rng() % damaged.size();
      damaged[at] = static_cast<uint8_t>(rng() % 3 == 0 ? 0xFF : rng());
    }
    Result<GgufFile> file = GgufFile::Parse(damaged, "fuzz.gguf");
    if (!file.ok()) {
      ++errors;
      EXPECT_EQ(file.status().message().find('\n'), std::string::npos);
      continue;
    }
    for (const GgufTensorInfo& t : file->tensors()) {
      std::span<const uint8_t> data = file->TensorData(t);
      ASSERT_LE(file->data_offset() + t.offset + data.size(), damaged.size());
    }
  }
  EXPECT_GT(errors, 100);
}

std::string ParseError(const std::vector<uint8_t>& bytes) {
  Result<GgufFile> file = GgufFile::Parse(bytes, "bad.gguf");
  return file.ok() ? "ok" : file.status().message();
}

TEST(GgufTest, LyingHeadersGiveClearErrors) {
  using W = GgufTestWriter;
  // Not GGUF at all.
  EXPECT_EQ(ParseError({'G', 'G', 'M', 'L', 1, 0, 0, 0}),
            "bad.gguf: not a GGUF file (the first 4 bytes are not \"GGUF\")");
  // Version 1 and a big-endian file.
  EXPECT_EQ(ParseError(GgufTestWriter().Bytes(1)),
            "bad.gguf: GGUF version 1 is not supported (versions 2 to 3); convert it again with "
            "a recent llama.cpp");
  EXPECT_NE(ParseError(GgufTestWriter().Bytes(0x03000000)).find("big-endian"), std::string::npos);

  // A header claiming 2^60 metadata entries or tensors fails before allocating.
  std::vector<uint8_t> header = {'G', 'G', 'U', 'F'};
  W::Put<uint32_t>(&header, 3);
  W::Put<uint64_t>(&header, 0);
  W::Put<uint64_t>(&header, uint64_t{1} << 60);
  EXPECT_NE(ParseError(header).find("claims 1152921504606846976 metadata entries"),
            std::string::npos);
  header = {'G', 'G', 'U', 'F'};
  W::Put<uint32_t>(&header, 3);
  W::Put<uint64_t>(&header, uint64_t{1} << 60);
  W::Put<uint64_t>(&header, 0);
  EXPECT_NE(ParseError(header).find("tensors, more than"), std::string::npos);

  // A string longer than the file.
  {
    W w;
    std::vector<uint8_t> v;
    W::Put<uint64_t>(&v, 1000000);
    v.push_back('x');
    w.AddRaw("name", 8, v);
    EXPECT_NE(ParseError(w.Bytes()).find("the value of key 'name' claims a length of 1000000"),
              std::string::npos);
  }
  // An array count larger than the bytes left.
  {
    W w;
    std::vector<uint8_t> v;
    W::Put<uint32_t>(&v, 8);
    W::Put<uint64_t>(&v, uint64_t{1} << 40);
    w.AddRaw("tokens", 9, v);
    EXPECT_NE(ParseError(w.Bytes()).find("key 'tokens' claims 1099511627776 string elements"),
              std::string::npos);
  }
  // Unknown value types, at the top and inside an array.
  {
    W w;
    w.AddRaw("x", 13, {});
    EXPECT_EQ(ParseError(w.Bytes()),
              "bad.gguf: GGUF key 'x' has unknown value type 13 (known: 0 to 12)");
    W a;
    std::vector<uint8_t> v;
    W::Put<uint32_t>(&v, 99);
    W::Put<uint64_t>(&v, 1);
    a.AddRaw("arr", 9, v);
    EXPECT_EQ(ParseError(a.Bytes()), "bad.gguf: key 'arr' is an array of unknown value type 99");
  }
  // Arrays nested too deep.
  {
    W w;
    std::vector<uint8_t> v;
    for (int i = 0; i < 6; ++i) {
      W::Put<uint32_t>(&v, 9);
      W::Put<uint64_t>(&v, 1);
    }
    w.AddRaw("deep", 9, v);
    EXPECT_EQ(ParseError(w.Bytes()), "bad.gguf: key 'deep' nests arrays more than 4 deep");
  }
  // A bool that is not 0 or 1, a duplicate key.
  {
    W w;
    w.AddScalar<uint8_t>("flag", 7, 2);
    EXPECT_EQ(ParseError(w.Bytes()),
              "bad.gguf: key 'flag' is a bool with byte value 2 (must be 0 or 1)");
    W d;
    d.AddString("k", "a");
    d.AddString("k", "b");
    EXPECT_EQ(ParseError(d.Bytes()), "bad.gguf: GGUF key 'k' appears twice");
  }
  // Tensors: bad rank, unknown type, block size, overflow, misaligned or
  // out-of-file offset, duplicate name.
  {
    W w;
    w.AddTensor("t", {}, kGgmlTypeF32, {});
    EXPECT_EQ(ParseError(w.Bytes()), "bad.gguf: GGUF tensor 't' has 0 dimensions (1 to 4 allowed)");
  }
  {
    W w;
    w.AddTensor("t", {4}, 4, std::vector<uint8_t>(16));  // Q4_2, removed from ggml
    EXPECT_EQ(ParseError(w.Bytes()),
              "bad.gguf: GGUF tensor 't' has ggml type 4, unknown to this reader");
  }
  {
    W w;
    w.AddTensor("t", {33}, kGgmlTypeQ8_0, std::vector<uint8_t>(34));
    EXPECT_EQ(ParseError(w.Bytes()),
              "bad.gguf: GGUF tensor 't' of type Q8_0 has ne[0] = 33, not a multiple of 32");
  }
  {
    W w;
    w.AddTensor("t", {uint64_t{1} << 40, uint64_t{1} << 40}, kGgmlTypeF32, {});
    EXPECT_EQ(ParseError(w.Bytes()), "bad.gguf: GGUF tensor 't' has a size that overflows 64 bits");
  }
  {
    W w;
    w.AddTensor("t", {1000}, kGgmlTypeF32, std::vector<uint8_t>(16));  // claims 4000 bytes
    EXPECT_NE(ParseError(w.Bytes()).find("tensor 't' (4000 bytes at data offset 0) extends past"),
              std::string::npos);
  }
  {
    W w;
    w.AddTensor("a", {4}, kGgmlTypeF32, std::vector<uint8_t>(16));
    w.AddTensor("a", {4}, kGgmlTypeF32, std::vector<uint8_t>(16));
    EXPECT_EQ(ParseError(w.Bytes()), "bad.gguf: GGUF tensor 'a' appears twice");
  }
  {
    // Hand-made directory entry with offset 8 (alignment 32).
    std::vector<uint8_t> b = {'G', 'G', 'U', 'F'};
    W::Put<uint32_t>(&b, 3);
    W::Put<uint64_t>(&b, 1);
    W::Put<uint64_t>(&b, 0);
    W::PutString(&b, "t");
    W::Put<uint32_t>(&b, 1);
    W::Put<uint64_t>(&b, 2);
    W::Put<uint32_t>(&b, kGgmlTypeF32);
    W::Put<uint64_t>(&b, 8);
    b.resize(256, 0);
    EXPECT_EQ(ParseError(b),
              "bad.gguf: GGUF tensor 't' has offset 8, not a multiple of the alignment 32");
  }
}

// Two tensors claiming the same bytes (docs/converting.md says such files
// are refused): named, both of them.
TEST(GgufTest, OverlappingTensorsAreRefused) {
  GgufTestWriter w;
  w.AddString("general.architecture", "llama");
  w.AddTensor("a", {8}, kGgmlTypeF32, std::vector<uint8_t>(32, 1));
  w.AddTensor("b", {8}, kGgmlTypeF32, std::vector<uint8_t>(32, 2));
  w.AddTensor("c", {8}, kGgmlTypeF32, std::vector<uint8_t>(32, 3));
  EXPECT_EQ(ParseError(w.Bytes()), "ok");  // as written: disjoint
  w.SetOffset(2, 32);                      // c now starts where b does
  EXPECT_EQ(ParseError(w.Bytes()),
            "bad.gguf: corrupt GGUF: tensors 'b' (data offset 32, 32 bytes) and 'c' (data offset "
            "32) overlap");
  GgufTestWriter partial = w;
  partial.SetOffset(2, 64);  // disjoint again
  EXPECT_EQ(ParseError(partial.Bytes()), "ok");
}

TEST(GgufTest, OpenReportsMissingAndNonRegularFiles) {
  testing::ScratchDir dir;
  Result<GgufFile> missing = GgufFile::Open(dir.File("absent.gguf"));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  std::filesystem::create_directory(dir.File("folder"));
  EXPECT_EQ(GgufFile::Open(dir.File("folder")).status().code(), StatusCode::kInvalidArgument);
  // A file on disk opens through mmap and reads the same as from memory.
  const std::vector<uint8_t> bytes = EveryTypeWriter().Bytes();
  {
    std::ofstream out(dir.File("every.gguf"), std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  Result<GgufFile> file = GgufFile::Open(dir.File("every.gguf"));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->file_size(), bytes.size());
  EXPECT_EQ(*file->GetStringArray("strings"), (std::vector<std::string>{"a", "", "héllo"}));
  EXPECT_EQ(file->TensorData(*file->FindTensor("q"))[0], 7);
  // An empty file is not GGUF.
  { std::ofstream out(dir.File("empty.gguf")); }
  EXPECT_EQ(GgufFile::Open(dir.File("empty.gguf")).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lockstep::runtime
