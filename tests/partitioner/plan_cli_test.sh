#!/bin/sh
# Command-line checks of `lockstep plan`: exit codes and messages.
#   plan_cli_test.sh /path/to/lockstep /scratch/dir
set -u
lockstep="$1"
dir="$2"
mkdir -p "$dir"
failures=0

# expect CODE PATTERN args...: runs lockstep plan, checks the exit code and
# that stdout+stderr contain PATTERN (grep -E).
expect() {
  code="$1"; pattern="$2"; shift 2
  out=$("$lockstep" plan "$@" 2>&1)
  got=$?
  if [ "$got" -ne "$code" ]; then
    echo "FAIL: lockstep plan $*: exit $got, expected $code"; echo "$out"; failures=$((failures + 1))
  elif ! printf '%s\n' "$out" | grep -Eq -- "$pattern"; then
    echo "FAIL: lockstep plan $*: output lacks /$pattern/"; echo "$out"; failures=$((failures + 1))
  else
    echo "ok: lockstep plan $*"
  fi
}

# The 70B / 576-chip question, with the published figure beside the prediction.
expect 0 'published +300\.0 tokens/s per user' --preset llama-2-70b --chip groq-lpu --chips 576 \
  --weight-type int8 --activation-type f16 --output "$dir/groq70b.json"
expect 0 'with f16 weights the model needs at least [0-9]+ chips' --preset llama-2-70b \
  --chip groq-lpu --chips 576 --weight-type int8 --activation-type f16
[ -s "$dir/groq70b.json" ] || { echo "FAIL: no plan written"; failures=$((failures + 1)); }
# A manual plan from a config.json and a cluster file.
cat > "$dir/config.json" <<'JSON'
{"model_type": "llama", "vocab_size": 500, "hidden_size": 128, "intermediate_size": 352,
 "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 2,
 "max_position_embeddings": 512}
JSON
cat > "$dir/cluster.json" <<'JSON'
{"num_chips": 4, "chips_per_node": 2,
 "chip": {"name": "cpu", "memory_bytes": 1000000000, "memory_bandwidth_bytes_per_s": 1e10,
          "peak_flops": {"f32": 1e11}},
 "intra_node_link": {"bandwidth_bytes_per_s": 1e10, "latency_s": 1e-6},
 "inter_node_link": {"bandwidth_bytes_per_s": 1e9, "latency_s": 1e-5}}
JSON
expect 0 'tp 2 x pp 2, ' --config "$dir/config.json" --cluster "$dir/cluster.json" --tp 2 --pp 2 \
  --prompt-length 16 --generate 8
expect 0 '^ +3 +1 +1 +1 ' --config "$dir/config.json" --cluster "$dir/cluster.json" --tp 2 --pp 2 \
  --prompt-length 16 --generate 8
# From a model file: the config and the weight dtype come from the file.
if "$lockstep" synth --preset tiny --dtype f16 --output "$dir/tiny.h5" > /dev/null 2>&1; then
  expect 0 'weights f16, ' --model "$dir/tiny.h5" --chip host --chips 2 --tp 2 --pp 1 \
    --prompt-length 16 --generate 8
  expect 2 '--weight-type bf16 differs from the f16 weights stored in' --model "$dir/tiny.h5" \
    --chip host --chips 2 --weight-type bf16
else
  echo "FAIL: lockstep synth could not write a model file"; failures=$((failures + 1))
fi
expect 1 'missing.h5: model file not found' --model "$dir/missing.h5" --chip host --chips 2
# Errors: one line; a bad command line exits 2, a plan that cannot be made
# or a bad file exits 1.
expect 2 '^lockstep: error: tp 3 is not a power of two' --preset tiny --chip host --chips 3 --tp 3 --pp 1
expect 2 'tp 2 x pp 2 = 4 chips but the cluster has 8' --preset tiny --chip host --chips 8 --tp 2 --pp 2
expect 1 'does not fit on 8 h100-nvlink chips.*the fewest h100-nvlink chips that hold it: 11' \
  --preset llama-3.1-405b --chip h100-nvlink --chips 8 --weight-type bf16
expect 2 "unknown chip preset 'tpu'" --preset tiny --chip tpu --chips 2
expect 2 "unknown model preset 'llama-9'" --preset llama-9 --chip host --chips 2
expect 2 "give the model with exactly one of" --chip host --chips 2
expect 2 "needs --chips N" --preset tiny --chip host
expect 1 "config.json: field 'num_chips' is missing" --preset tiny --cluster "$dir/config.json"
expect 2 "unknown objective 'fast'" --preset tiny --chip host --chips 2 --objective fast
# Chip presets carry their native types: no type flags plan Llama-2-70B on
# 576 LPUs with f16 activations and int8 weights, saying why not f16 weights.
expect 0 'weights int8: no --weight-type was given' --preset llama-2-70b --chip groq-lpu --chips 576
expect 0 'f16 weights \(the chip.s first choice\): model .llama-2-70b. with f16 weights does not fit' \
  --preset llama-2-70b --chip groq-lpu --chips 576
expect 0 'weights int8, activations and KV cache f16' --preset llama-2-70b --chip groq-lpu --chips 576
expect 0 'weights bf16, activations and KV cache bf16' --preset llama-3-8b --chip h100-nvlink --chips 1
expect 0 'weights bf16, activations and KV cache f32' --preset tiny --chip host --chips 1
# Wording: one chip, one rank, a model named after its config file (a
# config.json after its folder, as Hugging Face checkpoints are).
expect 0 '^plan: plan_cli \(' --config "$dir/config.json" --chip host --chips 1
expect 0 'on 1 host chip \(1 per node, 1 node\)' --preset tiny --chip host --chips 1
expect 0 '^ +0 +0-3 \+emb \+head +0 ' --preset tiny --chip host --chips 1
# Threads per chip (ranks sharing the host): one busy rank of one thread
# streams less than one of two threads, so its decode is predicted slower.
expect 0 'decode latency' --preset tinyllama-1.1b --chip host --chips 1 --threads-per-chip 1 \
  --output "$dir/threads1.json"
expect 0 'decode latency' --preset tinyllama-1.1b --chip host --chips 1 --threads-per-chip 2 \
  --output "$dir/threads2.json"
latency() { grep -o '"decode_latency_per_token_s": *[0-9.e+-]*' "$1" | head -1 | sed 's/.*: *//'; }
if ! grep -q '"threads_per_chip": 2' "$dir/threads2.json"; then
  echo "FAIL: the plan's cluster lacks threads_per_chip"; failures=$((failures + 1))
elif ! awk -v a="$(latency "$dir/threads1.json")" -v b="$(latency "$dir/threads2.json")" \
    'BEGIN { exit !(a > 1.5 * b) }'; then
  echo "FAIL: 1 thread per chip should be predicted >1.5x slower than 2"; failures=$((failures + 1))
fi
expect 2 "--threads-per-chip: must be a whole number from 0 to 4096, got -1" --preset tiny \
  --chip host --chips 1 --threads-per-chip -1
expect 2 "--chips: must be a whole number from 1 to 1048576, got 100000000" --preset tiny \
  --chip host --chips 100000000
# A bad command line: exit 2.
expect 2 'tp' --preset tiny --chip host --chips 2 --tp x

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
