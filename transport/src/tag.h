// The 23-bit message tag: the identity of a message between two ranks.
// 23 bits because that is what Open MPI's UCX PML (`--mca pml ucx`, the
// default on many InfiniBand sites) allows: MPI_TAG_UB = 2^23 - 1 there,
// 2^31 - 1 with ob1; the mpi backend checks it at start-up. The ucx backend
// puts the sender's rank above it in UCP's 64-bit tag and never asks MPI.
//
//   stream message:     0 | stream id (6 bits)     | sequence mod 2^16 (16 bits)
//   collective message: 1 | group context (6 bits) | call number mod 2^10 (10) | step mod 64 (6)
//
// Reusing a tag is always safe: messages with the same (sender, tag) match
// in send order on every backend, and every receiver posts the receives of
// a stream, or of a group's collectives, in the order they are sent. The
// sequence and call bits only make a mismatched schedule fail loudly (a
// size check, a timeout) instead of pairing distant messages.
#pragma once

#include <cstdint>

namespace lockstep::transport::internal {

inline constexpr int kTagBits = 23;
inline constexpr uint32_t kMaxTag = (1u << kTagBits) - 1;
inline constexpr uint32_t kMaxContext = 63;

inline uint32_t StreamTag(uint32_t stream_id, uint64_t sequence) {
  return (stream_id << 16) | static_cast<uint32_t>(sequence & 0xffff);
}

inline uint32_t CollectiveTag(uint32_t context, uint64_t call, int step) {
  return (1u << 22) | (context << 16) | (static_cast<uint32_t>(call & 0x3ff) << 6) |
         static_cast<uint32_t>(step & 63);
}

}  // namespace lockstep::transport::internal
