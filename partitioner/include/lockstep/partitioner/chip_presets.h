// Named chip presets: a ClusterSpec template for a kind of chip, its node and
// its links. docs/partitioner.md ("Chip presets") cites the source of every
// figure and says which ones are assumptions.
//
//   host         this machine, one rank per chip, all ranks on one node sharing
//                its memory, bandwidth and cores (shared_by_node). Uncalibrated
//                defaults measured on a 2-core Debian 12 VM (docs/partitioner.md,
//                "Chip presets"); `lockstep
//                calibrate` measures the real figures and writes a spec file
//                that `lockstep plan --chip host` prefers.
//   groq-lpu     Groq LPU (TSP v1): 220 MiB SRAM at 80 TB/s, 188 TFLOP/s f16,
//                750 TOP/s int8, 8 chips per node fully connected, 16 links of
//                14 GB/s per direction per chip.
//   h100-nvlink  NVIDIA H100 SXM5: 80 GB HBM3 at 3.35 TB/s, 989 TFLOP/s bf16
//                dense, NVLink/NVSwitch 450 GB/s per direction inside a node of
//                8, InfiniBand NDR 400 Gb/s between nodes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lockstep/partitioner/cluster_spec.h"

namespace lockstep::partitioner {

// The preset for `num_chips` chips. chips_per_node is the preset's node size
// (8 for groq-lpu and h100-nvlink; num_chips for host, which puts every rank
// on this one machine). The error lists the known names.
Result<ClusterSpec> ChipPreset(std::string_view name, int num_chips);
std::vector<std::string> ChipPresetNames();

}  // namespace lockstep::partitioner
