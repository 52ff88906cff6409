// The machine a plan is made for: chips (one MPI rank each), how they are
// grouped into nodes, and the links between them.
//
// A ClusterSpec comes from a JSON file (docs/partitioner.md, "Cluster spec"),
// from a chip preset (chip_presets.h) plus a chip count, or from the file
// `lockstep calibrate` writes for this host. Every rate is a peak the cost model
// divides by; nothing here is measured at plan time.
//
// Placement: world rank w runs on node w / chips_per_node (ranks fill nodes in
// order, the last node may be partial). Two ranks talk over `intra_node_link`
// when they share a node and over `inter_node_link` otherwise.
//
// Thread safety: plain values.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/partitioner/element_type.h"

namespace lockstep::partitioner {

// The most chips a cluster spec (and a plan) may have.
inline constexpr int kMaxClusterChips = 1 << 20;

// A point-to-point connection between two chips, as the alpha-beta model sees
// it: sending n bytes to a peer takes latency_s + n / PeerBandwidth().
struct LinkSpec {
  double bandwidth_bytes_per_s = 0;  // one link, one direction
  double latency_s = 0;              // alpha: one-way time of a tiny message
  int links_per_peer = 1;            // parallel links between two chips

  double PeerBandwidth() const { return bandwidth_bytes_per_s * links_per_peer; }
  bool operator==(const LinkSpec&) const = default;
};

struct ChipSpec {
  std::string name;          // e.g. "groq-lpu"; free text
  int64_t memory_bytes = 0;  // capacity for weights, KV cache, buffers
  double memory_bandwidth_bytes_per_s = 0;
  // Peak FLOP/s per element type of the multiplication; 0 = no native unit for
  // that type. A missing type is computed in f32 (widened), at the f32 rate.
  std::array<double, kNumComputeTypes> peak_flops{};
  double op_overhead_s = 0;  // fixed cost per operator launch
  int links_per_chip = 0;    // physical chip-to-chip links; 0 = not limited
  // True when the figures above are those of a whole node shared by the chips
  // placed on it (ranks simulated on one host): each chip then gets memory,
  // bandwidth and FLOP/s divided by the number of chips on its node.
  bool shared_by_node = false;
  // With shared_by_node: the hardware threads (cores) the node's figures were
  // measured with, and the read bandwidth measured with fewer threads
  // (threads -> bytes/s; `lockstep calibrate` records 1, 2, 4, ... cores).
  // A rank that runs ClusterSpec::threads_per_chip threads cannot use more of
  // the node than those threads reach: one thread streams ~55% of what two do.
  // 0 / empty: unknown, the busy chips split the node's figures evenly.
  int cores = 0;
  std::map<int, double> memory_bandwidth_by_threads;
  std::string source;  // where the figures come from (free text)
  // The chip's native types, which a plan uses when the request gives none
  // (`lockstep plan` without --activation-type / --weight-type): the type of
  // activations, KV cache and messages, and the weight types in order of
  // preference (the first that fits is taken). Unset: derived from
  // peak_flops (DefaultActivationType, DefaultWeightTypes).
  std::optional<ElementType> activation_type;
  std::vector<ElementType> weight_types;
  // What the kernels reach, measured by `lockstep calibrate` (optional; with
  // shared_by_node, for the node's threads): the matmul rate against the
  // token count of a call, weight type -> threads -> tokens -> FLOP/s (2 per
  // multiply-add), with the weights streamed from memory as in a forward
  // pass -- so it includes how far the weight stream and the FMAs overlap;
  // and the attention kernel's rate, threads -> FLOP/s as the cost model
  // counts attention flops. When present, the cost model times matmuls and
  // attention with them instead of peak_flops (BusyChipMatmulFlops).
  std::map<ElementType, std::map<int, std::map<int64_t, double>>> matmul_flops;
  // The same for bf16 weights under `--compute bf16` (activations rounded to
  // bf16, bf16 dot products: other kernels, other rates), threads -> tokens
  // -> FLOP/s. Empty: such plans use matmul_flops' bf16 table.
  std::map<int, std::map<int64_t, double>> bf16_compute_matmul_flops;
  std::map<int, double> attention_flops;
  // The attention rate of a decode step (each query the newest token of its
  // sequence, reading that sequence's keys from memory), threads -> FLOP/s
  // as the cost model counts them. Empty: decode passes use attention_flops.
  std::map<int, double> decode_attention_flops;
  // With shared_by_node and cores: what chips working at the same time cost
  // each other (shared memory bus, last-level cache, clock). tokens -> the
  // rate of a one-thread matmul call of that many tokens while every other
  // core of the node runs one too, as a fraction of its rate alone
  // (`lockstep calibrate` measures it with bf16 weights). Empty: 1.
  std::map<int64_t, double> matmul_concurrency;
  // The same factor for other weight types, measured with their own kernels
  // (int8 dot products stress a core otherwise than bf16's widening FMAs):
  // weight type -> tokens -> factor. A type without one uses
  // matmul_concurrency.
  std::map<ElementType, std::map<int64_t, double>> matmul_concurrency_by_type;

  // The rate for multiplications in type t: peak_flops[t], else peak_flops[f32].
  double PeakFlops(ElementType t) const;
  // activation_type, else f32 when the chip has an f32 rate, else the first of
  // bf16, f16 with a rate (else f32: computed at the f32 rate of 0, which
  // CostModel::CheckRates refuses with a message naming the field).
  ElementType DefaultActivationType() const;
  // weight_types, else bf16, f16 and f32 where PeakFlops gives them a rate
  // (their own or f32's), then int8 if it has a rate of its own.
  std::vector<ElementType> DefaultWeightTypes() const;
  bool operator==(const ChipSpec&) const = default;
};

struct ClusterSpec {
  int num_chips = 0;
  int chips_per_node = 1;
  ChipSpec chip;
  LinkSpec intra_node_link;
  LinkSpec inter_node_link;
  // The transport's allreduce switches from recursive doubling to
  // reduce-scatter + allgather at this message size (bytes). Must match what
  // transport/ runs; `lockstep calibrate` records it.
  int64_t allreduce_large_min_bytes = 64 * 1024;
  // Compute threads each chip (MPI rank) runs: `lockstep run --threads`.
  // Used with ChipSpec::shared_by_node and ChipSpec::cores; 0 = unknown.
  int threads_per_chip = 0;

  // Positive counts and rates; links_per_chip respected inside a node. The
  // message names the field, e.g. "field 'chip.memory_bytes' must be positive".
  Status Validate() const;

  int NodeOf(int rank) const { return rank / chips_per_node; }
  int num_nodes() const { return (num_chips + chips_per_node - 1) / chips_per_node; }
  bool SameNode(int a, int b) const { return NodeOf(a) == NodeOf(b); }
  const LinkSpec& Link(int a, int b) const {
    return SameNode(a, b) ? intra_node_link : inter_node_link;
  }

  // Per-chip figures after node sharing (ChipSpec::shared_by_node), when
  // every chip of a (full) node works at once.
  int64_t ChipMemoryBytes() const;
  double ChipMemoryBandwidth() const;
  double ChipPeakFlops(ElementType t) const;
  // The same when only `busy` chips of a node work at once (the others wait
  // for their turn in the pipeline). With ChipSpec::cores and
  // threads_per_chip known, the busy chips run min(busy x threads_per_chip,
  // cores) threads, which get the bandwidth measured for that many threads
  // (interpolated in ChipSpec::memory_bandwidth_by_threads) and that share of
  // the FLOP/s; the busy chips split it evenly.
  double BusyChipMemoryBandwidth(int busy) const;
  double BusyChipPeakFlops(ElementType t, int busy) const;
  // Threads working on a node when `busy` chips do (0 = unknown).
  int BusyThreads(int busy) const;
  // The calibrated rate of one of `busy` chips for a matmul call of `tokens`
  // tokens with `weight_type` weights: ChipSpec::matmul_flops for that type
  // (f16 and bf16 stand in for each other, then f32), at `tokens` (linear in
  // log2(tokens) between the measured counts, the end values outside them).
  // With shared_by_node, cores and threads_per_chip known, a chip runs its
  // own threads on cores of its own: the table at threads_per_chip threads
  // (linear between the measured thread counts, through 0), times the
  // matmul_concurrency factor at `tokens` scaled linearly by how many other
  // cores the busy chips keep busy (all cores-1 others: the full factor),
  // times cores / (busy x threads_per_chip) when the busy chips ask for more
  // threads than the node has cores. (The memory share of those chips is
  // the cost model's memory term: BusyChipMemoryBandwidth.) With the threads
  // unknown: the table's largest thread count divided among the busy chips.
  // 0 without a table. `bf16_compute`: bf16_compute_matmul_flops when it
  // has a table.
  double BusyChipMatmulFlops(ElementType weight_type, int64_t tokens, int busy,
                             bool bf16_compute = false) const;
  // The same for ChipSpec::attention_flops (0 without one), without the
  // concurrency factor (measured for matmuls only).
  // `decode`: decode_attention_flops when it has a table.
  double BusyChipAttentionFlops(int busy, bool decode = false) const;
  // The node's read bandwidth with `threads` threads (1 <= threads <= cores):
  // memory_bandwidth_by_threads interpolated linearly between its points,
  // through 0 below the first; memory_bandwidth_bytes_per_s at `cores`.
  double NodeBandwidthWithThreads(int threads) const;
  // shared_by_node with cores and threads_per_chip known: each chip runs its
  // own threads on cores of its own (BusyChipMatmulFlops).
  bool ChipsHaveOwnThreads() const;
  // `by_threads` (threads -> rate of the node alone) for one of `busy` such
  // chips: see BusyChipMatmulFlops; `concurrency` the factor with every
  // other core busy.
  double OwnThreadsRate(const std::map<int, double>& by_threads, int busy,
                        double concurrency) const;

  bool operator==(const ClusterSpec&) const = default;
};

// JSON <-> ClusterSpec. Parsing rejects unknown fields (a typo is an error, not
// a silent default) and names `source` and the field in every message.
Result<ClusterSpec> ClusterSpecFromJson(const nlohmann::json& json, std::string_view source);
Result<ClusterSpec> LoadClusterSpecFile(const std::string& path);
nlohmann::json ClusterSpecToJson(const ClusterSpec& spec);
Status SaveClusterSpecFile(const ClusterSpec& spec, const std::string& path);

}  // namespace lockstep::partitioner
