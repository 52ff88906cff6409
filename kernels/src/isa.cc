#include "lockstep/kernels/isa.h"

#include <cpuid.h>

#include <algorithm>
#include <cstdlib>

namespace lockstep::kernels {

std::string_view IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

Result<Isa> ParseIsa(std::string_view name) {
  if (name == "auto") return BestIsa();
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (name == IsaName(isa)) {
      if (!IsaSupported(isa)) {
        return InvalidArgument("instruction set '{}' is not supported by this CPU", name);
      }
      return isa;
    }
  }
  return InvalidArgument("unknown instruction set '{}' (expected auto, avx512, avx2 or scalar)",
                         name);
}

namespace {

// F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports does
// not know "f16c" (clang 14, the fuzz preset), gcc's does; this reads the
// same bit for both.
// Read once: CPUID traps to the hypervisor under a VM (microseconds), and
// IsaSupported runs on every kernel call.
bool CpuHasF16c() {
  static const bool has = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
    return (ecx & bit_F16C) != 0;
  }();
  return has;
}

}  // namespace

bool IsaSupported(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && CpuHasF16c();
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("fma") && CpuHasF16c();
  }
  return false;
}

Isa BestIsa() {
  Isa best = Isa::kScalar;
  if (IsaSupported(Isa::kAvx2)) best = Isa::kAvx2;
  if (IsaSupported(Isa::kAvx512)) best = Isa::kAvx512;
  if (const char* cap = std::getenv("LOCKSTEP_ISA"); cap != nullptr) {
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      if (IsaName(isa) == cap) best = std::min(best, isa);
    }
  }
  return best;
}

}  // namespace lockstep::kernels
