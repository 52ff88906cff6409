#!/usr/bin/env bash
# The sanitizer and fuzz stage of `./launch/setup.sh --test` (what CI runs;
# docs/reliability.md, "Sanitizers"):
#
#   1. asan preset (clang, ASan + UBSan, -O1 -g1, the libFuzzer targets
#      built in the same tree): the unit and multi-rank tests;
#   2. fuzz: every fuzz target of that build for its bounded number of
#      mutations (tests/fuzz/README.md);
#   3. tsan preset (clang, ThreadSanitizer): the local transport's tests
#      (chips as threads).
#
# What runs under the sanitizers is trimmed to fit CI's time (the list
# below says why each exclusion loses no checked code path), never what is
# checked: every test that runs treats a sanitizer report as a failure.
#
#   ./launch/sanitizers.sh [--jobs N] [--only asan|fuzz|tsan]
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc)
only=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --jobs) jobs="$2"; shift ;;
    --only) only="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "sanitizers.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

stage() {
  [[ -z "$only" || "$only" == "$1" ]]
}
timed() {
  local start=$SECONDS
  "$@"
  echo "sanitizers: '$*' took $((SECONDS - start)) s"
}

# Under ASan, tests that only repeat code paths other tests already run
# under it, or that test packaging rather than lockstep's code (the release
# suite before this stage runs every one of them, bits included):
#   transport_*_np8, transport_ucx_*_np3, the pml-ucx np4 variants: the same
#     collectives as np2 and np4 (np3 is the non-power-of-two case of the MPI
#     backend: kept for mpi; pml ucx keeps its np2);
#   distributed_* over mpirun, and the family and quantized splits on local
#     chips: every split but tp 2 x pp 2 (plus tp 4 x pp 2 over MPI) -- a
#     split with both tp groups and pipeline stages runs the tp collectives,
#     the stage streams and the 1/tp slices; the other splits run the same
#     code with other counts (the per-split bits are the release suite's);
#   launch_install, launch_spack_recipe: the installed tree and the Spack
#     recipe (packaging; no lockstep code beyond the release build's);
#   launch_slurm, launch_netns: Slurm and network namespaces around the
#     same `lockstep run` the distributed tests run;
#   launch_*bench*, launch_scaling_harness, launch_scale_sweep: benchmark
#     harnesses;
#   convert_memory, quantize_memory: they measure peak RSS, which ASan's
#     quarantine of freed memory and its shadow memory inflate by design.
other_splits='tp(1_pp1|2_pp1|4_pp1|8_pp1|1_pp2|1_pp4|2_pp4)'
asan_excluded="transport_(mpi|ucx_sm|ucx_tcp)_np8|transport_ucx_(sm|tcp)_np3|transport_(mpi|ucx_sm)_pmlucx_np4"
asan_excluded+="|distributed_(mpi|ucx_sm)_${other_splits}\$|distributed_ucx_sm_tp4_pp2\$"
asan_excluded+="|distributed_mpi_pmlucx_tp(2_pp1|4_pp2)\$|distributed_(mpi|ucx)_q[48]_0_tp(4_pp1|8_pp1|2_pp4)\$"
asan_excluded+="|FamilyDistributedLocalTest\\..*_(${other_splits}|tp4_pp2)\$"
asan_excluded+="|DistributedModeTest\\..*_(${other_splits}|tp4_pp2)\$"
asan_excluded+="|launch_install|launch_spack_recipe|launch_slurm|launch_netns|bench|scaling|scale_sweep"
asan_excluded+="|convert_memory|quantize_memory"

# One clang build serves the asan tests and the fuzz runs (the fuzz stage
# builds it too when run alone): clang at -O1 -g1 compiles this tree about
# 3x faster than gcc at -O2 -g under ASan + UBSan (docs/reliability.md).
asan_built=0
build_asan() {
  if [[ $asan_built -eq 0 ]]; then
    timed cmake --preset asan
    timed cmake --build --preset asan -j "$jobs"
    asan_built=1
  fi
}

if stage asan; then
  build_asan
  # The exclusions are matched here (bash ERE) and the rest passed to ctest
  # by number: CMake's regex engine takes at most 10 groups.
  mapfile -t numbers < <(ctest --preset asan -N -L 'unit|mpi' |
    sed -nE 's/^ *Test +#([0-9]+): ([^ ]+).*/\1 \2/p' | grep -vE "^[0-9]+ .*($asan_excluded)" | cut -d' ' -f1)
  echo "sanitizers: ${#numbers[@]} unit and mpi tests under ASan + UBSan"
  timed ctest --preset asan -j 2 -I "0,0,0,$(IFS=,; echo "${numbers[*]}")"
fi

if stage fuzz; then
  build_asan
  timed ctest --preset fuzz -j 2
fi

# ThreadSanitizer: the local transport, the code with threads and
# hand-written synchronisation of its own (chips as threads: streams, wake
# signals, collectives, errors and waits). The engine's and local jobs'
# threads are oneTBB's: Debian's libtbb is not built with TSan, so TSan
# cannot see the ordering inside TBB's task scheduler and reports every
# parallel_for body against TBB's reuse of its task memory (memset in
# libtbb.so against the body's writes; docs/reliability.md). Those tests
# run under ASan above, not here.
if stage tsan; then
  timed cmake --preset tsan
  timed cmake --build --preset tsan -j "$jobs" --target transport_local_test
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    timed build/tsan/tests/transport/transport_local_test --gtest_brief=1
fi
echo "sanitizers: the stage took $SECONDS s"
