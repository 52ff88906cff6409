#include "lockstep/model/chunk_shape.h"

#include <gtest/gtest.h>

#include "lockstep/model/model_file.h"
#include "runtime/model_file_test_util.h"

namespace lockstep::runtime {
namespace {

using partitioner::ModelConfig;
using partitioner::TensorRole;
using partitioner::TensorSpec;

// The cuts a tp shard makes in a dimension of length n: multiples of n/tp for
// row splits, floor(r*n/tp) for column splits (canonical segment bounds).
std::vector<int64_t> RowCuts(int64_t n, int tp) {
  std::vector<int64_t> cuts;
  for (int r = 1; r < tp; ++r) cuts.push_back(r * (n / tp));
  return cuts;
}
std::vector<int64_t> ColumnCuts(int64_t n, int tp) {
  std::vector<int64_t> cuts;
  for (int r = 1; r < tp; ++r) cuts.push_back(r * n / tp);
  return cuts;
}

TEST(ChunkShapeTest, EveryPresetTensorShardFallsOnChunkBoundaries) {
  for (const std::string& name : partitioner::ModelPresetNames()) {
    Result<ModelConfig> config = partitioner::ModelPreset(name);
    ASSERT_TRUE(config.ok());
    for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
      for (int64_t target : {int64_t{1} << 16, int64_t{1} << 20, int64_t{4} << 20}) {
        for (const TensorSpec& spec : partitioner::ModelTensors(*config)) {
          const size_t size = spec.role == TensorRole::kNorm ? 4 : DTypeSize(dtype);
          const std::vector<int64_t> chunk = ModelChunkShape(spec.shape, size, target);
          ASSERT_EQ(chunk.size(), spec.shape.size());
          int64_t chunk_elements = 1;
          for (size_t d = 0; d < chunk.size(); ++d) {
            ASSERT_GE(chunk[d], 1);
            ASSERT_LE(chunk[d], spec.shape[d]);
            chunk_elements *= chunk[d];
          }
          EXPECT_LE(chunk_elements * static_cast<int64_t>(size), target)
              << name << " " << spec.path;
          if (spec.shape.size() == 1) continue;  // norms are replicated
          for (int tp : {2, 4, 8}) {
            // Both dimensions are tiled: rows and columns may each be split.
            for (int d = 0; d < 2; ++d) {
              const int64_t n = spec.shape[d];
              if (n % tp != 0) continue;
              for (int64_t cut : RowCuts(n, tp)) {
                EXPECT_EQ(cut % chunk[d], 0) << name << " " << spec.path << " tp " << tp;
              }
              for (int64_t cut : ColumnCuts(n, tp)) {
                EXPECT_EQ(cut % chunk[d], 0) << name << " " << spec.path << " tp " << tp;
              }
            }
          }
        }
      }
    }
  }
}

TEST(ChunkShapeTest, ChunksComeCloseToTheTargetWhenDivisorsAllow) {
  // TinyLlama w_gate [5632, 2048] in bf16 at 1 MiB: columns 256 (= 2048/8),
  // rows the largest divisor of 704 (= 5632/8) with 256 * rows * 2 <= 1 MiB.
  EXPECT_EQ(ModelChunkShape({5632, 2048}, 2, 1 << 20), (std::vector<int64_t>{704, 256}));
  // The llama-110m embedding [32000, 768] in f32: 96 columns, 2000 rows.
  EXPECT_EQ(ModelChunkShape({32000, 768}, 4, 1 << 20), (std::vector<int64_t>{2000, 96}));
  // Odd dimensions have no aligned split; any extent will do.
  EXPECT_EQ(ModelChunkShape({32001, 7}, 4, 1 << 20), (std::vector<int64_t>{32001, 7}));
  EXPECT_EQ(LargestChunkExtent(32001, 1000), 1000);
  // A norm is one chunk.
  EXPECT_EQ(ModelChunkShape({4096}, 4, 1 << 20), (std::vector<int64_t>{4096}));
  // Rows wider than the target: one row per chunk, columns cut to fit.
  EXPECT_EQ(ModelChunkShape({8, 1 << 20}, 4, 1 << 16), (std::vector<int64_t>{1, 16384}));
  EXPECT_EQ(LargestChunkExtent(500, 1000), 125);  // 500 = 4 * 125: tp 2 and 4 stay aligned
  EXPECT_EQ(LargestChunkExtent(6, 1000), 3);
}

TEST(ChunkShapeTest, WrittenFilesUseTheRule) {
  testing::ScratchDir dir;
  const ModelConfig config = testing::MicroConfig();
  ModelWriterOptions options{DType::kF16, 512};
  Result<ModelWriter> writer = ModelWriter::Create(dir.File("m.h5"), config, options);
  ASSERT_TRUE(writer.ok());
  for (const TensorSpec& spec : partitioner::ModelTensors(config)) {
    int64_t n = 1;
    for (int64_t d : spec.shape) n *= d;
    std::vector<float> zeros(static_cast<size_t>(n), 0.0f);
    ASSERT_TRUE(writer->WriteTensor(spec, zeros.data()).ok());
  }
  ASSERT_TRUE(writer->Close().ok());
  Result<ModelFile> file = ModelFile::Open(dir.File("m.h5"));
  ASSERT_TRUE(file.ok());
  for (const TensorInfo& info : file->tensors()) {
    EXPECT_EQ(info.chunk, ModelChunkShape(info.shape, DTypeSize(info.dtype), 512)) << info.path;
  }
}

}  // namespace
}  // namespace lockstep::runtime
