// World: what every communicator of one world shares — the backend, the
// options and the counter of group contexts.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "backend.h"
#include "lockstep/transport/options.h"

namespace lockstep::transport::internal {

// What this rank has exchanged over the world (Communicator::traffic()):
// counted when an operation is posted (message sizes are exact, so posted
// receive bytes are received bytes). Statistics, not state.
struct TrafficCounter {
  uint64_t bytes_received = 0;
  uint64_t messages_received = 0;
  std::vector<int> peers;  // distinct world ranks messaged either way, sorted

  void Count(bool is_recv, int peer_world, size_t bytes) {
    if (is_recv) {
      bytes_received += bytes;
      ++messages_received;
    }
    auto it = std::lower_bound(peers.begin(), peers.end(), peer_world);
    if (it == peers.end() || *it != peer_world) peers.insert(it, peer_world);
  }
};

struct World {
  std::unique_ptr<Backend> backend;
  CommOptions options;
  uint32_t next_context = 1;  // 0 is the world's own context
  // Scratch for collectives (receive buffers), grown on demand and kept: the
  // communicators of a world run one collective at a time.
  std::vector<std::byte> scratch;
  // Mutable: streams hold a const World; counting is not a change of state.
  mutable TrafficCounter traffic;
};

}  // namespace lockstep::transport::internal
