#include "lockstep/formats/source_tensor.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "lockstep/base/check.h"
#include "lockstep/base/dtype.h"
#include "lockstep/base/quant_block.h"

namespace lockstep::runtime {
namespace {

// a * b, or false on overflow of int64.
bool MulOk(int64_t a, int64_t b, int64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

template <typename T>
T LoadLe(const uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));  // x86-64 and every supported target: little-endian
  return value;
}

}  // namespace

std::string_view SourceEncodingName(SourceEncoding encoding) {
  switch (encoding) {
    case SourceEncoding::kF32:
      return "f32";
    case SourceEncoding::kF16:
      return "f16";
    case SourceEncoding::kBF16:
      return "bf16";
    case SourceEncoding::kQ8_0:
      return "q8_0";
    case SourceEncoding::kQ4_0:
      return "q4_0";
    case SourceEncoding::kGroupQ8:
      return "q8 (llama2.c groups)";
  }
  return "?";
}

int64_t SourceTensor::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Result<uint64_t> SourceTensorBytes(const SourceTensor& t) {
  int64_t elements = 1;
  for (int64_t d : t.shape) {
    if (d < 0 || !MulOk(elements, d, &elements)) {
      return InvalidArgument("{}: tensor '{}' has an invalid shape", t.file->path(), t.name);
    }
  }
  int64_t bytes = 0;
  switch (t.encoding) {
    case SourceEncoding::kF32:
      if (!MulOk(elements, 4, &bytes)) break;
      return static_cast<uint64_t>(bytes);
    case SourceEncoding::kF16:
    case SourceEncoding::kBF16:
      if (!MulOk(elements, 2, &bytes)) break;
      return static_cast<uint64_t>(bytes);
    case SourceEncoding::kQ8_0:
    case SourceEncoding::kQ4_0:
      if (t.cols() % kQ8_0BlockValues != 0) {
        return InvalidArgument(
            "{}: tensor '{}' is {} with rows of {} values, not a multiple of the block size {}",
            t.file->path(), t.name, t.encoding == SourceEncoding::kQ8_0 ? "Q8_0" : "Q4_0",
            t.cols(), kQ8_0BlockValues);
      }
      if (!MulOk(elements / kQ8_0BlockValues,
                 t.encoding == SourceEncoding::kQ8_0 ? kQ8_0BlockBytes : kQ4_0BlockBytes, &bytes))
        break;
      return static_cast<uint64_t>(bytes);
    case SourceEncoding::kGroupQ8:
      if (t.group_size <= 0 || elements % t.group_size != 0) {
        return InvalidArgument(
            "{}: tensor '{}' has {} elements, not a multiple of the group size {}", t.file->path(),
            t.name, elements, t.group_size);
      }
      if (!MulOk(elements / t.group_size, 4, &bytes)) break;
      return static_cast<uint64_t>(elements) + static_cast<uint64_t>(bytes);
  }
  return InvalidArgument("{}: tensor '{}' is too large", t.file->path(), t.name);
}

Status CheckSourceTensorBounds(const SourceTensor& t) {
  LOCKSTEP_ASSIGN_OR_RETURN(uint64_t bytes, SourceTensorBytes(t));
  auto check = [&](uint64_t offset, uint64_t count) -> Status {
    if (t.file->Contains(offset, count)) return Status::Ok();
    return DataLoss("{}: truncated: tensor '{}' needs bytes [{}, {}) but the file has {} bytes",
                    t.file->path(), t.name, offset, offset + count, t.file->size());
  };
  if (t.encoding != SourceEncoding::kGroupQ8) return check(t.offset, bytes);
  const uint64_t values = static_cast<uint64_t>(t.elements());
  LOCKSTEP_RETURN_IF_ERROR(check(t.offset, values));
  return check(t.scale_offset, bytes - values);
}

SourceTensor SliceSourceRows(const SourceTensor& t, int64_t row_begin, int64_t num_rows) {
  LOCKSTEP_CHECK(row_begin >= 0 && num_rows >= 0 && row_begin + num_rows <= t.rows(),
                 "rows [{}, {}) of '{}' with {} rows", row_begin, row_begin + num_rows, t.name,
                 t.rows());
  LOCKSTEP_CHECK(t.encoding != SourceEncoding::kGroupQ8, "'{}': llama2.c groups are not sliced",
                 t.name);
  int64_t row_bytes = 0;
  switch (t.encoding) {
    case SourceEncoding::kF32:
      row_bytes = t.cols() * 4;
      break;
    case SourceEncoding::kF16:
    case SourceEncoding::kBF16:
      row_bytes = t.cols() * 2;
      break;
    case SourceEncoding::kQ8_0:
      row_bytes = t.cols() / kQ8_0BlockValues * kQ8_0BlockBytes;
      break;
    case SourceEncoding::kQ4_0:
      row_bytes = t.cols() / kQ8_0BlockValues * kQ4_0BlockBytes;
      break;
    case SourceEncoding::kGroupQ8:
      break;
  }
  SourceTensor part = t;
  part.offset = t.offset + static_cast<uint64_t>(row_begin * row_bytes);
  part.shape[0] = num_rows;
  return part;
}

Status ReadSourceRows(const SourceTensor& t, int64_t row_begin, int64_t num_rows, float* out,
                      std::vector<uint8_t>* scratch) {
  LOCKSTEP_CHECK(row_begin >= 0 && num_rows >= 0 && row_begin + num_rows <= t.rows(),
                 "rows [{}, {}) of '{}' with {} rows", row_begin, row_begin + num_rows, t.name,
                 t.rows());
  const int64_t cols = t.cols();
  const int64_t first = row_begin * cols;  // first element
  const int64_t count = num_rows * cols;
  if (count == 0) return Status::Ok();
  const std::string what = fmt::format("tensor '{}'", t.name);
  switch (t.encoding) {
    case SourceEncoding::kF32:
      return t.file->ReadAt(t.offset + static_cast<uint64_t>(first) * 4,
                            static_cast<uint64_t>(count) * 4, out, what);
    case SourceEncoding::kF16:
    case SourceEncoding::kBF16: {
      scratch->resize(static_cast<size_t>(count) * 2);
      LOCKSTEP_RETURN_IF_ERROR(t.file->ReadAt(t.offset + static_cast<uint64_t>(first) * 2,
                                              static_cast<uint64_t>(count) * 2, scratch->data(),
                                              what));
      const uint8_t* p = scratch->data();
      if (t.encoding == SourceEncoding::kF16) {
        for (int64_t i = 0; i < count; ++i) out[i] = F16ToF32(LoadLe<uint16_t>(p + 2 * i));
      } else {
        for (int64_t i = 0; i < count; ++i) out[i] = Bf16ToF32(LoadLe<uint16_t>(p + 2 * i));
      }
      return Status::Ok();
    }
    case SourceEncoding::kQ8_0:
    case SourceEncoding::kQ4_0: {
      const DType dtype = t.encoding == SourceEncoding::kQ8_0 ? DType::kQ8_0 : DType::kQ4_0;
      scratch->resize(static_cast<size_t>(DTypeBytes(dtype, count)));
      LOCKSTEP_RETURN_IF_ERROR(t.file->ReadAt(t.offset + static_cast<uint64_t>(DTypeBytes(dtype, first)),
                                              scratch->size(), scratch->data(), what));
      DequantizeRow(dtype, scratch->data(), count, out);  // exact
      return Status::Ok();
    }
    case SourceEncoding::kGroupQ8: {
      // Groups run over the flattened tensor and may straddle rows: read the
      // scales of every group that [first, first + count) touches.
      const int64_t g0 = first / t.group_size;
      const int64_t g1 = (first + count - 1) / t.group_size + 1;
      const size_t value_bytes = static_cast<size_t>(count);
      scratch->resize(value_bytes + static_cast<size_t>(g1 - g0) * 4);
      LOCKSTEP_RETURN_IF_ERROR(t.file->ReadAt(t.offset + static_cast<uint64_t>(first), value_bytes,
                                              scratch->data(), what));
      LOCKSTEP_RETURN_IF_ERROR(t.file->ReadAt(t.scale_offset + static_cast<uint64_t>(g0) * 4,
                                              static_cast<uint64_t>(g1 - g0) * 4,
                                              scratch->data() + value_bytes, what + " scales"));
      const int8_t* q = reinterpret_cast<const int8_t*>(scratch->data());
      const uint8_t* scales = scratch->data() + value_bytes;
      for (int64_t i = 0; i < count; ++i) {
        const int64_t g = (first + i) / t.group_size - g0;
        out[i] = static_cast<float>(q[i]) * LoadLe<float>(scales + 4 * g);
      }
      return Status::Ok();
    }
  }
  return Internal("unknown source encoding");
}

Status ReadSourceBlocks(const SourceTensor& t, int64_t row_begin, int64_t num_rows, uint8_t* out) {
  LOCKSTEP_CHECK(t.encoding == SourceEncoding::kQ8_0 || t.encoding == SourceEncoding::kQ4_0,
                 "ReadSourceBlocks of {} tensor '{}'", SourceEncodingName(t.encoding), t.name);
  LOCKSTEP_CHECK(row_begin >= 0 && num_rows >= 0 && row_begin + num_rows <= t.rows(),
                 "rows [{}, {}) of '{}' with {} rows", row_begin, row_begin + num_rows, t.name,
                 t.rows());
  const DType dtype = t.encoding == SourceEncoding::kQ8_0 ? DType::kQ8_0 : DType::kQ4_0;
  const int64_t row_bytes = DTypeBytes(dtype, t.cols());
  return t.file->ReadAt(t.offset + static_cast<uint64_t>(row_begin * row_bytes),
                        static_cast<uint64_t>(num_rows * row_bytes), out,
                        fmt::format("tensor '{}'", t.name));
}

}  // namespace lockstep::runtime
