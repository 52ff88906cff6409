// Model shapes and clusters shared by the partitioner tests.
#pragma once

#include <vector>

#include "lockstep/partitioner/cluster_spec.h"
#include "lockstep/partitioner/model_config.h"

namespace lockstep::partitioner::testing {

// A llama-shaped config with the given sizes (valid per ModelConfig::Validate).
inline ModelConfig Shape(const char* name, int64_t vocab, int64_t hidden, int64_t ffn, int layers,
                         int heads, int kv_heads, int head_dim, bool tied = false) {
  ModelConfig c;
  c.name = name;
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = ffn;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = head_dim;
  c.max_position_embeddings = 4096;
  c.tie_word_embeddings = tied;
  return c;
}

// Shapes chosen to hit the corners: sizes not divisible by 64 or by tp,
// sizes smaller than 64 (empty canonical segments), GQA with replicated KV
// heads, MHA, tied embeddings.
inline std::vector<ModelConfig> OddShapes() {
  return {
      Shape("odd-a", 509, 96, 200, 3, 8, 2, 12),        // kv replicated for tp 4, 8
      Shape("odd-b", 1000, 130, 37, 2, 16, 16, 8),      // ffn < 64, hidden not /64
      Shape("odd-c", 77, 40, 50, 5, 4, 1, 10, true),    // tiny dims, 1 kv head, tied
      Shape("odd-d", 3001, 192, 517, 2, 32, 8, 6),      // up to tp 32
      Shape("odd-e", 64, 64, 64, 1, 64, 4, 2),          // tp 64, every segment one column
      Shape("odd-f", 129, 66, 129, 2, 2, 2, 34, true),  // 2 heads
  };
}

// 4 chips per node; simple round numbers for hand-computed costs.
inline ClusterSpec TestCluster(int num_chips) {
  ClusterSpec s;
  s.num_chips = num_chips;
  s.chips_per_node = 4;
  s.chip.name = "test-chip";
  s.chip.memory_bytes = int64_t{1} << 40;
  s.chip.memory_bandwidth_bytes_per_s = 1e10;
  s.chip.peak_flops[static_cast<int>(ElementType::kF32)] = 1e11;
  s.chip.op_overhead_s = 1e-6;
  s.intra_node_link = {1e9, 1e-6, 1};
  s.inter_node_link = {1e8, 1e-5, 1};
  s.allreduce_large_min_bytes = 1000;
  return s;
}

}  // namespace lockstep::partitioner::testing
