#include "lockstep/partitioner/chip_presets.h"

namespace lockstep::partitioner {
namespace {

constexpr int Idx(ElementType t) {
  return static_cast<int>(t);
}

// Sources and assumptions: docs/partitioner.md, "Chip presets".
ClusterSpec Host() {
  ClusterSpec s;
  s.chip.name = "host";
  s.chip.memory_bytes = int64_t{16} << 30;            // assumption until calibrated
  s.chip.memory_bandwidth_bytes_per_s = 26.8e9;       // STREAM read, 2 threads (notes)
  s.chip.peak_flops[Idx(ElementType::kF32)] = 160e9;  // 2 cores x 2 FMA x 8 lanes x 2 x 2.5 GHz
  s.chip.op_overhead_s = 2e-6;                        // one oneTBB parallel_for per op
  s.chip.links_per_chip = 0;
  s.chip.shared_by_node = true;
  s.chip.cores = 2;
  s.chip.memory_bandwidth_by_threads = {{1, 14.5e9}};  // STREAM read, 1 thread (notes)
  // What the runtime executes: f32 activations; weights as checkpoints ship.
  s.chip.activation_type = ElementType::kF32;
  s.chip.weight_types = {ElementType::kBF16};
  s.chip.source = "uncalibrated defaults (docs/partitioner.md); run `lockstep calibrate`";
  s.intra_node_link = {10e9, 0.35e-6, 1};  // Open MPI shared memory, 2 ranks (notes)
  s.inter_node_link = {1.25e9, 20e-6, 1};  // assumption: 10 Gb/s Ethernet, TCP
  return s;
}

ClusterSpec GroqLpu() {
  ClusterSpec s;
  s.chips_per_node = 8;
  s.chip.name = "groq-lpu";
  s.chip.memory_bytes = int64_t{220} << 20;  // 220 MiB (~230 MB) SRAM
  s.chip.memory_bandwidth_bytes_per_s = 80e12;
  s.chip.peak_flops[Idx(ElementType::kF16)] = 188e12;
  s.chip.peak_flops[Idx(ElementType::kInt8)] = 750e12;
  // The MXM multiplies f16 and int8: f16 activations, f16 weights where
  // they fit in the SRAM, else int8.
  s.chip.activation_type = ElementType::kF16;
  s.chip.weight_types = {ElementType::kF16, ElementType::kInt8};
  s.chip.op_overhead_s = 0;  // statically scheduled: no launches
  s.chip.links_per_chip = 16;
  s.chip.source =
      "Groq public figures (ISCA 2020/2022 papers, Linley 2020, press 2024); link latencies are "
      "assumptions";
  s.intra_node_link = {14e9, 1e-6, 1};
  s.inter_node_link = {14e9, 2e-6, 1};
  return s;
}

ClusterSpec H100Nvlink() {
  ClusterSpec s;
  s.chips_per_node = 8;
  s.chip.name = "h100-nvlink";
  s.chip.memory_bytes = int64_t{80} * 1000 * 1000 * 1000;
  s.chip.memory_bandwidth_bytes_per_s = 3.35e12;
  s.chip.peak_flops[Idx(ElementType::kF32)] = 67e12;
  s.chip.peak_flops[Idx(ElementType::kF16)] = 989e12;
  s.chip.peak_flops[Idx(ElementType::kBF16)] = 989e12;
  s.chip.peak_flops[Idx(ElementType::kInt8)] = 1979e12;
  // Tensor cores: bf16 activations and weights, int8 weights if bf16 ones do
  // not fit.
  s.chip.activation_type = ElementType::kBF16;
  s.chip.weight_types = {ElementType::kBF16, ElementType::kInt8};
  s.chip.op_overhead_s = 4e-6;  // assumption: a CUDA kernel launch without graphs
  s.chip.links_per_chip = 0;    // NVSwitch: every peer at full NVLink bandwidth
  s.chip.source = "NVIDIA H100 SXM5 datasheet; latencies are assumptions";
  s.intra_node_link = {450e9, 2e-6, 1};  // NVLink 4: 900 GB/s total = 450 per direction
  s.inter_node_link = {50e9, 5e-6, 1};   // InfiniBand NDR 400 Gb/s per GPU
  return s;
}

struct Preset {
  std::string_view name;
  ClusterSpec (*make)();
};

constexpr Preset kPresets[] = {
    {"host", Host},
    {"groq-lpu", GroqLpu},
    {"h100-nvlink", H100Nvlink},
};

}  // namespace

Result<ClusterSpec> ChipPreset(std::string_view name, int num_chips) {
  for (const Preset& p : kPresets) {
    if (p.name != name) continue;
    ClusterSpec spec = p.make();
    spec.num_chips = num_chips;
    if (name == "host") spec.chips_per_node = std::max(num_chips, 1);
    LOCKSTEP_RETURN_IF_ERROR(spec.Validate().WithContext(fmt::format("chip preset '{}'", name)));
    return spec;
  }
  std::string names;
  for (const Preset& p : kPresets) names += (names.empty() ? "" : ", ") + std::string(p.name);
  return InvalidArgument("unknown chip preset '{}' (known: {})", name, names);
}

std::vector<std::string> ChipPresetNames() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.emplace_back(p.name);
  return names;
}

}  // namespace lockstep::partitioner
