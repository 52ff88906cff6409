#!/usr/bin/env bash
# Start-up at scale (benchmarks/RESULTS.md "## scale"): one `lockstep run` of a
# synthesized 32-layer model (LAYERS=128 in the environment: the same width,
# 128 layers, for pp > 32) on N MPI ranks (mpirun --oversubscribe) or N
# local chips, with every rank's peak RSS measured from outside
# (/usr/bin/time -f %M around each rank, so that builds without the start-up
# report measure the same way), the job's wall time, and the leader's
# start-up and stage-to-stage lines when the build prints them. The results
# are checked against a one-rank run of the same binary (tokens and logits
# hashes).
#
#   startup_scale.sh LOCKSTEP WORKDIR mpi|local N TP PP [REQUESTS]
#
# WORKDIR keeps the model and the requests between runs (made on first use).
# TRANSPORT=ucx (environment, mpi mode) uses the ucx backend.
# SUMMARY=FILE (environment) also passes `--summary FILE` (builds that have it):
# the job's JSON summary, with every rank's start-up figures and the TTFTs.
# REQUESTS (default 8) sets how many requests the job runs; prompts of 5 to
# 26 tokens, 3 generated tokens each, greedy and sampled alternately.
set -euo pipefail

lockstep=$1 work=$2 mode=$3 n=$4 tp=$5 pp=$6 requests=${7:-8}
layers=${LAYERS:-32}
[[ $layers =~ ^[1-9][0-9]*$ ]] || { echo "startup_scale.sh: LAYERS=$layers is not a layer count" >&2; exit 2; }
summary=${SUMMARY:-}
[[ -z $summary || $summary == /* ]] || summary=$PWD/$summary
mkdir -p "$work"
cd "$work"

model=m$layers.h5
if [[ ! -f $model ]]; then
  cat >cfg$layers.json <<EOF
{"model_type": "llama", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": $layers,
 "num_attention_heads": 8, "num_key_value_heads": 8, "vocab_size": 512,
 "max_position_embeddings": 256}
EOF
  "$lockstep" synth --config cfg$layers.json --dtype bf16 --seed 1 --output "$model" >/dev/null
fi
input=req$requests.jsonl
if [[ ! -f $input ]]; then
  python3 - "$requests" >"$input" <<'EOF'
import json, sys
for i in range(int(sys.argv[1])):
    n = 5 + (i * 3) % 22
    prompt = [(i * 131 + j * 17 + 137) % 512 for j in range(n)]
    print(json.dumps({"id": f"r{i}", "prompt_tokens": prompt, "max_tokens": 3,
                      "temperature": 0.8 if i % 2 else 0, "seed": i}))
EOF
fi
one=one$requests.jsonl
[[ $layers == 32 ]] || one=one$requests-m$layers.jsonl
if [[ ! -f $one ]]; then
  "$lockstep" run --model "$model" --input "$input" --output "$one" --hash-logits --no-progress \
    --no-timings 2>/dev/null
fi

out=out-$mode-$n.jsonl
rss=rss-$mode-$n
rm -f "$out" "$rss".*
common=(run --model "$model" --input "$input" --output "$out" --hash-logits --no-timings
        --tp "$tp" --pp "$pp" --comm-timeout 600)
[[ -z $summary ]] || common+=(--summary "$summary")
# mpi mode: TRANSPORT=ucx runs the ucx backend (UCX_TLS=self,sm on one host).
[[ $mode == mpi && ${TRANSPORT:-mpi} == ucx ]] && common+=(--transport ucx)
start=$(date +%s%N)
if [[ $mode == mpi ]]; then
  mpirun -np "$n" --oversubscribe --allow-run-as-root --bind-to none \
    bash -c '/usr/bin/time -f %M -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' "$rss" "$lockstep" \
    "${common[@]}" 2>log-$mode-$n.txt
else
  /usr/bin/time -f %M -o "$rss.0" "$lockstep" "${common[@]}" --transport local --chips "$n" \
    2>log-$mode-$n.txt
fi
end=$(date +%s%N)

python3 - "$one" "$out" <<'EOF'
import json, sys
def load(p):
    return {r["id"]: (r["tokens"], r["logits_sha256"]) for r in map(json.loads, open(p))}
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a == b, "results differ from one rank"
EOF
python3 - "$rss" "$(((end - start) / 1000000))" "$mode" "$n" "$tp" "$pp" <<'EOF'
import glob, statistics, sys
prefix, ms, mode, n, tp, pp = sys.argv[1:]
kb = sorted(int(open(f).read().split()[-1]) for f in glob.glob(prefix + ".*"))
print(f"{mode} {n} (tp {tp} x pp {pp}): wall {int(ms) / 1000:.2f} s, same bits as one rank; "
      f"peak RSS per process min/median/max {kb[0] / 1024:.1f} / "
      f"{statistics.median(kb) / 1024:.1f} / {kb[-1] / 1024:.1f} MiB")
EOF
grep -E "start-up over|stage-to-stage|loaded .* in" log-$mode-$n.txt | sed 's/^/  /' || true
