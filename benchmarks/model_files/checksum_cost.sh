#!/usr/bin/env bash
# What checksums cost at load time (benchmarks/RESULTS.md, "Model file
# checksums"): a model written by `lockstep synth` (Fletcher32 on every
# chunk, a sha256 per tensor, the manifest; reads check all of them and that
# every value is finite) against the same model without any checksum
# (`h5repack -f NONE`, then the digests removed with h5py: reads then check
# finiteness only). model_read_benchmark reads both in alternating passes,
# on one process (whole tensors: chunk checksums + digests) and on two ranks
# (tp = 2 shards: chunk checksums only).
#
#   checksum_cost.sh BUILD_DIR PRESET [REPEATS]     e.g. build/release llama-110m 5
set -euo pipefail
build=$1 preset=$2 repeats=${3:-5}
work=${TMPDIR:-/tmp}/lockstep-checksum-cost
mkdir -p "$work"
lockstep="$build/launch/lockstep"
bench="$build/benchmarks/model_files/model_read_benchmark"
sums="$work/$preset-bf16.h5"
plain="$work/$preset-bf16-plain.h5"
[[ -e "$sums" ]] || "$lockstep" synth --preset "$preset" --dtype bf16 --seed 1 --output "$sums"
if [[ ! -e "$plain" ]]; then
  h5repack -f NONE "$sums" "$plain"
  /usr/bin/python3 - "$plain" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    del f.attrs["manifest_sha256"]
    f.visititems(lambda n, o: o.attrs.__delitem__("sha256") if "sha256" in o.attrs else None)
PY
fi
"$lockstep" verify "$plain" --no-progress 2>/dev/null | sed 's/^/plain file: /'
lscpu | grep "Model name"
uptime
"$bench" "$sums" "$repeats" "$plain"
mpiexec -n 2 --oversubscribe --allow-run-as-root --bind-to none "$bench" "$sums" "$repeats" "$plain"
