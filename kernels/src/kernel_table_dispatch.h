// Picks the KernelTable of an Isa. For the portable (baseline-compiled)
// translation units only; the per-ISA units include kernel_table.h alone.
#pragma once

#include "kernel_table.h"
#include "lockstep/kernels/isa.h"

namespace lockstep::kernels::internal {

// The table of `isa`. Checks (aborts) that the CPU supports it.
const KernelTable& KernelsFor(Isa isa);

}  // namespace lockstep::kernels::internal
