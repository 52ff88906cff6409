// The chunk shape of a tensor in model format v1 (docs/model-format.md,
// "Chunking").
//
// Tensor-parallel shards cut a dimension of length n at multiples of n/tp
// (row splits of column-parallel tensors and of lm_head) or at floor(r*n/tp)
// (column splits of row-parallel tensors and of the embedding, the canonical
// segment boundaries). For tp in {1, 2, 4, 8} these cuts are all multiples of
// n/g, where g = gcd(n, 8), whenever tp divides n. So each chunk extent is
// chosen among the divisors of n/g; then every such shard is a whole set of
// chunks and is read without touching its neighbours' bytes. A dimension of
// odd length has no aligned split, and any extent is allowed.
//
// 1-D tensors (the norm weights) are replicated, never split: one chunk of
// the whole vector, or of target_bytes if it is larger.
//
// Among the allowed extents the columns take the largest one that fits
// target_bytes (a chunk's rows then are long contiguous runs), and the rows
// the largest that keeps the chunk within target_bytes. A chunk is therefore
// at most target_bytes, unless one element of each dimension is already
// more; it is smaller when the divisors of n/g do not come closer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lockstep::runtime {

// `shape` is [n] or [rows, cols]; the result has the same rank.
std::vector<int64_t> ModelChunkShape(const std::vector<int64_t>& shape, size_t element_size,
                                     int64_t target_bytes);

// The largest extent allowed for a dimension of length n (see above) that is
// at most `limit` (at least 1).
int64_t LargestChunkExtent(int64_t n, int64_t limit);

}  // namespace lockstep::runtime
