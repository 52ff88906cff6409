// World: what every communicator of one world shares — the backend, the
// options and the counter of group contexts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "backend.h"
#include "lockstep/transport/options.h"

namespace lockstep::transport::internal {

struct World {
  std::unique_ptr<Backend> backend;
  CommOptions options;
  uint32_t next_context = 1;  // 0 is the world's own context
  // Scratch for collectives (receive buffers), grown on demand and kept: the
  // communicators of a world run one collective at a time.
  std::vector<std::byte> scratch;
};

}  // namespace lockstep::transport::internal
