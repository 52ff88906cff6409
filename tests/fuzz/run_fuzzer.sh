#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded number of mutations, starting from
# its seed corpus, writing nothing into the source tree. A crash, a leak of
# the process (OOM) or a hang fails the test and prints the input that
# caused it (base64): save it under tests/fuzz/regressions/<target>/ and fix
# the bug (README.md).
#
# The mutations come from a fixed random seed (LOCKSTEP_FUZZ_SEED, default
# 1), so a commit's fuzz test gives the same verdict on every run: CI fails
# on a change, never on a draw. LOCKSTEP_FUZZ_SEED=0 lets libFuzzer draw
# one (and print it) for exploring by hand.
#
#   run_fuzzer.sh FUZZER RUNS SEED_DIR [SEED_DIR...]
set -uo pipefail
fuzzer=$1 runs=$2
shift 2
work=$(mktemp -d "${TMPDIR:-/tmp}/lockstep_fuzz_XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
"$fuzzer" -seed="${LOCKSTEP_FUZZ_SEED:-1}" -runs="$runs" -max_len=65536 -timeout=20 -rss_limit_mb=3072 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/corpus" "$@" 2>"$work/log.txt"
code=$?
grep -E "^(INFO: Seed:|#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec|INFO: seed corpus)" \
  "$work/log.txt"
if [[ $code -ne 0 ]]; then
  tail -n 60 "$work/log.txt"
  for artifact in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
    [[ -e "$artifact" ]] || continue
    echo "fuzz: input that failed ($(basename "$artifact")), base64:"
    base64 -w 0 "$artifact"
    echo
  done
  exit 1
fi
