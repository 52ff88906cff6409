// The state of the canonical segment tree that the matmul block kernels
// (matmul_impl.h, quant_matmul_impl.h) share, written once over the 16-lane
// VecF of the including build. Included only by kernels_<isa>.cc.
//
// A block kernel computes P panels x T tokens: per lane one output, a chain
// per canonical segment (an FMA chain from +0), and the segment sums combined
// by a binary-counter stack into the balanced tree in index order. Between
// chunks of K a block's accumulators and stack are parked in memory here.

namespace lockstep::kernels::LOCKSTEP_SIMD_NS {

// The running state of one P x T block between calls: the accumulators of
// a segment cut by a chunk edge (valid only when acc_live), the segment-sum
// stack, and the index of the current segment. stack level l holds the sum of
// the last complete, still unpaired subtree of 2^l segments.
// Index: acc[p * T + t], stack[(l * P + p) * T + t].
// Levels below local_levels live in `local` instead of `stack`: they are
// only used within one chunk, so all token blocks share that (L1-resident)
// memory and only the higher levels travel with the block.
struct BlockState {
  VecF* acc;
  VecF* stack;
  int segment;
  bool acc_live;
  VecF* local = nullptr;
  int local_levels = 0;
};

// Token blocks per PrefillPanels call (bounds its state memory).
inline constexpr int64_t kMaxPrefillBlocks = 256;
// VecFs of state per token block: accumulators plus the segment stack.
template <int P, int T>
inline constexpr int kStateVecs = (1 + internal::kSegmentStackDepth) * P* T;

// After all segments: the root of the tree is at level log2(num_segments).
// Stores the first `tokens` (<= T) tokens of the block.
template <int P, int T, typename Call>
void StoreBlock(const Call& c, int64_t panel0, int64_t token0, const VecF* stack,
                int tokens = T) {
  int top = 0;
  while ((1 << top) < c.num_segments) ++top;
  for (int p = 0; p < P; ++p) {
    const int64_t row0 = (panel0 + p) * 16;
    const int64_t valid = c.rows - row0 < 16 ? c.rows - row0 : 16;
    for (int t = 0; t < tokens; ++t) {
      float* y = c.y + (token0 + t) * c.ldy + row0;
      const VecF& v = stack[(top * P + p) * T + t];
      if (valid == 16) {
        v.Store(y);
      } else {
        v.StoreN(y, static_cast<int>(valid));
      }
    }
  }
}

// A 64-byte aligned heap array owned for the duration of a call (vector
// loads from it must not straddle cache lines). Defined here, in the build's
// namespace, rather than using std::unique_ptr<float[]>, whose inline code
// would be shared with baseline translation units.
template <typename U>
struct ScratchArray {
  U* data;
  explicit ScratchArray(int64_t n) : data(new (std::align_val_t(64)) U[n]) {}
  ~ScratchArray() { ::operator delete[](data, std::align_val_t(64)); }
  ScratchArray(const ScratchArray&) = delete;
  ScratchArray& operator=(const ScratchArray&) = delete;
};

// The FMA chains of the token blocks of one panel group while K is walked
// chunk by chunk: each block's accumulators and stack in `states` (block b
// at b * kStateVecs<P, T>), its segment index and live flag here, and the
// within-chunk stack levels, which all blocks share.
template <int P, int T>
struct TokenBlockChains {
  template <typename Call>
  TokenBlockChains(const Call& c, VecF* states, int64_t num_blocks)
      : states(states), local_levels(c.chunk_levels) {
    for (int64_t b = 0; b < num_blocks; ++b) {
      segment[b] = 0;
      acc_live[b] = false;
    }
  }
  // Block b's state for the next chunk, and back when the chunk is done.
  BlockState Resume(int64_t b) {
    VecF* s = states + b * kStateVecs<P, T>;
    return {s, s + P * T, segment[b], acc_live[b], local, local_levels};
  }
  void Park(int64_t b, const BlockState& state) {
    segment[b] = state.segment;
    acc_live[b] = state.acc_live;
  }

  VecF* states;
  int local_levels;
  int segment[kMaxPrefillBlocks];
  bool acc_live[kMaxPrefillBlocks];
  VecF local[internal::kSegmentStackDepth * P * T];
};

}  // namespace lockstep::kernels::LOCKSTEP_SIMD_NS
