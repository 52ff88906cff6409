#!/usr/bin/env bash
# The bad-input matrix of issue 15 (docs/reliability.md, "The bad-input
# matrix"): every hostile input and fault case, run through the real binary
# as a user would, with the exit code it must end with and the words its
# one-line message must contain. A case passes when the exit code matches,
# stderr has exactly one "lockstep: error:" line (for exit 1 and 2) holding
# every word, nothing hangs (each command has a deadline), and -- where the
# case says so -- no result already written is lost.
#
#   bad_input_matrix.sh LOCKSTEP MPIEXEC [MPIEXEC FLAGS...]
# Cases that need mpirun or UCX run when MPIEXEC is given (always in CI).
# LOCKSTEP_REFERENCE_DIR names tests/reference (checkpoint_formats.py),
# LOCKSTEP_PYTHON3 the Python with h5py, numpy and torch (Debian's).
# LOCKSTEP_REFERENCE_DIR names tests/reference (checkpoint_formats.py).
set -uo pipefail

lockstep="$1"
shift
mpiexec=("$@")
python=${LOCKSTEP_PYTHON3:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/lockstep_matrix_XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

failures=0
cases=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# check NAME CODE "WORD|WORD|..." -- command...: run with a 120 s deadline;
# the exit code must be CODE; for CODE 1 and 2, stderr must have exactly one
# "lockstep: error:" line containing every WORD (fixed strings); for CODE 3,
# the results file named by $results must have an error record containing
# every WORD.
results=""
check() {
  local name="$1" want="$2" words="$3"
  shift 4
  cases=$((cases + 1))
  timeout --kill-after=5 120 "$@" >"$name.out" 2>"$name.err"
  local code=$?
  local shown
  if [[ $want -eq 3 ]]; then
    shown=$(grep '"error"' "$results" 2>/dev/null | head -3)
  else
    shown=$(grep '^lockstep: error:' "$name.err")
  fi
  echo "--- $name: exit $code: $(head -c 300 <<<"$shown")"
  [[ $code -ne 124 ]] || { fail "$name: hung (ended by timeout)"; return; }
  [[ $code -eq $want ]] || { fail "$name: exit $code, want $want; stderr: $(tail -3 "$name.err")"; return; }
  if [[ $want -eq 1 || $want -eq 2 ]]; then
    local n
    n=$(grep -c '^lockstep: error:' "$name.err")
    [[ $n -eq 1 ]] || fail "$name: want one error line, got $n: $(cat "$name.err")"
  fi
  local word
  IFS='|' read -ra list <<<"$words"
  for word in "${list[@]}"; do
    grep -qF -- "$word" <<<"$shown" || fail "$name: message lacks '$word': $shown"
  done
  if grep -qE "Backtrace|backtrace|Segmentation|Aborted|terminate called|core dumped" "$name.err"; then
    fail "$name: a crash on stderr: $(grep -m3 -E 'acktrace|Segm|Abort|terminate' "$name.err")"
  fi
}

# --- Inputs --------------------------------------------------------------
cat >micro.json <<'JSON'
{"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 300,
 "max_position_embeddings": 256}
JSON
"$lockstep" synth --config micro.json --dtype f16 --seed 1 --output model.h5 >/dev/null 2>&1 ||
  { echo "synth failed" >&2; exit 1; }
"$lockstep" synth --config micro.json --dtype f16 --seed 2 --output other.h5 >/dev/null 2>&1
good='{"id": "good", "prompt_tokens": [1, 2, 3], "max_tokens": 4, "temperature": 0}'
echo "$good" >good.jsonl
run=(run --no-progress --no-timings)

# One hostile request line among good ones: exit 3, an error record naming
# the field, the good request still answered.
line_case() {
  local name="$1" words="$2" line="$3"
  { echo "$good"; printf '%s\n' "$line"; echo '{"id": "after", "prompt_tokens": [4], "max_tokens": 2}'; } >"$name.jsonl"
  results="$name.results"
  check "$name" 3 "$words" -- "$lockstep" "${run[@]}" --model model.h5 --input "$name.jsonl" --output "$results"
  [[ $(grep -c '"tokens"' "$results" 2>/dev/null) -eq 2 ]] || fail "$name: the good requests did not both run"
}

# h5py edits of a model file (python3-h5py is a dependency of the tests).
h5edit() {
  "$python" - "$@" <<'PY'
import sys, h5py, numpy as np
path, what = sys.argv[1], sys.argv[2]
with h5py.File(path, "r+") as f:
    if what == "strip":  # no checksums at all, as an h5py converter writes
        del f.attrs["manifest_sha256"]
        f.visititems(lambda n, o: o.attrs.__delitem__("sha256") if "sha256" in o.attrs else None)
    elif what in ("nan", "inf"):
        d = f["/layers/1/attn/wq"]
        a = d[()]
        a[3, 5] = np.nan if what == "nan" else np.inf
        d[...] = a
    else:  # attr=value
        key, value = what.split("=")
        del f.attrs[key]
        f.attrs[key] = float(value) if "." in value or "inf" in value else np.int64(int(value))
PY
}

# --- 1. Request lines (issue: 1e400 aborted the job, deep nesting crashed) --
line_case req_overflow "field 'temperature'|1e400 is too large" \
  '{"id": "x", "prompt_tokens": [1], "temperature": 1e400}'
line_case req_deep "nested deeper than 32 levels" \
  "{\"id\": \"d\", \"prompt_tokens\": [1], \"stop\": $(printf '%.0s[' {1..100000})$(printf '%.0s]' {1..100000})}"
line_case req_deep_top "nested deeper than 32 levels" "$(printf '%.0s[' {1..100000})$(printf '%.0s]' {1..100000})"
line_case req_utf8_id "field 'id': not valid JSON|UTF-8" "$(printf '{"id": "a\xff", "prompt_tokens": [1]}')"
line_case req_utf8_text "field 'prompt'|UTF-8" "$(printf '{"id": "t", "prompt": "caf\xc3"}')"
line_case req_misspelt "field 'temprature' is not a request field|did you mean 'temperature'" \
  '{"id": "m", "prompt_tokens": [1], "temprature": 0}'
line_case req_unknown_body "field 'body.top-p' is not a request field|did you mean 'top_p'" \
  '{"custom_id": "o", "body": {"prompt": [1], "top-p": 0.5}}'

# --- 2. Results files (issue: two writers, two resumes, a directory input
#        truncated the results, --output = --input/--model overwrote them) --
printf '%s\n' "$good" '{"id": "two", "prompt_tokens": [5, 6], "max_tokens": 3}' >two.jsonl
"$lockstep" "${run[@]}" --model model.h5 --input two.jsonl --output kept.jsonl >/dev/null 2>&1
cp kept.jsonl kept.orig
check out_exists 1 "kept.jsonl: the results file already holds|--resume continues that job|--force overwrites it" \
  -- "$lockstep" "${run[@]}" --model model.h5 --input two.jsonl --output kept.jsonl
cmp -s kept.jsonl kept.orig || fail "out_exists: the results file changed"
check input_is_dir 1 "is a directory, not a request file" \
  -- "$lockstep" "${run[@]}" --model model.h5 --input . --output kept.jsonl --force
cmp -s kept.jsonl kept.orig || fail "input_is_dir: the results file changed"
check input_missing 1 "nope.jsonl" -- "$lockstep" "${run[@]}" --model model.h5 --input nope.jsonl --output kept.jsonl --force
cmp -s kept.jsonl kept.orig || fail "input_missing: the results file changed"
cp two.jsonl two.orig
check output_is_input 2 "--output two.jsonl is the same file as --input two.jsonl" \
  -- "$lockstep" "${run[@]}" --model model.h5 --input two.jsonl --output two.jsonl
cmp -s two.jsonl two.orig || fail "output_is_input: the requests changed"
ln model.h5 model-link.h5
cp model.h5 model.orig
check output_is_model 2 "is the same file as --model model.h5" \
  -- "$lockstep" "${run[@]}" --model model.h5 --input two.jsonl --output model-link.h5 --force
cmp -s model.h5 model.orig || fail "output_is_model: the model changed"
check resume_and_force 2 "--resume keeps the results" \
  -- "$lockstep" "${run[@]}" --model model.h5 --input two.jsonl --output kept.jsonl --resume --force
# A second writer while the first job runs (its input is a FIFO that stays
# open, so it holds the results file): refused, and the first job's results
# are all there, once.
for mode in "" "--resume"; do
  name=second_writer${mode:+_resume}
  rm -f busy.jsonl fifo && mkfifo fifo
  "$lockstep" "${run[@]}" --model model.h5 --input fifo --output busy.jsonl $mode >first.err 2>&1 &
  first=$!
  exec {holder}>fifo  # the first job now waits for its requests
  for ((i = 0; i < 200; ++i)); do [[ -e busy.jsonl ]] && break; sleep 0.05; done
  check "$name" 1 "busy.jsonl: another process is writing this results file" \
    -- "$lockstep" "${run[@]}" --model model.h5 --input two.jsonl --output busy.jsonl $mode
  cat two.jsonl >&$holder
  exec {holder}>&-
  wait $first || fail "$name: the first job exited $?: $(cat first.err)"
  [[ $(sort busy.jsonl | uniq | grep -c '"tokens"') -eq 2 && $(wc -l <busy.jsonl) -eq 2 ]] ||
    fail "$name: the first job's results: $(cat busy.jsonl)"
done

# --- 3. Model files (issue: 0xFF bytes, NaN/Inf weights, metadata flips ran
#        with exit 0; config limits crashed or allocated gigabytes) --------
cp model.h5 damaged.h5
offset=$("$python" -c "
import h5py
with h5py.File('damaged.h5') as f:
    print(f['/layers/1/ffn/w_up'].id.get_chunk_info(0).byte_offset + 16)")
printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of=damaged.h5 bs=1 seek="$offset" conv=notrunc status=none
check damaged_run 1 "damaged.h5: tensor '/layers/1/ffn/w_up'|checksum" \
  -- "$lockstep" "${run[@]}" --model damaged.h5 --input good.jsonl --output damaged.jsonl
check damaged_verify 1 "damaged.h5: 1 of 21 tensors damaged: /layers/1/ffn/w_up" -- "$lockstep" verify damaged.h5
cp model.h5 flipped.h5
printf '\x5a' | dd of=flipped.h5 bs=1 seek=44 conv=notrunc status=none  # in the superblock
check metadata_flip 1 "flipped.h5" -- "$lockstep" "${run[@]}" --model flipped.h5 --input good.jsonl --output flipped.jsonl
for bad in nan inf; do
  cp model.h5 "$bad.h5" && h5edit "$bad.h5" "$bad" && h5edit "$bad.h5" strip
  check "weights_$bad" 1 "$bad.h5: tensor '/layers/1/attn/wq' holds|at [3, 5]|non-finite" \
    -- "$lockstep" "${run[@]}" --model "$bad.h5" --input good.jsonl --output "$bad.jsonl"
done
cp model.h5 plain.h5 && h5edit plain.h5 strip
results=plain.jsonl
"$lockstep" "${run[@]}" --model plain.h5 --input good.jsonl --output plain.jsonl 2>plain.err
[[ $? -eq 0 ]] || fail "no_checksums: exit $?"
[[ $(grep -c "no checksums" plain.err) -eq 1 ]] || fail "no_checksums: want one warning: $(cat plain.err)"
cases=$((cases + 1))
for attr in "max_position_embeddings=2147483648" "max_position_embeddings=1000000000" \
            "max_position_embeddings=100000000" "rope_theta=inf" "rms_norm_eps=inf"; do
  key=${attr%%=*}
  cp model.h5 "limit.h5" && h5edit limit.h5 "$attr"
  check "config_${attr//[=.]/_}" 1 "limit.h5: invalid config attributes|'$key'" \
    -- "$lockstep" "${run[@]}" --model limit.h5 --input good.jsonl --output "limit_$key.jsonl"
done
# A context at the limit is fine, and memory follows the job, not the context.
sed 's/"max_position_embeddings": 256/"max_position_embeddings": 16000000/' micro.json >long.json
"$lockstep" synth --config long.json --dtype f16 --output long.h5 >/dev/null 2>&1
/usr/bin/time -f "%M" -o long.rss "$lockstep" "${run[@]}" --model long.h5 --input good.jsonl --output long.jsonl 2>/dev/null
cases=$((cases + 1))
rss=$(tail -1 long.rss)
echo "--- long_context: max RSS ${rss} KiB"
((rss < 400000)) || fail "long_context: a 16M-position model used ${rss} KiB for a 7-token job"

# --- 4. Command lines (issue: 100000 threads/chips hung the machine,
#        bad_alloc, failed checks, unreadable numeric errors) ---------------
job=("${run[@]}" --model model.h5 --input good.jsonl --output cli.jsonl)
check threads 2 "--threads: must be a whole number from 1 to|got 100000" -- "$lockstep" "${job[@]}" --threads 100000
check chips 2 "--chips: must be a whole number from 1 to|got 100000" -- "$lockstep" "${job[@]}" --transport local --chips 100000
check max_batch 2 "--max-batch: must be a whole number from 1 to 4096|got 1000000000" -- "$lockstep" "${job[@]}" --max-batch 1000000000
check kv_cache 2 "--kv-cache-mb: must be a whole number from 0 to|this machine's memory|got 99999999999" -- "$lockstep" "${job[@]}" --kv-cache-mb 99999999999
check threads_word 2 "--threads: must be a whole number|got 'many'" -- "$lockstep" "${job[@]}" --threads many
check misspelt_flag 2 "unknown flag '--thraeds' for \`lockstep run\`|did you mean '--threads'" -- "$lockstep" "${job[@]}" --thraeds 2
check misspelt_command 2 "unknown command 'rnu'|did you mean 'run'" -- "$lockstep" rnu --model model.h5
[[ -e cli.jsonl ]] && fail "a refused command line created its results file"

# --- 5. Plans and GGUF (issue: tp_slices gaps/overlaps failed a check;
#        overlapping GGUF tensors and an infinite freq_base converted) -----
"$lockstep" plan --model model.h5 --chip host --chips 2 --tp 2 --pp 1 --output plan.json >/dev/null 2>&1
for edit in gap overlap; do
  "$python" - "$edit" <<'PY'
import json, sys
plan = json.load(open("plan.json"))
s = plan["tp_slices"]
if sys.argv[1] == "gap":
    s[1]["ffn"] = [s[1]["ffn"][0] + 8, s[1]["ffn"][1]]
else:
    s[0]["ffn"] = [s[0]["ffn"][0], s[0]["ffn"][1] + 8]
json.dump(plan, open(sys.argv[1] + ".json", "w"))
PY
  check "plan_$edit" 1 "tp_slices[|'ffn' is [|without gap or overlap" \
    -- "$lockstep" "${run[@]}" --model model.h5 --input good.jsonl --output "plan_$edit.jsonl" \
       --plan "$edit.json" --transport local --chips 2
done
PYTHONPATH="${LOCKSTEP_REFERENCE_DIR:-}" "$python" - <<'PY'
import struct
import checkpoint_formats as cf
cfg = cf.Config(dim=32, ffn=64, layers=1, heads=2, kv_heads=1, head_dim=16, vocab=32, max_pos=64)
w = cf.random_weights(cfg, 1)
cf.write_gguf("good.gguf", cfg, w, lambda n, k: "F32")
d = open("good.gguf", "rb").read()
name = b"output.weight"
at = d.index(struct.pack("<Q", len(name)) + name) + 8 + len(name) + 4 + 16 + 4
open("overlap.gguf", "wb").write(d[:at] + struct.pack("<Q", 0) + d[at + 8:])
kv = [e for e in cf.gguf_llama_metadata(cfg) if e[0] != "llama.rope.freq_base"]
kv.append(("llama.rope.freq_base", cf.GGUF_FLOAT32, float("inf")))
tensors = []
for gname, key in cf.gguf_names(cfg):
    a = cf.lookup(w, key)
    raw, _ = cf.gguf_encode(a, "F32")
    tensors.append((gname, cf.GGML_TYPES["F32"], list(reversed(a.shape)), raw))
open("theta.gguf", "wb").write(cf.gguf_bytes(kv, tensors))
PY
check gguf_overlap 1 "overlap.gguf: corrupt GGUF: tensors|overlap" \
  -- "$lockstep" convert --from gguf overlap.gguf --output overlap.h5 --no-progress
check gguf_freq_base 1 "theta.gguf: GGUF key 'llama.rope.freq_base' is inf" \
  -- "$lockstep" convert --from gguf theta.gguf --output theta.h5 --no-progress

# --- 6. Ranks (issue: different weights at the same path ran; a rank killed
#        under UCX left a UCX fatal error and a backtrace) -------------------
if [[ ${#mpiexec[@]} -gt 0 ]]; then
  mkdir -p node0 node1
  cp model.h5 node0/m.h5
  cp other.h5 node1/m.h5
  check different_files 1 "rank 1 opened a different model file than rank 0 at m.h5" \
    -- "${mpiexec[@]}" -n 1 -wdir "$work/node0" "$lockstep" "${run[@]}" --model m.h5 --input "$work/good.jsonl" --output "$work/ranks.jsonl" --tp 2 --comm-timeout 20 : \
       -n 1 -wdir "$work/node1" "$lockstep" "${run[@]}" --model m.h5 --input "$work/good.jsonl" --output "$work/ranks.jsonl" --tp 2 --comm-timeout 20
  if "$lockstep" doctor 2>/dev/null | grep -q "ucx"; then
    for ((i = 0; i < 40; ++i)); do
      printf '{"id": "u%d", "prompt_tokens": [1, 2, 3], "max_tokens": 200, "ignore_eos": true, "temperature": 0}\n' "$i"
    done >ucx.jsonl
    UCX_TLS=self,tcp UCX_NET_DEVICES=lo "${mpiexec[@]}" -x UCX_TLS -x UCX_NET_DEVICES -n 2 \
      "$lockstep" "${run[@]}" --model model.h5 --input ucx.jsonl --output ucx.out --tp 2 \
      --transport ucx --max-batch 1 --comm-timeout 30 >ucx_kill.err 2>&1 &
    job=$!
    for ((i = 0; i < 600; ++i)); do
      [[ -f ucx.out && $(wc -l <ucx.out) -ge 2 ]] && break
      kill -0 $job 2>/dev/null || break
      sleep 0.1
    done
    victim=""
    for pid in $(ps -o pid= --ppid $job); do
      tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && victim=$pid
    done
    cases=$((cases + 1))
    if [[ -z "$victim" ]]; then
      fail "ucx_killed: no rank 1 to kill: $(tail -3 ucx_kill.err)"
    else
      kill -9 "$victim"
      timeout 60 tail --pid=$job -f /dev/null
      wait $job
      code=$?
      echo "--- ucx_killed: exit $code: $(grep -m1 '^lockstep: error:' ucx_kill.err)"
      [[ $code -ne 0 ]] || fail "ucx_killed: exit 0"
      grep -q "^lockstep: error: .*rank 1" ucx_kill.err || fail "ucx_killed: no lockstep error naming rank 1: $(tail -5 ucx_kill.err)"
      if grep -qiE "backtrace|==== |ucs_fatal|Fatal error" ucx_kill.err; then
        fail "ucx_killed: UCX printed a fatal error or a backtrace: $(grep -m3 -iE 'backtrace|Fatal' ucx_kill.err)"
      fi
      while IFS= read -r line; do
        grep -q '"tokens"' <<<"$line" || fail "ucx_killed: a damaged result line: $line"
      done <ucx.out
    fi
  fi
fi

echo "bad_input_matrix: $cases cases, $failures failure(s)"
[[ $failures -eq 0 ]]
