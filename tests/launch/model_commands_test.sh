#!/usr/bin/env bash
# Command-level tests of `lockstep synth`, `inspect` and `verify`: they run the
# built binary as a user would and check output, exit codes and error lines.
#
#   model_commands_test.sh LOCKSTEP_BINARY CASE
set -uo pipefail

lockstep="$1"
case_name="$2"
work=$(mktemp -d "${TMPDIR:-/tmp}/lockstep_cmd_XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# expect_error EXIT_CODE PATTERN -- command...: the command must exit with
# EXIT_CODE and print exactly one stderr line "lockstep: error: ..." matching
# PATTERN (grep -E), and nothing on stdout.
expect_error() {
  local want_code="$1" pattern="$2"
  shift 3
  "$@" >out.txt 2>err.txt
  local code=$?
  [[ $code -eq $want_code ]] || fail "$*: exit $code, want $want_code"
  [[ $(wc -l <err.txt) -eq 1 ]] || fail "$*: want one stderr line, got: $(cat err.txt)"
  grep -qE "^lockstep: error: .*$pattern" err.txt || fail "$*: stderr '$(cat err.txt)' !~ '$pattern'"
  [[ ! -s out.txt ]] || fail "$*: unexpected stdout: $(cat out.txt)"
}

case "$case_name" in
  synth_inspect)
    for dtype in f32 f16 bf16; do
      "$lockstep" synth --preset tiny --dtype "$dtype" --seed 3 --output "tiny_$dtype.h5" \
        || fail "synth $dtype exited $?"
      "$lockstep" inspect "tiny_$dtype.h5" >inspect.txt || fail "inspect $dtype exited $?"
      grep -qE "^  weight_dtype +$dtype$" inspect.txt || fail "inspect $dtype: no weight_dtype line"
      grep -qE "^  /layers/3/ffn/w_down +$dtype +\[128, 352\] " inspect.txt \
        || fail "inspect $dtype: no w_down line"
      grep -qE "^  /norm +f32 +\[128\] +512 " inspect.txt || fail "inspect $dtype: norm line"
      grep -qE "^total: 39 tensors, 833664 parameters" inspect.txt || fail "inspect $dtype: total"
    done
    # A Hugging Face config.json: tied embeddings, head_dim != hidden/heads,
    # rope_theta != 10000, odd vocabulary.
    cat >config.json <<'JSON'
{"model_type": "llama", "hidden_size": 96, "intermediate_size": 160, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 257,
 "rms_norm_eps": 1e-6, "rope_theta": 500000.0, "max_position_embeddings": 256,
 "tie_word_embeddings": true}
JSON
    "$lockstep" synth --config config.json --dtype bf16 --output hf.h5 || fail "synth --config"
    "$lockstep" inspect hf.h5 >inspect.txt || fail "inspect hf.h5"
    grep -qE "^  rope_theta +500000$" inspect.txt || fail "rope_theta not shown"
    grep -qE "^  tie_word_embeddings +1$" inspect.txt || fail "tie not shown"
    grep -q "/lm_head" inspect.txt && fail "tied model lists /lm_head"
    grep -qE "^  /layers/1/attn/wq +bf16 +\[128, 96\]" inspect.txt || fail "wq shape"
    # h5ls sees the same tensors (the format is plain HDF5).
    if command -v h5ls >/dev/null; then
      h5ls -r hf.h5 | grep -qE "^/layers/1/ffn/w_gate +Dataset \{160, 96\}" || fail "h5ls"
    fi
    ;;

  synth_families)
    # Each family's config.json shape through `synth --config` (what a user
    # brings): the family, its features and format version 2 in `inspect`,
    # and `plan --config` accepts it.
    cat >phi3.json <<'JSON'
{"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "hidden_size": 128,
 "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
 "num_key_value_heads": 4, "vocab_size": 320, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
 "max_position_embeddings": 256, "original_max_position_embeddings": 64, "sliding_window": 100,
 "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2,
 "rope_scaling": {"type": "longrope", "short_factor": [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
                  "long_factor": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]}}
JSON
    "$lockstep" synth --config phi3.json --dtype bf16 --output phi3.h5 || fail "synth phi3"
    "$lockstep" inspect phi3.h5 >inspect.txt || fail "inspect phi3"
    grep -qE "^model phi3\.h5: lockstep-model v2," inspect.txt || fail "phi3: not version 2"
    grep -qE "^  architecture +phi3$" inspect.txt || fail "phi3: architecture"
    grep -qE "^  sliding_window +100$" inspect.txt || fail "phi3: sliding_window"
    grep -qE "^  rope_scaling +\{.*\"rope_type\":\"longrope\"" inspect.txt || fail "phi3: rope"
    cat >qwen2.json <<'JSON'
{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 64,
 "intermediate_size": 160, "num_hidden_layers": 2, "num_attention_heads": 4,
 "num_key_value_heads": 2, "vocab_size": 300, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
 "max_position_embeddings": 512, "tie_word_embeddings": true, "use_sliding_window": false,
 "sliding_window": 4096, "max_window_layers": 2}
JSON
    "$lockstep" synth --config qwen2.json --output qwen2.h5 || fail "synth qwen2"
    "$lockstep" inspect qwen2.h5 >inspect.txt || fail "inspect qwen2"
    grep -qE "^  qkv_bias +1$" inspect.txt || fail "qwen2: qkv_bias"
    grep -qE "^  /layers/1/attn/bk +f32 +\[32\] " inspect.txt || fail "qwen2: bias tensor"
    "$lockstep" plan --config qwen2.json --chip host --chips 2 >plan.txt 2>&1 \
      || fail "plan --config qwen2: $(cat plan.txt)"
    for preset in llama-3.1-8b qwen2.5-7b mistral-7b phi-3-mini; do
      "$lockstep" plan --preset $preset --chip h100-nvlink --chips 8 >plan.txt 2>&1 \
        || fail "plan --preset $preset: $(tail -1 plan.txt)"
    done
    # Plain Llama stays version 1.
    "$lockstep" synth --preset tiny --output tiny.h5 || fail "synth tiny"
    "$lockstep" inspect tiny.h5 | grep -qE "^model tiny\.h5: lockstep-model v1," \
      || fail "tiny: not version 1"
    ;;

  synth_deterministic)
    "$lockstep" synth --preset tiny --dtype bf16 --seed 5 --output a.h5 || fail "synth a"
    sleep 1.1  # a timestamp anywhere in the file would now differ
    "$lockstep" synth --preset tiny --dtype bf16 --seed 5 --output b.h5 || fail "synth b"
    "$lockstep" synth --preset tiny --dtype bf16 --seed 6 --output c.h5 || fail "synth c"
    cmp -s a.h5 b.h5 || fail "same seed, different bytes"
    cmp -s a.h5 c.h5 && fail "different seed, same bytes"
    ;;

  errors)
    expect_error 1 "nope\.h5: model file not found" -- "$lockstep" inspect nope.h5
    echo '{"not": "hdf5"}' >text.h5
    expect_error 1 "text\.h5: not an HDF5 file" -- "$lockstep" inspect text.h5
    "$lockstep" synth --preset tiny --output good.h5 || fail "synth good"
    head -c 20000 good.h5 >cut.h5
    expect_error 1 "cut\.h5: .*truncated" -- "$lockstep" inspect cut.h5
    expect_error 2 "unknown model preset 'gpt-5'" -- \
      "$lockstep" synth --preset gpt-5 --output x.h5
    expect_error 1 "missing\.json: cannot open model config" -- \
      "$lockstep" synth --config missing.json --output x.h5
    echo '{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
           "num_attention_heads": 4, "vocab_size": 100,
           "rope_scaling": {"rope_type": "foo", "factor": 2.0}}' >scaled.json
    expect_error 1 'scaled\.json: rope_scaling\.type "foo" is not supported \(supported: ' -- \
      "$lockstep" synth --config scaled.json --output x.h5
    [[ -e x.h5 ]] && fail "a refused config left x.h5"
    echo '{"hidden_size": 64, "num_hidden_layers": 2}' >partial.json
    expect_error 1 "partial\.json: field 'vocab_size' is missing" -- \
      "$lockstep" synth --config partial.json --output x.h5
    expect_error 1 "/no/such/dir/x\.h5: cannot create model file" -- \
      "$lockstep" synth --preset tiny --output /no/such/dir/x.h5
    # Bad command lines exit 2.
    "$lockstep" synth --output x.h5 >/dev/null 2>&1
    [[ $? -eq 2 ]] || fail "synth without --config/--preset: want exit 2"
    "$lockstep" synth --preset tiny --config config.json --output x.h5 >/dev/null 2>&1
    [[ $? -eq 2 ]] || fail "synth with both --config and --preset: want exit 2"
    "$lockstep" synth --preset tiny --dtype int8 --output x.h5 >/dev/null 2>&1
    [[ $? -eq 2 ]] || fail "synth --dtype int8: want exit 2"
    "$lockstep" inspect >/dev/null 2>&1
    [[ $? -eq 2 ]] || fail "inspect without a file: want exit 2"
    ;;

  verify)
    # A sound file: exit 0, one OK line naming the manifest digest.
    "$lockstep" synth --preset tiny --dtype f16 --output good.h5 || fail "synth"
    "$lockstep" verify good.h5 >out.txt 2>err.txt || fail "verify good.h5 exited $?"
    grep -qE "^good\.h5: OK: 39 tensors .*manifest_sha256 [0-9a-f]{64}\)$" out.txt \
      || fail "verify good.h5 said: $(cat out.txt)"
    [[ ! -s err.txt ]] || fail "verify good.h5 wrote to stderr: $(cat err.txt)"
    "$lockstep" inspect good.h5 | grep -qE "^  checksums +every chunk \(Fletcher32\)" \
      || fail "inspect shows no checksums"
    if command -v h5dump >/dev/null; then
      h5dump -p -H -d /layers/0/attn/wq good.h5 | grep -q "CHECKSUM FLETCHER32" \
        || fail "h5dump -p shows no Fletcher32 filter"
    fi
    # Eight 0xFF bytes in the middle of the data: one line per damaged
    # tensor, then the summary; exit 1.
    cp good.h5 bad.h5
    size=$(stat -c %s bad.h5)
    printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of=bad.h5 bs=1 seek=$((size * 2 / 3)) conv=notrunc status=none
    "$lockstep" verify bad.h5 >out.txt 2>err.txt
    code=$?
    [[ $code -eq 1 ]] || fail "verify bad.h5: exit $code, want 1"
    grep -qE "^DAMAGED bad\.h5: tensor '/[a-z0-9_/]+'.*(checksum|sha256)" out.txt \
      || fail "verify bad.h5 stdout: $(cat out.txt)"
    [[ $(wc -l <err.txt) -eq 1 ]] || fail "verify bad.h5: want one stderr line: $(cat err.txt)"
    grep -qE "^lockstep: error: bad\.h5: 1 of 39 tensors damaged: /" err.txt \
      || fail "verify bad.h5 summary: $(cat err.txt)"
    expect_error 1 "nope\.h5: model file not found" -- "$lockstep" verify nope.h5
    "$lockstep" verify >/dev/null 2>&1
    [[ $? -eq 2 ]] || fail "verify without a file: want exit 2"
    ;;

  *)
    echo "unknown case '$case_name'" >&2
    exit 2
    ;;
esac

if [[ $failures -ne 0 ]]; then
  echo "$case_name: $failures failure(s)" >&2
  exit 1
fi
echo "$case_name: ok"
