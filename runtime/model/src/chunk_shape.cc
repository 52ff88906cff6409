#include "lockstep/model/chunk_shape.h"

#include <algorithm>
#include <numeric>

#include "lockstep/base/check.h"

namespace lockstep::runtime {

int64_t LargestChunkExtent(int64_t n, int64_t limit) {
  LOCKSTEP_CHECK(n > 0, "dimension {}", n);
  limit = std::clamp<int64_t>(limit, 1, n);
  if (n % 2 != 0) return limit;  // no power-of-two split is aligned anyway
  const int64_t unit = n / std::gcd(n, int64_t{8});
  // The largest divisor of `unit` not above `limit`. unit <= n / 2, and n is
  // a tensor dimension (at most a few hundred thousand): a plain scan.
  for (int64_t extent = std::min(limit, unit); extent > 1; --extent) {
    if (unit % extent == 0) return extent;
  }
  return 1;
}

std::vector<int64_t> ModelChunkShape(const std::vector<int64_t>& shape, size_t element_size,
                                     int64_t target_bytes) {
  LOCKSTEP_CHECK(shape.size() == 1 || shape.size() == 2, "rank {}", shape.size());
  const int64_t max_elements =
      std::max<int64_t>(1, target_bytes / static_cast<int64_t>(element_size));
  if (shape.size() == 1) return {std::min(shape[0], max_elements)};  // replicated: no alignment
  const int64_t cols = LargestChunkExtent(shape[1], max_elements);
  const int64_t rows = LargestChunkExtent(shape[0], max_elements / cols);
  return {rows, cols};
}

}  // namespace lockstep::runtime
