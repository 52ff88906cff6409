#include "lockstep/kernels/isa.h"

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

bool IsaSupported(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
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
