#!/usr/bin/env bash
# `lockstep run` under mpirun through the real binary: a rank killed in the
# middle of a job, --resume, text prompts and stop strings (a model with a
# tokenizer; LOCKSTEP_TEST_DATA_DIR names tests/data), and the start-up errors (plan against rank
# count or model, a model file missing on one rank only, ranks started with
# different arguments). Each must end every rank with a non-zero exit, one
# clear error from rank 0 naming the rank, and no hang.
#
#   distributed_cli_test.sh LOCKSTEP CASE MPIEXEC [MPIEXEC FLAGS...]
set -uo pipefail

lockstep="$1"
case_name="$2"
shift 2
mpiexec=("$@")
work=$(mktemp -d "${TMPDIR:-/tmp}/lockstep_dist_XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

"$lockstep" synth --preset tiny --dtype bf16 --seed 4 --output tiny.h5 || fail "synth"

# requests N MAX_TOKENS: N greedy and sampled requests with mixed prompts.
requests() {
  local n=$1 max=$2 i
  for ((i = 0; i < n; ++i)); do
    local len=$((1 + (i * 37) % 90)) prompt="" j
    for ((j = 0; j < len; ++j)); do prompt+="$(((i * 131 + j * 17) % 500)),"; done
    printf '{"id": "q%03d", "prompt_tokens": [%s], "max_tokens": %d, "temperature": %s, "seed": %d, "ignore_eos": true}\n' \
      "$i" "${prompt%,}" $((max - (i % 5) * 7)) "$( ((i % 2)) && echo 0.8 || echo 0)" "$i"
  done
}

# expect_job_error PATTERN -- mpirun args...: the job must exit non-zero
# within 60 s, and rank 0's stderr must have one "lockstep: error:" line
# matching PATTERN.
expect_job_error() {
  local pattern="$1"
  shift 2
  local start
  start=$(now_ms)
  timeout --kill-after=5 120 "${mpiexec[@]}" "$@" >out.txt 2>err.txt
  local code=$? elapsed=$(($(now_ms) - start))
  last_code=$code
  [[ $code -ne 0 ]] || fail "$*: exit 0"
  [[ $code -ne 124 ]] || fail "$*: hung (ended by timeout)"
  ((elapsed < 60000)) || fail "$*: took ${elapsed} ms"
  local errors
  errors=$(grep -c "^lockstep: error:" err.txt)
  [[ $errors -eq 1 ]] || fail "$*: want one error line, got $errors: $(cat err.txt)"
  grep -qE "^lockstep: error: .*$pattern" err.txt || fail "$*: stderr '$(cat err.txt)' !~ '$pattern'"
  echo "--- $case_name: exit $code after ${elapsed} ms: $(grep '^lockstep: error:' err.txt)"
}

run=(run --model tiny.h5 --input requests.jsonl --no-progress --no-timings --comm-timeout 10)

case "$case_name" in
  kill_resume)
    requests 24 120 >requests.jsonl
    # The uninterrupted reference, on one rank.
    "$lockstep" "${run[@]}" --output reference.jsonl || fail "reference run exited $?"
    [[ $(wc -l <reference.jsonl) -eq 24 ]] || fail "reference: $(wc -l <reference.jsonl) lines"

    # tp 2 x pp 2, max-batch 2 so that results come out one after the other;
    # kill world rank 3 (the last stage) once a few results are written.
    "${mpiexec[@]}" -n 4 "$lockstep" "${run[@]}" --output results.jsonl --tp 2 --pp 2 \
      --max-batch 2 >job.txt 2>&1 &
    job=$!
    for ((i = 0; i < 600; ++i)); do
      [[ -f results.jsonl && $(wc -l <results.jsonl) -ge 3 ]] && break
      kill -0 $job 2>/dev/null || break
      sleep 0.1
    done
    victim=""
    for pid in $(ps -o pid= --ppid $job); do
      if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=3"; then
        victim=$pid
      fi
    done
    [[ -n "$victim" ]] || fail "no rank 3 process to kill (job output: $(cat job.txt))"
    done_before=$(wc -l <results.jsonl)
    start=$(now_ms)
    [[ -n "$victim" ]] && kill -9 "$victim"
    wait $job
    code=$?
    elapsed=$(($(now_ms) - start))
    echo "--- killed rank 3 after $done_before results: exit $code after ${elapsed} ms"
    [[ $code -ne 0 ]] || fail "the job exited 0 after a rank was killed"
    ((elapsed < 10000 + 5000)) || fail "the job took ${elapsed} ms to end (deadline 10 s)"
    lines=$(wc -l <results.jsonl)
    ((lines < 24)) || fail "the job finished all 24 requests before the kill ($lines lines)"
    # Every line written is a whole result that equals the reference's.
    while IFS= read -r line; do
      grep -qxF -- "$line" reference.jsonl || fail "line not in the reference: $line"
    done <results.jsonl

    # Resume on another plan (tp 1 x pp 2): only the missing requests run.
    "${mpiexec[@]}" -n 2 "$lockstep" "${run[@]}" --output results.jsonl --pp 2 --resume \
      >resume.txt 2>&1 || fail "resume exited $?: $(tail -5 resume.txt)"
    sort results.jsonl >got.sorted
    sort reference.jsonl >want.sorted
    cmp -s got.sorted want.sorted || fail "resumed results differ: $(diff got.sorted want.sorted | head -5)"
    [[ $(wc -l <results.jsonl) -eq 24 ]] || fail "$(wc -l <results.jsonl) lines after resume"
    # Nothing left: a second resume writes nothing and exits 0.
    cp results.jsonl before.jsonl
    "$lockstep" "${run[@]}" --output results.jsonl --resume || fail "second resume exited $?"
    cmp -s results.jsonl before.jsonl || fail "a resume with nothing to do changed the file"
    ;;

  errors)
    requests 2 8 >requests.jsonl
    # A plan for 4 ranks on 2.
    "$lockstep" plan --model tiny.h5 --chip host --chips 4 --tp 2 --pp 2 --output plan4.json >/dev/null \
      || fail "plan exited $?"
    expect_job_error "plan4.json: the plan needs 4 ranks .* but the job has 2" -- \
      -n 2 "$lockstep" "${run[@]}" --output out.jsonl --plan plan4.json
    # A plan for another model.
    "$lockstep" synth --preset tiny --dtype bf16 --seed 4 --output other.h5 >/dev/null
    "$lockstep" plan --preset llama-110m --chip host --chips 2 --tp 2 --pp 1 --output plan110.json >/dev/null \
      || fail "plan 110m exited $?"
    expect_job_error "plan110.json: the plan was made for model 'llama-110m'" -- \
      -n 2 "$lockstep" "${run[@]}" --output out.jsonl --plan plan110.json
    # The model file missing on rank 1 only: same arguments (a relative
    # path), a different working directory.
    mkdir -p node0 node1
    cp tiny.h5 node0/tiny.h5
    cp requests.jsonl node0/requests.jsonl
    local_run=(run --model tiny.h5 --input "$work/requests.jsonl" --output "$work/out.jsonl"
               --no-progress --comm-timeout 10)
    expect_job_error "rank 1: tiny.h5" -- \
      -n 1 -wdir "$work/node0" "$lockstep" "${local_run[@]}" --tp 2 : \
      -n 1 -wdir "$work/node1" "$lockstep" "${local_run[@]}" --tp 2
    # Different weights at the same path (same config, another seed): the
    # ranks compare the digests of the files they opened and refuse to run.
    "$lockstep" synth --preset tiny --dtype bf16 --seed 99 --output node1/tiny.h5 >/dev/null
    expect_job_error "rank 1 opened a different model file than rank 0 at tiny\.h5" -- \
      -n 1 -wdir "$work/node0" "$lockstep" "${local_run[@]}" --tp 2 : \
      -n 1 -wdir "$work/node1" "$lockstep" "${local_run[@]}" --tp 2
    [[ -e "$work/out.jsonl" ]] && fail "a job that did not start left $work/out.jsonl"
    # Ranks started with different arguments.
    expect_job_error "rank 1 was started with different arguments than rank 0" -- \
      -n 1 "$lockstep" "${run[@]}" --output out.jsonl --max-batch 4 : \
      -n 1 "$lockstep" "${run[@]}" --output out.jsonl --max-batch 8
    # --tp x --pp against the rank count.
    # A bad command line: exit 2 (found before MPI starts, said once).
    expect_job_error "--tp 2 --pp 2 needs 4 ranks but the job has 2" -- \
      -n 2 "$lockstep" "${run[@]}" --output out.jsonl --tp 2 --pp 2
    [[ $last_code -eq 2 ]] || fail "--tp 2 --pp 2 on 2 ranks: exit $last_code, want 2"
    expect_job_error "--tp 3 does not divide the job's 2 ranks" -- \
      -n 2 "$lockstep" "${run[@]}" --output out.jsonl --tp 3
    [[ $last_code -eq 2 ]] || fail "--tp 3 on 2 ranks: exit $last_code, want 2"
    ;;

  text)
    # A model with a tokenizer: text prompts, stop strings and echo give the
    # one-rank results (text included) on tp 2 and on pp 2.
    spm="${LOCKSTEP_TEST_DATA_DIR:?}/tokenizers/ggml-vocab-llama-spm.gguf"
    cat >config.json <<'JSON'
{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32000,
 "max_position_embeddings": 128}
JSON
    "$lockstep" synth --config config.json --tokenizer "$spm" --dtype bf16 --seed 3 --output text.h5 \
      >/dev/null || fail "synth --tokenizer"
    cat >text.jsonl <<'JSONL'
{"custom_id": "t1", "body": {"prompt": "Once upon a time", "max_tokens": 24, "temperature": 0}}
{"custom_id": "t2", "body": {"prompt": "The capital of France is", "max_tokens": 30, "temperature": 0.9, "seed": 4, "stop": ["e", "a"]}}
{"custom_id": "t3", "body": {"prompt": "Hello", "max_tokens": 12, "temperature": 0, "echo": true}}
{"custom_id": "t4", "body": {"prompt": [1, 15043, 3186], "max_tokens": 20, "temperature": 1.1, "seed": 9, "stop": ["o"]}}
JSONL
    text_run=(run --model text.h5 --input text.jsonl --no-progress --no-timings --hash-logits)
    "$lockstep" "${text_run[@]}" --output one.jsonl || fail "one-rank text run exited $?"
    grep -q '"text":' one.jsonl || fail "no text in the results: $(head -2 one.jsonl)"
    sort one.jsonl >want.sorted
    for split in "--tp 2" "--pp 2"; do
      # shellcheck disable=SC2086
      "${mpiexec[@]}" -n 2 "$lockstep" "${text_run[@]}" --output two.jsonl --force $split >two.txt 2>&1 \
        || fail "$split: exited $?: $(tail -3 two.txt)"
      sort two.jsonl >got.sorted
      cmp -s got.sorted want.sorted || fail "$split: results differ: $(diff got.sorted want.sorted | head -4)"
    done
    ;;

  *)
    echo "unknown case $case_name" >&2
    exit 2
    ;;
esac

if [[ $failures -gt 0 ]]; then
  echo "$case_name: $failures failure(s)" >&2
  exit 1
fi
echo "$case_name: ok"
