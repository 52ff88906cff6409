#!/usr/bin/env bash
# Rank 0's step time against the other ranks (benchmarks/RESULTS.md "## scale",
# issue 12 item 5): two builds, BEFORE and AFTER, run the same job alternately
# for ROUNDS rounds on 2 MPI ranks (tp 2, then pp 2) and print, per rank, the
# step loop's time per step and its split (from `--summary`): compute, tp
# collectives, pipeline waits and the rest -- on rank 0 the results'
# bookkeeping (before: text, write and fsync of each finished result inside
# the step loop; after: handing them to the writer thread). Every run's
# results are compared with a one-rank run (tokens and text).
#
#   rank0_step.sh BEFORE AFTER WORKDIR [ROUNDS] [REQUESTS]
#
# WORKDIR must be on the file system whose fsync is to be measured (not a
# tmpfs). The model: 2 layers, hidden 64, the llama SPM tokenizer of
# tests/data (vocabulary 32000), so every result has text; REQUESTS (default
# 256) text prompts of 4 to 8 generated tokens, max-batch 32: results finish
# in most steps, several per step.
set -euo pipefail

before=$1 after=$2 work=$3 rounds=${4:-3} requests=${5:-256}
here=$(cd "$(dirname "$0")" && pwd)
spm=$here/../../tests/data/tokenizers/ggml-vocab-llama-spm.gguf
mkdir -p "$work"
cd "$work"
mpiexec=(mpirun --oversubscribe --allow-run-as-root --bind-to none)

if [[ ! -f text.h5 ]]; then
  cat >config.json <<'EOF'
{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32000,
 "max_position_embeddings": 128}
EOF
  "$after" synth --config config.json --tokenizer "$spm" --dtype bf16 --seed 3 --output text.h5 \
    >/dev/null
fi
input=req$requests.jsonl
if [[ ! -f $input ]]; then
  python3 - "$requests" >"$input" <<'EOF'
import json, sys
words = ["Once", "upon", "a", "time", "the", "capital", "of", "France", "is", "Hello"]
for i in range(int(sys.argv[1])):
    prompt = " ".join(words[(i + j) % len(words)] for j in range(2 + i % 5))
    print(json.dumps({"custom_id": f"r{i}", "body": {"prompt": prompt, "max_tokens": 4 + i % 5,
                                                     "temperature": 0.8 if i % 2 else 0,
                                                     "seed": i}}))
EOF
fi
# No --hash-logits: hashing every logits row is tp rank 0's work and would
# hide what is measured here; the results (tokens and text) are compared.
run=(run --model text.h5 --input "$input" --no-progress --no-timings --threads 1 --max-batch 32)
"$after" "${run[@]}" --output one.jsonl --force
sort one.jsonl >one.sorted

report() {  # label summary.json
  python3 - "$1" "$2" <<'EOF'
import json, sys
label, path = sys.argv[1], sys.argv[2]
s = json.load(open(path))
for r in s["ranks"]:
    steps = max(r["steps"], 1)
    run, comp, coll, wait = r["run_s"], r["compute_s"], r["collective_s"], r["pipeline_wait_s"]
    rest = run - comp - coll - wait
    print(f"{label:>7} rank {r['rank']}: {steps} steps, {1e3 * run / steps:.3f} ms/step "
          f"(compute {1e3 * comp / steps:.3f}, tp collectives {1e3 * coll / steps:.3f}, "
          f"pipeline wait {1e3 * wait / steps:.3f}, rest {1e3 * rest / steps:.3f}"
          + (f", of it results {1e3 * r['results_s'] / steps:.3f}" if "results_s" in r else "")
          + ")")
print(f"{label:>7} job: {s['tokens']['generated']} tokens in {s['run_s']:.3f} s")
EOF
}

for split in "--tp 2" "--pp 2"; do
  echo "== $split, $requests requests, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  for ((round = 1; round <= rounds; ++round)); do
    for which in before after; do
      binary=$before
      [[ $which == after ]] && binary=$after
      # shellcheck disable=SC2086
      "${mpiexec[@]}" -n 2 "$binary" "${run[@]}" --output two.jsonl --force $split \
        --summary summary.json >/dev/null
      sort two.jsonl >two.sorted
      cmp -s two.sorted one.sorted || { echo "$which $split: results differ from one rank"; exit 1; }
      echo "round $round"
      report "$which" summary.json
    done
  done
done
