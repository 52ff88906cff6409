#!/usr/bin/env bash
# The Llama-2-70B deployment on 576 Groq-like chips (8-bit weights: the plan
# `lockstep plan --preset llama-2-70b --chip groq-lpu --chips 576
# --weight-type int8` is tp 8 x pp 72), as a scale model: a small synthesized
# q8_0 model with Llama-2-70B's shape of parallelism (80 layers, grouped-query
# attention with one KV head per tp rank at tp 8) runs on 576 local chips as
# tp 8 x pp 72 and gives the one-rank tokens and logits hashes. (With q8_0's
# scales, 6.25% more bytes than int8, the real model plans as tp 16 x pp 36 on
# the same 576 chips; that plan is executable.)
#
#   quant_scale_test.sh LOCKSTEP
set -uo pipefail

lockstep="$1"
work=$(mktemp -d "${TMPDIR:-/tmp}/lockstep_scale_XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# The real model's plans: int8 (cost study) tp 8 x pp 72; q8_0 executable.
for type in int8 q8_0; do
  "$lockstep" plan --preset llama-2-70b --chip groq-lpu --chips 576 --weight-type $type \
    --activation-type f16 --output plan-$type.json >plan.txt 2>&1 || fail "plan: $(cat plan.txt)"
done
python3 - plan-int8.json plan-q8_0.json <<'EOF' || fail "the 70B plans are not as documented"
import json, sys
int8, q8 = (json.load(open(p)) for p in sys.argv[1:])
assert (int8["tp"], int8["pp"]) == (8, 72), (int8["tp"], int8["pp"])
assert int8["executable"] is False
assert q8["tp"] * q8["pp"] == 576 and q8["executable"] is True
assert q8["inputs"]["workload"]["weight_type"] == "q8_0"
print("llama-2-70b on 576 chips: int8 tp 8 x pp 72; q8_0 tp", q8["tp"], "x pp", q8["pp"])
EOF

# The scale model: 80 layers (pp 72 gives 8 stages two layers), 32 query heads
# over 8 KV heads (tp 8: one KV head per rank, as Llama-2-70B), rows of 256
# and 512 values (tp 8 splits them in whole blocks).
cat >config.json <<'EOF'
{"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 80,
 "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 8, "vocab_size": 512,
 "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
 "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": false}
EOF
"$lockstep" synth --config config.json --dtype q8_0 --seed 70 --output scale.h5 || fail "synth"

for i in 0 1 2 3; do
  len=$((3 + i * 9)) prompt=""
  for ((j = 0; j < len; ++j)); do prompt+="$(((i * 131 + j * 17) % 512)),"; done
  printf '{"id": "r%d", "prompt_tokens": [%s], "max_tokens": %d, "temperature": %s, "seed": %d, "ignore_eos": true}\n' \
    "$i" "${prompt%,}" $((6 - i)) "$( ((i % 2)) && echo 0.8 || echo 0)" "$i"
done >requests.jsonl

common=(run --model scale.h5 --input requests.jsonl --hash-logits --no-progress --no-timings)
"$lockstep" "${common[@]}" --output one.jsonl 2>one.err || fail "one rank: $(cat one.err)"
start=$(now_ms)
timeout --kill-after=10 1200 "$lockstep" "${common[@]}" --output chips.jsonl --transport local \
  --chips 576 --tp 8 --pp 72 --comm-timeout 600 2>chips.err
code=$?
elapsed=$(($(now_ms) - start))
[[ $code -eq 0 ]] || fail "576 chips: exit $code: $(tail -3 chips.err)"
echo "--- 576 local chips (tp 8 x pp 72): exit $code after ${elapsed} ms"
grep -i "plan" chips.err | head -2

python3 - one.jsonl chips.jsonl <<'EOF' || fail "576 chips differ from one rank"
import json, sys
def load(p):
    return {r["id"]: (r["tokens"], r["logits_sha256"], r["finish_reason"]) for r in map(json.loads, open(p))}
a, b = load(sys.argv[1]), load(sys.argv[2])
assert len(a) == 4 and a == b, (a, b)
print("same tokens and logits hashes for", len(a), "requests")
EOF

if ((failures)); then
  echo "$failures failure(s)"
  exit 1
fi
echo PASS
