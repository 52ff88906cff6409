// Integrity of model files (docs/model-format.md, "Checksums"): what the
// writer adds, and that damage is refused -- never read as wrong weights.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "lockstep/model/model_file.h"
#include "lockstep/model/synth.h"
#include "model_integrity.h"
#include "runtime/model_file_test_util.h"

namespace lockstep::runtime {
namespace {

using partitioner::ModelConfig;
using partitioner::ModelTensors;
using partitioner::TensorSpec;
using testing::FileEditor;
using testing::MicroConfig;
using testing::ScratchDir;

constexpr const char* kWq = "/layers/1/attn/wq";

void Synth(const std::string& path, DType dtype = DType::kBF16, uint64_t seed = 1) {
  Status s = SynthesizeModel(MicroConfig(), dtype, seed, path);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

bool Contains(const Status& s, std::string_view text) {
  return s.message().find(text) != std::string::npos;
}

// The file address and size of each chunk of a dataset.
struct ChunkPlace {
  haddr_t address;
  hsize_t size;
};
std::vector<ChunkPlace> Chunks(const std::string& path, const std::string& dataset_path) {
  std::vector<ChunkPlace> out;
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t dataset = H5Dopen2(file, dataset_path.c_str(), H5P_DEFAULT);
  hid_t space = H5Dget_space(dataset);
  hsize_t n = 0;
  H5Dget_num_chunks(dataset, space, &n);
  for (hsize_t i = 0; i < n; ++i) {
    hsize_t offset[2] = {};
    unsigned mask = 0;
    haddr_t address = 0;
    hsize_t size = 0;
    H5Dget_chunk_info(dataset, space, i, offset, &mask, &address, &size);
    out.push_back({address, size});
  }
  H5Sclose(space);
  H5Dclose(dataset);
  H5Fclose(file);
  return out;
}

void Overwrite(const std::string& path, uint64_t offset, const std::vector<uint8_t>& bytes) {
  std::vector<char> file = testing::ReadBytes(path);
  ASSERT_LE(offset + bytes.size(), file.size());
  std::memcpy(file.data() + offset, bytes.data(), bytes.size());
  testing::WriteBytes(path, file.data(), file.size());
}

TEST(ModelIntegrityTest, EveryTensorHasChunkChecksumsAndADigestAndTheFileAManifest) {
  ScratchDir dir;
  const std::string path = dir.File("m.h5");
  Synth(path);
  Result<ModelFile> file = ModelFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_TRUE(file->integrity().complete());
  EXPECT_EQ(file->integrity().tensors, static_cast<int>(file->tensors().size()));
  EXPECT_EQ(file->integrity().Warning(path), "");
  // Recompute the manifest from the data itself (docs/model-format.md).
  std::string manifest;
  for (const TensorInfo& t : file->tensors()) {
    EXPECT_TRUE(t.chunk_checksums) << t.path;
    std::vector<uint8_t> data(static_cast<size_t>(t.bytes()));
    ASSERT_TRUE(file->ReadAll(t.path, data.data()).ok());
    const std::string digest = DigestHex(data.data(), data.size());
    EXPECT_EQ(t.sha256, digest) << t.path;
    manifest += digest + "  " + t.path + "\n";
    Result<TensorCheck> check = file->VerifyTensor(t.path);
    ASSERT_TRUE(check.ok());
    EXPECT_TRUE(check->status.ok()) << check->status.ToString();
  }
  EXPECT_EQ(file->integrity().manifest_sha256, DigestHex(manifest.data(), manifest.size()));
  // HDF5 itself sees the filter (what `h5dump -p` prints as FILTERS).
  hid_t h5 = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t dataset = H5Dopen2(h5, kWq, H5P_DEFAULT);
  hid_t dcpl = H5Dget_create_plist(dataset);
  ASSERT_EQ(H5Pget_nfilters(dcpl), 1);
  unsigned flags = 0, config = 0;
  size_t elements = 0;
  EXPECT_EQ(H5Pget_filter2(dcpl, 0, &flags, &elements, nullptr, 0, nullptr, &config),
            H5Z_FILTER_FLETCHER32);
  H5Pclose(dcpl);
  H5Dclose(dataset);
  H5Fclose(h5);
}

TEST(ModelIntegrityTest, ChecksumsKeepFilesReproducible) {
  ScratchDir dir;
  Synth(dir.File("a.h5"));
  Synth(dir.File("b.h5"));
  EXPECT_EQ(testing::ReadBytes(dir.File("a.h5")), testing::ReadBytes(dir.File("b.h5")));
}

// Eight 0xFF bytes in a chunk of tensor data (the case): every read
// touching that chunk fails, naming the tensor; verify finds it.
TEST(ModelIntegrityTest, DamagedTensorDataIsRefusedNamingTheTensor) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    ScratchDir dir;
    const std::string path = dir.File("m.h5");
    Synth(path, dtype);
    const std::vector<ChunkPlace> chunks = Chunks(path, kWq);
    ASSERT_FALSE(chunks.empty());
    Overwrite(path, chunks[0].address + 8, std::vector<uint8_t>(8, 0xff));

    Result<ModelFile> file = ModelFile::Open(path);  // metadata is intact
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    const TensorInfo* info = file->Find(kWq);
    std::vector<uint8_t> data(static_cast<size_t>(info->bytes()));
    Status read = file->ReadAll(kWq, data.data());
    EXPECT_EQ(read.code(), StatusCode::kDataLoss) << read.ToString();
    EXPECT_TRUE(Contains(read, kWq)) << read.ToString();
    EXPECT_TRUE(Contains(read, "checksum")) << read.ToString();
    EXPECT_TRUE(Contains(read, path)) << read.ToString();
    EXPECT_EQ(read.message().find('\n'), std::string::npos);
    // A slice of the damaged chunk (what a tp rank reads) fails too.
    const TensorSlice first_rows{0, 1, 0, info->shape[1]};
    EXPECT_EQ(file->Read(kWq, first_rows, data.data()).code(), StatusCode::kDataLoss);
    Result<TensorCheck> check = file->VerifyTensor(kWq);
    ASSERT_TRUE(check.ok());
    EXPECT_EQ(check->status.code(), StatusCode::kDataLoss);
    // The other tensors are fine.
    Result<TensorCheck> other = file->VerifyTensor("/layers/0/attn/wq");
    EXPECT_TRUE(other->status.ok()) << other->status.ToString();
  }
}

// Values rewritten through HDF5 (so the chunk checksums are recomputed):
// the tensor no longer matches its digest.
TEST(ModelIntegrityTest, RewrittenTensorDoesNotMatchItsDigest) {
  ScratchDir dir;
  const std::string path = dir.File("m.h5");
  Synth(path, DType::kF32);
  {
    hid_t h5 = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t dataset = H5Dopen2(h5, kWq, H5P_DEFAULT);
    hid_t space = H5Dget_space(dataset);
    hsize_t dims[2];
    H5Sget_simple_extent_dims(space, dims, nullptr);
    std::vector<float> values(dims[0] * dims[1], 0.25f);
    ASSERT_GE(H5Dwrite(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
              0);
    H5Sclose(space);
    H5Dclose(dataset);
    H5Fclose(h5);
  }
  Result<ModelFile> file = ModelFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  std::vector<uint8_t> data(static_cast<size_t>(file->Find(kWq)->bytes()));
  Status read = file->ReadAll(kWq, data.data());
  EXPECT_EQ(read.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(read, "sha256")) << read.ToString();
  Result<TensorCheck> check = file->VerifyTensor(kWq);
  EXPECT_EQ(check->status.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(check->status, kWq));
}

TEST(ModelIntegrityTest, AnEditedDigestContradictsTheManifest) {
  ScratchDir dir;
  const std::string path = dir.File("m.h5");
  Synth(path);
  {
    hid_t h5 = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t dataset = H5Dopen2(h5, kWq, H5P_DEFAULT);
    ASSERT_TRUE(WriteDigestAttribute(dataset, path, kWq, std::string(64, 'a')).ok());
    H5Dclose(dataset);
    H5Fclose(h5);
  }
  Result<ModelFile> file = ModelFile::Open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(file.status(), "manifest_sha256")) << file.status().ToString();
}

// NaN and infinite weights are refused while reading, naming the tensor and
// the element, in every dtype.
TEST(ModelIntegrityTest, NonFiniteWeightsAreRefusedNamingTheTensorAndElement) {
  const float bad_values[] = {std::numeric_limits<float>::quiet_NaN(),
                              std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity()};
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (float bad : bad_values) {
      ScratchDir dir;
      const std::string path = dir.File("m.h5");
      const ModelConfig config = MicroConfig();
      ModelWriterOptions options;
      options.dtype = dtype;
      Result<ModelWriter> writer = ModelWriter::Create(path, config, options);
      ASSERT_TRUE(writer.ok());
      for (const TensorSpec& spec : ModelTensors(config)) {
        int64_t n = 1;
        for (int64_t d : spec.shape) n *= d;
        std::vector<float> values(static_cast<size_t>(n), 0.01f);
        if (spec.path == kWq) values[static_cast<size_t>(3 * spec.shape[1] + 5)] = bad;
        ASSERT_TRUE(writer->WriteTensor(spec, values.data()).ok());
      }
      ASSERT_TRUE(writer->Close().ok());
      Result<ModelFile> file = ModelFile::Open(path);
      ASSERT_TRUE(file.ok());
      const TensorInfo* info = file->Find(kWq);
      std::vector<uint8_t> data(static_cast<size_t>(info->bytes()));
      Status read = file->ReadAll(kWq, data.data());
      EXPECT_EQ(read.code(), StatusCode::kInvalidArgument) << DTypeName(dtype);
      EXPECT_TRUE(Contains(read, kWq)) << read.ToString();
      EXPECT_TRUE(Contains(read, "[3, 5]")) << read.ToString();
      EXPECT_TRUE(Contains(read, std::isnan(bad) ? "a NaN" : "an infinity")) << read.ToString();
      // A slice without the bad element reads; one with it does not.
      EXPECT_TRUE(file->Read(kWq, TensorSlice{0, 3, 0, info->shape[1]}, data.data()).ok());
      Status slice = file->Read(kWq, TensorSlice{2, 4, 4, 6}, data.data());
      EXPECT_TRUE(Contains(slice, "[3, 5]")) << slice.ToString();
      EXPECT_FALSE(file->VerifyTensor(kWq)->status.ok());
    }
  }
}

// A file as h5py or an older lockstep writes it: contiguous datasets, no
// digests, no manifest. It opens and reads; integrity() says what is missing.
TEST(ModelIntegrityTest, FilesWithoutChecksumsStillLoadWithOneWarningLine) {
  ScratchDir dir;
  const std::string path = dir.File("m.h5");
  Synth(path, DType::kF16);
  std::vector<std::pair<TensorInfo, std::vector<uint8_t>>> tensors;
  {
    Result<ModelFile> file = ModelFile::Open(path);
    ASSERT_TRUE(file.ok());
    for (const TensorInfo& t : file->tensors()) {
      std::vector<uint8_t> data(static_cast<size_t>(t.bytes()));
      ASSERT_TRUE(file->ReadAll(t.path, data.data()).ok());
      tensors.push_back({t, std::move(data)});
    }
  }
  {
    hid_t h5 = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(H5Adelete(h5, kManifestAttribute), 0);
    for (const auto& [info, data] : tensors) {
      hid_t old = H5Dopen2(h5, info.path.c_str(), H5P_DEFAULT);
      hid_t type = H5Dget_type(old);
      H5Dclose(old);
      ASSERT_GE(H5Ldelete(h5, info.path.c_str(), H5P_DEFAULT), 0);
      std::vector<hsize_t> dims(info.shape.begin(), info.shape.end());
      hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
      hid_t made = H5Dcreate2(h5, info.path.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT,
                              H5P_DEFAULT);
      ASSERT_GE(H5Dwrite(made, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), 0);
      H5Dclose(made);
      H5Sclose(space);
      H5Tclose(type);
    }
    H5Fclose(h5);
  }
  Result<ModelFile> file = ModelFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_FALSE(file->integrity().complete());
  EXPECT_EQ(file->integrity().tensors_with_checksums, 0);
  const std::string warning = file->integrity().Warning(path);
  EXPECT_NE(warning.find("no checksums"), std::string::npos) << warning;
  EXPECT_EQ(warning.find('\n'), std::string::npos);
  for (const auto& [info, data] : tensors) {
    std::vector<uint8_t> read(data.size());
    ASSERT_TRUE(file->ReadAll(info.path, read.data()).ok());
    EXPECT_EQ(read, data);
    EXPECT_TRUE(file->VerifyTensor(info.path)->status.ok());
  }
}

// One byte flipped anywhere outside the tensor data (the HDF5 metadata:
// superblock, object headers, attributes, chunk indexes): the file is
// refused, or -- when the byte was unused -- it reads exactly as before.
// Never a different config or different weights.
TEST(ModelIntegrityTest, AFlippedMetadataByteIsRefusedOrHarmless) {
  ScratchDir dir;
  const std::string path = dir.File("m.h5");
  Synth(path, DType::kBF16);
  const std::vector<char> original = testing::ReadBytes(path);
  // The bytes of tensor data, and what the file reads as.
  std::vector<bool> is_data(original.size(), false);
  std::vector<std::vector<uint8_t>> expected;
  ModelConfig config;
  {
    Result<ModelFile> file = ModelFile::Open(path);
    ASSERT_TRUE(file.ok());
    config = file->config();
    for (const TensorInfo& t : file->tensors()) {
      for (const ChunkPlace& c : Chunks(path, t.path)) {
        for (hsize_t i = 0; i < c.size; ++i) is_data[c.address + i] = true;
      }
      expected.emplace_back(static_cast<size_t>(t.bytes()));
      ASSERT_TRUE(file->ReadAll(t.path, expected.back().data()).ok());
    }
  }
  std::vector<size_t> positions;
  for (size_t i = 0; i < original.size(); ++i) {
    if (!is_data[i]) positions.push_back(i);
  }
  ASSERT_GT(positions.size(), 1000u);
  // Every 23rd metadata byte (about a thousand cases), each flipped alone, in
  // a file image (the checks are those of Open). Every 7th byte, once: 3,162
  // refused, 204 harmless, none silently different.
  int refused = 0, harmless = 0;
  for (size_t k = 0; k < positions.size(); k += 23) {
    std::vector<std::byte> bytes(original.size());
    std::memcpy(bytes.data(), original.data(), original.size());
    bytes[positions[k]] ^= std::byte{0x5a};
    Result<ModelFile> file = ModelFile::OpenImage("damaged.h5", std::move(bytes));
    if (!file.ok()) {
      ++refused;
      EXPECT_EQ(file.status().message().find('\n'), std::string::npos);
      continue;
    }
    bool all_read = true;
    ASSERT_EQ(file->config(), config) << "byte " << positions[k];
    for (size_t t = 0; t < file->tensors().size(); ++t) {
      std::vector<uint8_t> data(expected[t].size());
      Status read = file->ReadAll(file->tensors()[t].path, data.data());
      if (!read.ok()) {
        all_read = false;
        continue;
      }
      ASSERT_EQ(data, expected[t]) << "byte " << positions[k] << " changed "
                                   << file->tensors()[t].path << " silently";
    }
    all_read ? ++harmless : ++refused;
  }
  EXPECT_GT(refused, 10 * harmless);
  std::printf("flipped metadata bytes: %d refused, %d harmless\n", refused, harmless);
  RecordProperty("refused", refused);
  RecordProperty("harmless", harmless);
}

TEST(ModelIntegrityTest, OpenImageChecksAFileInMemory) {
  ScratchDir dir;
  const std::string path = dir.File("m.h5");
  Synth(path);
  const std::vector<char> bytes = testing::ReadBytes(path);
  std::vector<std::byte> image(bytes.size());
  std::memcpy(image.data(), bytes.data(), bytes.size());
  Result<ModelFile> file = ModelFile::OpenImage("image.h5", image);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_TRUE(file->integrity().complete());
  std::vector<uint8_t> data(static_cast<size_t>(file->Find(kWq)->bytes()));
  EXPECT_TRUE(file->ReadAll(kWq, data.data()).ok());
  // Truncated images (and the empty one) are refused, never crash.
  for (size_t size : {size_t{0}, size_t{7}, size_t{512}, bytes.size() / 2, bytes.size() - 1}) {
    std::vector<std::byte> cut(image.begin(), image.begin() + static_cast<ptrdiff_t>(size));
    Result<ModelFile> truncated = ModelFile::OpenImage("cut.h5", cut);
    if (truncated.ok()) {
      // Metadata can all sit at the front: then the data reads must fail.
      EXPECT_FALSE(truncated->ReadAll(kWq, data.data()).ok()) << size;
    } else {
      EXPECT_NE(truncated.status().message().find("cut.h5"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace lockstep::runtime
