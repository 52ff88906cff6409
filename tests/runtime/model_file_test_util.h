// Helpers shared by the model-file tests: scratch directories, small configs,
// and direct HDF5 edits that damage a valid model file in one precise way.
#pragma once

#include <gtest/gtest.h>
#include <hdf5.h>
#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "lockstep/partitioner/model_config.h"

namespace lockstep::runtime::testing {

// A directory removed with everything in it when the object goes away.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "lockstep_test_XXXXXX").string();
    char* made = mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Small, but with everything that matters: GQA (4 heads over 2 KV heads), an
// odd vocabulary, head_dim 8, untied lm_head.
inline partitioner::ModelConfig MicroConfig() {
  partitioner::ModelConfig c;
  c.name = "micro";
  c.vocab_size = 67;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 64;
  c.rope_theta = 50000.0;
  return c;
}

inline std::vector<char> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteBytes(const std::string& path, const char* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data, static_cast<std::streamsize>(size));
}

// Opens a file read-write for an edit and closes it when done. The edits use
// the raw C API on purpose: they make files lockstep's writer never would.
class FileEditor {
 public:
  explicit FileEditor(const std::string& path) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    file_ = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    EXPECT_GE(file_, 0) << path;
  }
  ~FileEditor() { H5Fclose(file_); }

  void DeleteAttribute(const char* name) { EXPECT_GE(H5Adelete(file_, name), 0) << name; }

  void SetString(const char* name, const std::string& value, bool variable_length = false) {
    if (H5Aexists(file_, name) > 0) DeleteAttribute(name);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, variable_length ? H5T_VARIABLE : value.size() + 1);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(file_, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    const char* text = value.c_str();
    if (variable_length) {
      H5Awrite(attr, type, &text);
    } else {
      H5Awrite(attr, type, text);
    }
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
  }

  // Any scalar attribute: `file_type` is its type in the file, `memory_type`
  // describes `value`.
  void SetScalar(const char* name, hid_t file_type, hid_t memory_type, const void* value) {
    if (H5Aexists(file_, name) > 0) DeleteAttribute(name);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(file_, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(H5Awrite(attr, memory_type, value), 0) << name;
    H5Aclose(attr);
    H5Sclose(space);
  }
  void SetInt(const char* name, int64_t value) {
    SetScalar(name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
  }
  void SetDouble(const char* name, double value) {
    SetScalar(name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
  }
  // The way h5py stores numpy.bool_: an enum {FALSE=0, TRUE=1} over int8.
  void SetH5pyBool(const char* name, bool value) {
    hid_t type = H5Tenum_create(H5T_NATIVE_INT8);
    int8_t f = 0, t = 1;
    H5Tenum_insert(type, "FALSE", &f);
    H5Tenum_insert(type, "TRUE", &t);
    int8_t v = value ? 1 : 0;
    SetScalar(name, type, type, &v);
    H5Tclose(type);
  }

  void DeleteLink(const std::string& path) {
    EXPECT_GE(H5Ldelete(file_, path.c_str(), H5P_DEFAULT), 0) << path;
  }
  // Replaces a dataset by an uninitialised one of another type or shape.
  void ReplaceDataset(const std::string& path, hid_t type, std::vector<hsize_t> dims) {
    DeleteLink(path);
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t dataset =
        H5Dcreate2(file_, path.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(dataset, 0) << path;
    H5Dclose(dataset);
    H5Sclose(space);
  }
  void CreateGroup(const std::string& path) {
    hid_t group = H5Gcreate2(file_, path.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(group, 0) << path;
    H5Gclose(group);
  }

  // Overwrites the f16 scale bits of block `block` of row `row` of a q8_0 /
  // q4_0 tensor (blocks are compounds whose first two bytes are the scale).
  void SetBlockScale(const std::string& path, int64_t row, int64_t block, uint16_t bits) {
    hid_t dataset = H5Dopen2(file_, path.c_str(), H5P_DEFAULT);
    ASSERT_GE(dataset, 0) << path;
    hid_t type = H5Dget_type(dataset);
    hid_t space = H5Dget_space(dataset);
    hsize_t dims[2] = {0, 0};
    H5Sget_simple_extent_dims(space, dims, nullptr);
    const size_t size = H5Tget_size(type);
    std::vector<uint8_t> data(dims[0] * dims[1] * size);
    EXPECT_GE(H5Dread(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), 0);
    std::memcpy(data.data() + (row * dims[1] + block) * size, &bits, 2);
    EXPECT_GE(H5Dwrite(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), 0);
    H5Sclose(space);
    H5Tclose(type);
    H5Dclose(dataset);
  }

 private:
  hid_t file_ = H5I_INVALID_HID;
};

}  // namespace lockstep::runtime::testing
