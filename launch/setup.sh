#!/usr/bin/env bash
# One command from a fresh Debian 12 clone to a working lockstep (usage below).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'USAGE'
usage: ./launch/setup.sh [--test [--no-sanitizers]] [--preset NAME] [--jobs N]

From a fresh Debian 12 clone to a working lockstep: installs the Debian
packages that are missing (launch/install-deps.sh), configures and builds
with a CMake preset into build/NAME/, then

  (default)   runs two small generation jobs end to end (a random-weight
              model; then text in, text out with the Llama vocabulary);
  --test      runs every test instead: the whole suite (ctest, the fuzz
              replays included), then the sanitizer and fuzz stage
              (launch/sanitizers.sh: the unit and multi-rank tests under
              ASan + UBSan, every libFuzzer target for its bounded runs,
              the thread tests under TSan); this is what CI runs.

  --preset NAME     release (default), debug or asan
  --jobs N          build parallelism (default: the number of cores)
  --no-sanitizers   with --test: the suite only, without the sanitizer
                    and fuzz stage (about 35 minutes less on 2 cores)
  -h, --help        this text

Afterwards: export PATH="$PWD/build/release/launch:$PATH" puts the
`lockstep` command on PATH (README.md).
USAGE
}

mode=demo
preset=release
jobs=$(nproc)
sanitizers=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --test) mode=test ;;
    --preset|--jobs)
      if [[ $# -lt 2 ]]; then echo "setup.sh: $1 needs a value (try --help)" >&2; exit 2; fi
      if [[ "$1" == --preset ]]; then preset="$2"; else jobs="$2"; fi
      shift ;;
    --sanitizers) sanitizers=1 ;;
    --no-sanitizers) sanitizers=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

./launch/install-deps.sh
cmake --preset "$preset"
cmake --build --preset "$preset" -j "$jobs"

build="build/$preset"
lockstep="$build/launch/lockstep"
"$lockstep" --version

if [[ "$mode" == test ]]; then
  start=$SECONDS
  ctest --preset "$preset" -j 2
  echo "setup: the $preset suite took $((SECONDS - start)) s"
  if [[ $sanitizers -eq 1 ]]; then
    ./launch/sanitizers.sh --jobs "$jobs"
  fi
  exit 0
fi

# The small default job (docs/batch-jobs.md): synthesize a model with random
# weights, write three requests (greedy, sampled, OpenAI batch form), run them
# as a batch job and print the results.
demo="$build/demo"
mkdir -p "$demo"
"$lockstep" synth --preset tiny --dtype bf16 --seed 1 --output "$demo/model.h5"
cat > "$demo/requests.jsonl" <<'EOF'
{"id": "greedy", "prompt_tokens": [1, 15, 27, 300], "max_tokens": 16, "temperature": 0}
{"id": "sampled", "prompt_tokens": [1, 15, 27, 300], "max_tokens": 16, "temperature": 0.8, "top_p": 0.95, "seed": 42}
{"custom_id": "openai-form", "method": "POST", "url": "/v1/completions", "body": {"prompt": [1, 99, 4], "max_tokens": 8, "seed": 7}}
EOF
"$lockstep" run --model "$demo/model.h5" --input "$demo/requests.jsonl" \
  --output "$demo/results.jsonl" --hash-logits --force
echo "setup: results of the demo job ($demo/results.jsonl):"
cat "$demo/results.jsonl"

# Text in, text out: a small random-weight model carrying the Llama
# vocabulary (llama.cpp's ggml-vocab-llama-spm.gguf in tests/data, the README's
# example). The weights are random, so the text is noise: docs/converting.md
# converts a real checkpoint.
cat > "$demo/small-llama.json" <<'EOF'
{"model_type": "llama", "hidden_size": 128, "intermediate_size": 352, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32000,
 "max_position_embeddings": 256}
EOF
"$lockstep" synth --config "$demo/small-llama.json" --dtype bf16 --seed 1 \
  --tokenizer tests/data/tokenizers/ggml-vocab-llama-spm.gguf --output "$demo/small.h5"
cat > "$demo/text.jsonl" <<'EOF'
{"id": "text", "prompt": "Once upon a time", "max_tokens": 24, "temperature": 0, "stop": ["\n\n"]}
{"custom_id": "echo", "body": {"prompt": "The capital of France is", "max_tokens": 8, "echo": true, "seed": 3}}
EOF
"$lockstep" run --model "$demo/small.h5" --input "$demo/text.jsonl" \
  --output "$demo/text-results.jsonl" --force
echo "setup: results of the text demo job ($demo/text-results.jsonl):"
cat "$demo/text-results.jsonl"
echo "setup: done; export PATH=\"$PWD/$build/launch:\$PATH\" puts lockstep on PATH"
