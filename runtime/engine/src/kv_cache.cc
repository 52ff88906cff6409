#include "lockstep/engine/kv_cache.h"

#include <algorithm>
#include <cstdlib>

#include "lockstep/base/check.h"

namespace lockstep::runtime {

KvPageAllocator::KvPageAllocator(int32_t num_pages)
    : num_pages_(num_pages), in_use_(static_cast<size_t>(num_pages), false) {
  LOCKSTEP_CHECK(num_pages >= 0);
  free_.reserve(static_cast<size_t>(num_pages));
  for (int32_t p = num_pages - 1; p >= 0; --p) free_.push_back(p);
}

Result<std::vector<int32_t>> KvPageAllocator::Allocate(int32_t count) {
  LOCKSTEP_CHECK(count >= 0);
  if (count > free_pages()) {
    return ResourceExhausted("KV cache: {} pages wanted, {} of {} free", count, free_pages(),
                             num_pages_);
  }
  std::vector<int32_t> pages;
  pages.reserve(static_cast<size_t>(count));
  for (int32_t i = 0; i < count; ++i) {
    pages.push_back(free_.back());
    free_.pop_back();
    in_use_[static_cast<size_t>(pages.back())] = true;
  }
  return pages;
}

void KvPageAllocator::Free(std::span<const int32_t> pages) {
  for (int32_t p : pages) {
    LOCKSTEP_CHECK(p >= 0 && p < num_pages_ && in_use_[static_cast<size_t>(p)],
                   "KV page {} freed but not allocated", p);
    in_use_[static_cast<size_t>(p)] = false;
    free_.push_back(p);
  }
  // Keep the free list sorted descending so Allocate hands out the lowest ids.
  std::sort(free_.begin(), free_.end(), std::greater<int32_t>());
}

void KvCache::FreeDeleter::operator()(float* p) const {
  std::free(p);
}

KvCache::KvCache(const KvCacheShape& shape) : shape_(shape) {
  LOCKSTEP_CHECK(shape.num_layers >= 0 && shape.num_pages >= 0 && shape.num_slots >= 0);
  size_t bytes = std::max<size_t>(shape.bytes(), 64);
  bytes = (bytes + 63) / 64 * 64;  // aligned_alloc wants a multiple of the alignment
  memory_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
  LOCKSTEP_CHECK(memory_ != nullptr, "cannot allocate {} bytes for the KV cache", bytes);
  slots_.resize(static_cast<size_t>(shape.num_slots));
}

float* KvCache::KPage(int layer, int32_t page) const {
  const size_t fpp = shape_.page.floats_per_page();
  size_t index = (static_cast<size_t>(layer) * static_cast<size_t>(shape_.num_pages) +
                  static_cast<size_t>(page)) *
                 2;
  return memory_.get() + index * fpp;
}

float* KvCache::VPage(int layer, int32_t page) const {
  return KPage(layer, page) + shape_.page.floats_per_page();
}

void KvCache::Bind(int slot, std::span<const int32_t> pages) {
  LOCKSTEP_CHECK(slot >= 0 && slot < shape_.num_slots, "slot {} out of range", slot);
  SlotTables& t = slots_[static_cast<size_t>(slot)];
  t.pages.assign(pages.begin(), pages.end());
  t.k.assign(static_cast<size_t>(shape_.num_layers), {});
  t.v.assign(static_cast<size_t>(shape_.num_layers), {});
  for (int layer = 0; layer < shape_.num_layers; ++layer) {
    auto& k = t.k[static_cast<size_t>(layer)];
    auto& v = t.v[static_cast<size_t>(layer)];
    k.reserve(pages.size());
    v.reserve(pages.size());
    for (int32_t page : pages) {
      LOCKSTEP_CHECK(page >= 0 && page < shape_.num_pages, "KV page {} out of range", page);
      k.push_back(KPage(layer, page));
      v.push_back(VPage(layer, page));
    }
  }
}

int64_t KvCache::SlotCapacity(int slot) const {
  return static_cast<int64_t>(slots_[static_cast<size_t>(slot)].pages.size()) *
         kernels::kKvPageSize;
}

const float* const* KvCache::KPageTable(int slot, int layer) const {
  return slots_[static_cast<size_t>(slot)].k[static_cast<size_t>(layer)].data();
}

const float* const* KvCache::VPageTable(int slot, int layer) const {
  return slots_[static_cast<size_t>(slot)].v[static_cast<size_t>(layer)].data();
}

float* KvCache::KPageAt(int slot, int layer, int64_t position) {
  const SlotTables& t = slots_[static_cast<size_t>(slot)];
  const size_t entry = static_cast<size_t>(position / kernels::kKvPageSize);
  LOCKSTEP_CHECK(position >= 0 && entry < t.pages.size(),
                 "position {} beyond the {} KV positions reserved for slot {}", position,
                 t.pages.size() * kernels::kKvPageSize, slot);
  return KPage(layer, t.pages[entry]);
}

float* KvCache::VPageAt(int slot, int layer, int64_t position) {
  return KPageAt(slot, layer, position) + shape_.page.floats_per_page();
}

}  // namespace lockstep::runtime
