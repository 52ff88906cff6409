// The 31-bit message tag: the identity of a message between two ranks.
// 31 bits because that is what MPI guarantees on this Open MPI (MPI_TAG_UB =
// 2^31 - 1; checked at start-up); UCX puts the sender's rank above it.
//
//   stream message:     0 | stream id (14 bits) | sequence mod 2^16 (16 bits)
//   collective message: 1 | group context (8)   | call number mod 2^16 (16) | step mod 64 (6)
//
// Reusing a tag after 2^16 messages (or 64 steps) is safe: messages with the
// same (sender, tag) match in send order, and a stream or collective never
// has that many in flight between two ranks.
#pragma once

#include <cstdint>

namespace lockstep::transport::internal {

inline constexpr uint32_t kMaxTag = (1u << 31) - 1;
inline constexpr uint32_t kMaxContext = 255;

inline uint32_t StreamTag(uint32_t stream_id, uint64_t sequence) {
  return (stream_id << 16) | static_cast<uint32_t>(sequence & 0xffff);
}

inline uint32_t CollectiveTag(uint32_t context, uint64_t call, int step) {
  return (1u << 30) | (context << 22) | (static_cast<uint32_t>(call & 0xffff) << 6) |
         static_cast<uint32_t>(step & 63);
}

}  // namespace lockstep::transport::internal
