#!/usr/bin/env bash
# The predicted-vs-measured harness (benchmarks/distributed/distributed_bench)
# runs and prints a comparison row for each scenario. Timings are not
# checked: only that the table has a measured and a predicted figure and
# their ratio.
#
#   distributed_bench_test.sh LOCKSTEP BENCH MPIEXEC [MPIEXEC FLAGS...]
set -uo pipefail
lockstep="$1"
bench="$2"
shift 2
mpiexec=("$@")
work=$(mktemp -d "${TMPDIR:-/tmp}/lockstep_dbench_XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
"$lockstep" synth --preset tiny --dtype bf16 --seed 1 --output tiny.h5 >/dev/null || exit 1
timeout 120 "${mpiexec[@]}" -n 2 "$bench" --model tiny.h5 --tp 1 --pp 2 --scenarios decode1,job64 \
  --decode-tokens 6 --scratch "$work/scratch" >out.txt 2>err.txt
code=$?
cat out.txt
[[ $code -eq 0 ]] || { echo "FAIL: exit $code: $(cat err.txt)"; exit 1; }
# decode1: tp pp scenario order ms/token pred-ms ratio ...: numbers, ratio > 0.
awk '$3 == "decode1" && $1 == 1 && $2 == 2 && $5 > 0 && $6 > 0 && $7 > 0 { found = 1 }
     END { exit !found }' out.txt || { echo "FAIL: no decode1 row with measured, predicted and ratio"; exit 1; }
# Beside the measured shares the predicted ones (pcoll%, pwait%): a 2-stage
# pipeline at batch 1 has one stage busy at a time (about half idle), and no
# tp collective.
awk '$3 == "decode1" && $16 == 0 && $17 > 20 && $17 < 80 { found = 1 } END { exit !found }' out.txt ||
  { echo "FAIL: the decode1 row lacks the predicted shares (pcoll% 0, pwait% near 50)"; exit 1; }
grep -qE '^1 +2 +job64 ' out.txt || { echo "FAIL: no job64 row"; exit 1; }
echo "ok"
