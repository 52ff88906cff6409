// The paged KV cache: page bookkeeping (KvPageAllocator) and page memory
// (KvCache).
//
// A page holds kernels::kKvPageSize consecutive positions of one sequence for
// one layer, in the layout of kernels/attention.h (K page
// [num_kv_heads][head_dim][64], V page [num_kv_heads][64][head_dim], f32).
// A sequence owns a list of page ids (its page table): entry i holds its
// positions [64 i, 64 i + 64). The same page id is used in every layer, so a
// page id stands for num_layers K pages and num_layers V pages.
//
// Reservation. A sequence gets all the pages it can ever need
// (prompt + max_tokens positions) when it is admitted, so a running request
// never runs out of cache and nothing is ever evicted or recomputed; a request
// that needs more pages than the whole cache holds can never run and is
// rejected before it starts.
//
// Tensor / pipeline parallel (issue 5): the allocator's decisions (which
// pages a sequence gets) are made once, by the scheduler, and shipped with
// the step; each rank's KvCache holds the same page ids for its own layers
// (its pipeline stage) and its own KV heads (its tensor-parallel shard).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/kernels/attention.h"

namespace lockstep::runtime {

// Pages needed for `positions` positions.
constexpr int32_t KvPagesFor(int64_t positions) {
  return static_cast<int32_t>((positions + kernels::kKvPageSize - 1) / kernels::kKvPageSize);
}

// Which pages are free. Pure bookkeeping, no memory. Allocation takes the
// lowest free ids first, so the page ids a job uses depend only on the order
// of admissions and releases. Not thread-safe.
class KvPageAllocator {
 public:
  explicit KvPageAllocator(int32_t num_pages);

  int32_t num_pages() const { return num_pages_; }
  int32_t free_pages() const { return static_cast<int32_t>(free_.size()); }

  // `count` pages, lowest ids first. ResourceExhausted when fewer are free
  // (nothing is taken then).
  Result<std::vector<int32_t>> Allocate(int32_t count);
  // Returns pages taken by Allocate. Freeing a page twice is a checked error.
  void Free(std::span<const int32_t> pages);

 private:
  int32_t num_pages_;
  std::vector<int32_t> free_;  // sorted descending: back() is the lowest id
  std::vector<bool> in_use_;
};

struct KvCacheShape {
  int num_layers = 0;         // layers held by this rank (its pipeline stage)
  kernels::KvPageShape page;  // KV heads held by this rank, head_dim
  int32_t num_pages = 0;
  int num_slots = 0;  // sequence slots (max requests in flight)

  // Bytes of one page id across all layers, K and V.
  size_t bytes_per_page() const {
    return size_t{2} * static_cast<size_t>(num_layers) * page.floats_per_page() * sizeof(float);
  }
  size_t bytes() const { return bytes_per_page() * static_cast<size_t>(num_pages); }
};

// Page memory of one rank plus the page tables of the sequence slots.
// Memory is allocated once (untouched pages cost no physical memory until
// first written). Not thread-safe for Bind; the page accessors are const and
// may be used from kernel threads while no Bind runs.
class KvCache {
 public:
  explicit KvCache(const KvCacheShape& shape);

  const KvCacheShape& shape() const { return shape_; }

  // Gives slot `slot` the page table `pages` (any previous binding of the slot
  // is dropped). Page ids must be < num_pages.
  void Bind(int slot, std::span<const int32_t> pages);
  // Number of positions the slot can hold (pages * kKvPageSize).
  int64_t SlotCapacity(int slot) const;

  // The page table of `slot` for local layer `layer` as the pointer arrays
  // kernels::AttentionQuery wants; valid until the next Bind of the slot.
  const float* const* KPageTable(int slot, int layer) const;
  const float* const* VPageTable(int slot, int layer) const;

  // The K and V pages holding `position` of `slot` in local layer `layer`
  // (for kernels::KvStore at slot position % kKvPageSize).
  float* KPageAt(int slot, int layer, int64_t position);
  float* VPageAt(int slot, int layer, int64_t position);

 private:
  float* KPage(int layer, int32_t page) const;
  float* VPage(int layer, int32_t page) const;

  struct FreeDeleter {
    void operator()(float* p) const;
  };
  struct SlotTables {
    std::vector<int32_t> pages;
    // [layer][page] pointers into memory_.
    std::vector<std::vector<const float*>> k;
    std::vector<std::vector<const float*>> v;
  };

  KvCacheShape shape_;
  std::unique_ptr<float, FreeDeleter> memory_;  // [layer][page][K | V][floats_per_page]
  std::vector<SlotTables> slots_;
};

}  // namespace lockstep::runtime
