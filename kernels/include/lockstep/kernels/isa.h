// Instruction-set selection for the kernels.
//
// Every kernel exists in three builds: portable scalar C++ (std::fma), AVX2+FMA
// (+F16C), and AVX-512 (F/BW/VL/DQ). All three produce the same bits; the
// choice only changes speed. Callers pass the Isa explicitly, so a test can run
// all three side by side in one process.
#pragma once

#include <string_view>

#include "lockstep/base/status.h"

namespace lockstep::kernels {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

std::string_view IsaName(Isa isa);            // "scalar", "avx2", "avx512"
Result<Isa> ParseIsa(std::string_view name);  // the names above, or "auto" = BestIsa()
bool IsaSupported(Isa isa);                   // this CPU (and OS) can run it
Isa BestIsa();  // fastest supported; the environment variable LOCKSTEP_ISA caps it

}  // namespace lockstep::kernels
