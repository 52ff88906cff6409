#include "step_message.h"

#include <cstring>

#include "lockstep/base/check.h"

namespace lockstep::runtime {
namespace {

constexpr uint32_t kDescriptorMagic = 0x4c534450;  // "LSDP"
constexpr uint32_t kOutcomeMagic = 0x4c534f55;     // "LSOU"

// Wire records: fixed-width fields, no implicit padding.
struct DescriptorHeader {
  uint32_t magic;
  uint32_t kind;
  int64_t step;
  int32_t num_chunks;
  int32_t num_bindings;
  int32_t binding_pages;  // page ids over all bindings
  int32_t num_tokens;
};
static_assert(sizeof(DescriptorHeader) == 32);

struct ChunkRecord {
  int64_t handle;
  int32_t slot;
  int32_t first_position;
  int32_t num_tokens;
  int32_t wants_logits;
};
static_assert(sizeof(ChunkRecord) == 24);

struct OutcomeHeader {
  uint32_t magic;
  int32_t count;
  int64_t step;
};
static_assert(sizeof(OutcomeHeader) == 16);

struct OutcomeRecord {
  int64_t handle;
  int32_t token;
  uint8_t finished;
  uint8_t stop;
  uint8_t has_sha;
  uint8_t non_finite;  // RowOutcome::NonFinite
  uint64_t fingerprint;
  char sha256[64];
};
static_assert(sizeof(OutcomeRecord) == 88);

template <typename T>
void Put(std::vector<std::byte>* out, size_t offset, const T& value) {
  std::memcpy(out->data() + offset, &value, sizeof(T));
}
template <typename T>
T Get(std::span<const std::byte> in, size_t offset) {
  T value;
  std::memcpy(&value, in.data() + offset, sizeof(T));
  return value;
}

}  // namespace

StepDescriptor StepDescriptor::FromPlan(const StepPlan& plan) {
  StepDescriptor d;
  d.kind = Kind::kStep;
  d.step = plan.step;
  d.chunks = plan.chunks;
  d.bindings = plan.bindings;
  return d;
}

StepDescriptor StepDescriptor::End(int64_t step) {
  StepDescriptor d;
  d.kind = Kind::kEnd;
  d.step = step;
  return d;
}

int64_t StepDescriptor::num_tokens() const {
  int64_t n = 0;
  for (const StepChunk& c : chunks) n += c.num_tokens;
  return n;
}

TokenBatch StepDescriptor::Batch() const {
  TokenBatch batch;
  for (const StepChunk& c : chunks) {
    for (int32_t i = 0; i < c.num_tokens; ++i) {
      batch.Add(0, c.slot, c.first_position + i, c.wants_logits && i + 1 == c.num_tokens);
    }
  }
  return batch;
}

size_t DescriptorBytes(int max_chunks) {
  return sizeof(DescriptorHeader) + static_cast<size_t>(max_chunks) * sizeof(ChunkRecord);
}

void EncodeDescriptor(const StepDescriptor& d, int max_chunks, std::vector<std::byte>* fixed,
                      std::vector<std::byte>* bindings) {
  LOCKSTEP_CHECK(d.chunks.size() <= static_cast<size_t>(max_chunks),
                 "step {} has {} chunks, capacity {}", d.step, d.chunks.size(), max_chunks);
  fixed->assign(DescriptorBytes(max_chunks), std::byte{0});
  int32_t pages = 0;
  for (const SlotBinding& b : d.bindings) pages += static_cast<int32_t>(b.pages.size());
  DescriptorHeader h{kDescriptorMagic,
                     static_cast<uint32_t>(d.kind),
                     d.step,
                     static_cast<int32_t>(d.chunks.size()),
                     static_cast<int32_t>(d.bindings.size()),
                     pages,
                     static_cast<int32_t>(d.num_tokens())};
  Put(fixed, 0, h);
  for (size_t i = 0; i < d.chunks.size(); ++i) {
    const StepChunk& c = d.chunks[i];
    ChunkRecord r{c.handle, c.slot, c.first_position, c.num_tokens, c.wants_logits ? 1 : 0};
    Put(fixed, sizeof(DescriptorHeader) + i * sizeof(ChunkRecord), r);
  }
  // Bindings: per binding (slot, page count), then every page id.
  bindings->assign((2 * d.bindings.size() + static_cast<size_t>(pages)) * sizeof(int32_t),
                   std::byte{0});
  size_t offset = 0;
  for (const SlotBinding& b : d.bindings) {
    Put(bindings, offset, b.slot);
    Put(bindings, offset + 4, static_cast<int32_t>(b.pages.size()));
    offset += 8;
  }
  for (const SlotBinding& b : d.bindings) {
    for (int32_t p : b.pages) {
      Put(bindings, offset, p);
      offset += 4;
    }
  }
}

Result<StepDescriptor> DecodeDescriptor(std::span<const std::byte> fixed, int max_chunks,
                                        size_t* binding_bytes) {
  if (fixed.size() != DescriptorBytes(max_chunks)) {
    return InvalidArgument("step descriptor of {} bytes, expected {}", fixed.size(),
                           DescriptorBytes(max_chunks));
  }
  const DescriptorHeader h = Get<DescriptorHeader>(fixed, 0);
  if (h.magic != kDescriptorMagic ||
      (h.kind != static_cast<uint32_t>(StepDescriptor::Kind::kStep) &&
       h.kind != static_cast<uint32_t>(StepDescriptor::Kind::kEnd))) {
    return InvalidArgument("message is not a step descriptor (magic {:#x}, kind {})", h.magic,
                           h.kind);
  }
  // Bindings are not bounded by the chunk capacity: a step may admit more
  // sequences (up to --max-batch) than it feeds.
  if (h.num_chunks < 0 || h.num_chunks > max_chunks || h.num_bindings < 0 || h.binding_pages < 0) {
    return InvalidArgument("step descriptor {} has {} chunks and {} bindings (capacity {})", h.step,
                           h.num_chunks, h.num_bindings, max_chunks);
  }
  StepDescriptor d;
  d.kind = static_cast<StepDescriptor::Kind>(h.kind);
  d.step = h.step;
  for (int32_t i = 0; i < h.num_chunks; ++i) {
    const ChunkRecord r = Get<ChunkRecord>(
        fixed, sizeof(DescriptorHeader) + static_cast<size_t>(i) * sizeof(ChunkRecord));
    d.chunks.push_back({r.handle, r.slot, r.first_position, r.num_tokens, r.wants_logits != 0});
  }
  d.bindings.resize(static_cast<size_t>(h.num_bindings));
  *binding_bytes =
      (2 * static_cast<size_t>(h.num_bindings) + static_cast<size_t>(h.binding_pages)) *
      sizeof(int32_t);
  if (d.num_tokens() != h.num_tokens) {
    return InvalidArgument("step descriptor {} counts {} tokens but its chunks hold {}", h.step,
                           h.num_tokens, d.num_tokens());
  }
  return d;
}

Status DecodeBindings(std::span<const std::byte> bindings, StepDescriptor* d) {
  size_t offset = 0;
  size_t pages = 0;
  if (bindings.size() < d->bindings.size() * 8) {
    return InvalidArgument("bindings message of {} bytes for {} bindings", bindings.size(),
                           d->bindings.size());
  }
  for (SlotBinding& b : d->bindings) {
    b.slot = Get<int32_t>(bindings, offset);
    const int32_t count = Get<int32_t>(bindings, offset + 4);
    if (count < 0) return InvalidArgument("negative page count in a binding");
    b.pages.resize(static_cast<size_t>(count));
    pages += static_cast<size_t>(count);
    offset += 8;
  }
  if (bindings.size() != offset + pages * 4) {
    return InvalidArgument("bindings message of {} bytes, expected {}", bindings.size(),
                           offset + pages * 4);
  }
  for (SlotBinding& b : d->bindings) {
    for (int32_t& p : b.pages) {
      p = Get<int32_t>(bindings, offset);
      offset += 4;
    }
  }
  return Status::Ok();
}

size_t OutcomeBytes(int max_chunks) {
  return sizeof(OutcomeHeader) + static_cast<size_t>(max_chunks) * sizeof(OutcomeRecord);
}

void EncodeOutcomes(const StepOutcomes& o, int max_chunks, std::vector<std::byte>* out) {
  LOCKSTEP_CHECK(o.rows.size() <= static_cast<size_t>(max_chunks));
  out->assign(OutcomeBytes(max_chunks), std::byte{0});
  Put(out, 0, OutcomeHeader{kOutcomeMagic, static_cast<int32_t>(o.rows.size()), o.step});
  for (size_t i = 0; i < o.rows.size(); ++i) {
    const RowOutcome& row = o.rows[i];
    OutcomeRecord r{};
    r.handle = row.handle;
    r.token = row.token;
    r.finished = row.finished ? 1 : 0;
    r.stop = row.stop ? 1 : 0;
    r.fingerprint = row.fingerprint;
    r.non_finite = static_cast<uint8_t>(row.non_finite);
    if (!row.logits_sha256.empty()) {
      LOCKSTEP_CHECK(row.logits_sha256.size() == sizeof(r.sha256));
      r.has_sha = 1;
      std::memcpy(r.sha256, row.logits_sha256.data(), sizeof(r.sha256));
    }
    Put(out, sizeof(OutcomeHeader) + i * sizeof(OutcomeRecord), r);
  }
}

Result<StepOutcomes> DecodeOutcomes(std::span<const std::byte> in, int max_chunks) {
  if (in.size() != OutcomeBytes(max_chunks)) {
    return InvalidArgument("step outcome message of {} bytes, expected {}", in.size(),
                           OutcomeBytes(max_chunks));
  }
  const OutcomeHeader h = Get<OutcomeHeader>(in, 0);
  if (h.magic != kOutcomeMagic || h.count < 0 || h.count > max_chunks) {
    return InvalidArgument("message is not a step outcome (magic {:#x}, {} rows)", h.magic,
                           h.count);
  }
  StepOutcomes o;
  o.step = h.step;
  for (int32_t i = 0; i < h.count; ++i) {
    const OutcomeRecord r = Get<OutcomeRecord>(
        in, sizeof(OutcomeHeader) + static_cast<size_t>(i) * sizeof(OutcomeRecord));
    RowOutcome row;
    row.handle = r.handle;
    row.token = r.token;
    row.finished = r.finished != 0;
    row.stop = r.stop != 0;
    row.fingerprint = r.fingerprint;
    if (r.non_finite > static_cast<uint8_t>(RowOutcome::NonFinite::kInfinity)) {
      return InvalidArgument("step outcome row {} has non-finite kind {}", i, r.non_finite);
    }
    row.non_finite = static_cast<RowOutcome::NonFinite>(r.non_finite);
    if (r.has_sha) row.logits_sha256.assign(r.sha256, sizeof(r.sha256));
    o.rows.push_back(std::move(row));
  }
  return o;
}

}  // namespace lockstep::runtime
