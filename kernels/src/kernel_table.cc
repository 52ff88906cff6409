#include "kernel_table_dispatch.h"
#include "lockstep/base/check.h"

namespace lockstep::kernels::internal {

const KernelTable& KernelsFor(Isa isa) {
  // Running an AVX-512 table on a CPU without AVX-512 would die with SIGILL
  // somewhere deep in a kernel; fail here with a clear message instead.
  LOCKSTEP_CHECK(IsaSupported(isa), "instruction set {} is not supported by this CPU",
                 IsaName(isa));
  switch (isa) {
    case Isa::kScalar:
      return ScalarKernelTable();
    case Isa::kAvx2:
      return Avx2KernelTable();
    case Isa::kAvx512:
      return Avx512KernelTable();
  }
  LOCKSTEP_CHECK(false, "unknown Isa value {}", static_cast<int>(isa));
  return ScalarKernelTable();
}

}  // namespace lockstep::kernels::internal
