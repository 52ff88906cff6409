#!/usr/bin/env bash
# Every tp x pp configuration of distributed_bench on this machine, one after
# the other, in one run (benchmarks/RESULTS.md, ## distributed):
#
#   benchmarks/distributed/run_matrix.sh BUILD_DIR [MODEL_PRESET] [DTYPE]
#
# Synthesizes the model (default tinyllama-1.1b, bf16) into $SCRATCH (default
# /tmp/lockstep_bench), calibrates the host into $SCRATCH/host.json once
# (`lockstep calibrate`, ranks' links included) and points the plans at it
# with LOCKSTEP_HOST_SPEC. Then, under mpirun (--oversubscribe: 4 and 8
# ranks share the machine's cores):
#   the anchor (read bandwidth, 1 and 2 threads) and tp 1 x pp 1,
#   tp 2, pp 2 (real ranks, one thread each), tp 2 x pp 2, tp 4 x pp 2,
#   1 and 2 ranks at batch 1 and 16 with the plain reduction order and
#   MPI_Allreduce, alternating with the canonical order ROUNDS (default 3)
#   times (determinism cost),
#   tp 2 loading with --model-io posix, mpiio and collective.
# CONFIGS="1x1 2x1", SCENARIOS=decode1 and DECODE_TOKENS=16 narrow the run.
set -euo pipefail
build="${1:?usage: run_matrix.sh BUILD_DIR [MODEL_PRESET] [DTYPE]}"
preset="${2:-tinyllama-1.1b}"
dtype="${3:-bf16}"
scratch="${SCRATCH:-/tmp/lockstep_bench}"
configs="${CONFIGS:-1x1 2x1 1x2 2x2 4x2}"
scenarios="${SCENARIOS:-decode1,decode16,job64}"
decode_tokens="${DECODE_TOKENS:-48}"
lockstep="$build/launch/lockstep"
bench="$build/benchmarks/distributed/distributed_bench"
mpi=(mpirun --oversubscribe --allow-run-as-root --bind-to none)
mkdir -p "$scratch"
model="$scratch/$preset-$dtype.h5"
[[ -f "$model" ]] || "$lockstep" synth --preset "$preset" --dtype "$dtype" --seed 1 --output "$model"
export LOCKSTEP_HOST_SPEC="$scratch/host.json"
if [[ ! -f "$LOCKSTEP_HOST_SPEC" ]]; then
  "${mpi[@]}" -np 2 "$lockstep" calibrate --output "$LOCKSTEP_HOST_SPEC"
fi
echo "# $(date -u +%FT%TZ) $(uname -n), $(nproc) cores; model $preset $dtype; host spec $LOCKSTEP_HOST_SPEC"
first=1
for config in $configs; do
  tp=${config%x*}
  pp=${config#*x}
  np=$((tp * pp))
  anchor=()
  ((first)) && anchor=(--anchor)
  out=$("${mpi[@]}" -np "$np" "$bench" --model "$model" --tp "$tp" --pp "$pp" \
    --scenarios "$scenarios" --decode-tokens "$decode_tokens" "${anchor[@]}")
  if ((first)); then echo "$out"; else echo "$out" | grep -v '^tp '; fi
  first=0
done
if [[ " $configs " == *" 2x1 "* ]]; then
  # What determinism costs: the canonical order against the plain one (matmuls
  # in one FMA chain, MPI_Allreduce), alternating, $ROUNDS times each.
  echo "# determinism cost: decode1 and decode16, canonical and plain alternating, ${ROUNDS:-3} rounds"
  for ((round = 0; round < ${ROUNDS:-3}; ++round)); do
    for config in 1x1 2x1; do
      tp=${config%x*}
      for reduction in canonical plain; do
        "${mpi[@]}" -np "$tp" "$bench" --model "$model" --tp "$tp" --pp 1 \
          --scenarios decode1,decode16 --decode-tokens "$decode_tokens" --reduction "$reduction" |
          grep -v '^[t#]'
      done
    done
  done
  # How ranks read their shards: load time of tp 2 with each --model-io.
  echo "# model io: tp 2 load time (file in the page cache), posix / mpiio / collective"
  for io in posix mpiio collective; do
    "${mpi[@]}" -np 2 "$bench" --model "$model" --tp 2 --pp 1 --scenarios decode1 \
      --decode-tokens 4 --model-io "$io" | grep -v '^[t#]'
  done
fi
