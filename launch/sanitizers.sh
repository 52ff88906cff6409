#!/usr/bin/env bash
# The sanitizer and fuzz stage of `./launch/setup.sh --test` (what CI runs;
# docs/reliability.md, "Sanitizers in CI"):
#
#   1. asan preset (clang, ASan + UBSan, -O1 -g1, the libFuzzer targets
#      built in the same tree): the unit and multi-rank tests;
#   2. fuzz: every fuzz target of that build for its bounded number of
#      mutations (tests/fuzz/README.md);
#   3. tsan preset (clang, ThreadSanitizer): the local transport's and the
#      engine's thread tests.
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
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
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
# under it, or that test packaging rather than lockstep's code:
#   transport_*_np8, transport_*_np3: the same collectives as np2 and np4
#     (np3 is the non-power-of-two case of the MPI backend: kept for mpi);
#   launch_install, launch_spack_recipe: the installed tree and the Spack
#     recipe (packaging; no lockstep code beyond the release build's);
#   launch_slurm, launch_netns: Slurm and network namespaces around the
#     same `lockstep run` the distributed tests run;
#   launch_*bench*, launch_scaling_harness: benchmark harnesses.
asan_excluded='transport_(mpi|ucx_sm|ucx_tcp)_np8|transport_ucx_(sm|tcp)_np3|launch_install|launch_spack_recipe|launch_slurm|launch_netns|bench|scaling'

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
  timed ctest --preset asan -j 2 -L 'unit|mpi' -E "$asan_excluded"
fi

if stage fuzz; then
  build_asan
  timed ctest --preset fuzz -j 2
fi

# ThreadSanitizer: the code with threads of its own -- the local transport
# (chips as threads) and the engine (oneTBB arenas, threads of a step).
tsan_targets=(transport_local_test engine_test distributed_local_test)
tsan_tests='^(LocalTransport|LocalCollectives|LocalFabric|Engine|Determinism|Models/Determinism|DistributedLocal)'
if stage tsan; then
  timed cmake --preset tsan
  timed cmake --build --preset tsan -j "$jobs" --target "${tsan_targets[@]}"
  timed ctest --preset tsan -j 2 -R "$tsan_tests"
fi
echo "sanitizers: the stage took $SECONDS s"
