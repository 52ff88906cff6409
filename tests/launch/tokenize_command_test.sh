#!/usr/bin/env bash
# Command-level tests of `lockstep tokenize` on llama.cpp's vocab files
# (tests/data/tokenizers): plain lines and JSONL, encode and decode,
# special tokens, the tokenizer stored in a model file, and errors.
#
#   tokenize_command_test.sh LOCKSTEP_BINARY TEST_DATA_DIR
set -uo pipefail

lockstep="$1"
vocab="$2/tokenizers"
spm="$vocab/ggml-vocab-llama-spm.gguf"
gpt2="$vocab/ggml-vocab-gpt-2.gguf"
work=$(mktemp -d "${TMPDIR:-/tmp}/lockstep_tokenize_XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# expect_output WANT -- command... (stdin from the caller): stdout == WANT.
expect_output() {
  local want="$1"
  shift 2
  local got
  got=$("$@" 2>err.txt)
  local code=$?
  [[ $code -eq 0 ]] || fail "$*: exit $code: $(cat err.txt)"
  [[ "$got" == "$want" ]] || fail "$*: got '$got', want '$want'"
}

# expect_error EXIT_CODE PATTERN -- command...: exit code and one stderr line
# "lockstep: error: ..." matching PATTERN.
expect_error() {
  local want_code="$1" pattern="$2"
  shift 3
  "$@" >out.txt 2>err.txt
  local code=$?
  [[ $code -eq $want_code ]] || fail "$*: exit $code, want $want_code"
  [[ $(wc -l <err.txt) -eq 1 ]] || fail "$*: want one stderr line, got: $(cat err.txt)"
  grep -qE "^lockstep: error: .*$pattern" err.txt || fail "$*: stderr '$(cat err.txt)' !~ '$pattern'"
}

t() { "$lockstep" tokenize "$@"; }

# Llama SentencePiece: BOS by default, none with --no-special-tokens; one
# output line per input line.
expect_output $'1 15043 3186\n1' -- t --tokenizer "$spm" <<<$'Hello world\n'
expect_output "15043 3186" -- t --tokenizer "$spm" --no-special-tokens <<<"Hello world"
expect_output "Hello world" -- t --tokenizer "$spm" --decode <<<"1 15043 3186"
expect_output "Hello world" -- t --tokenizer "$spm" --decode <<<"1,15043, 3186"
# llama.cpp's expected ids for the 46 strings of the .out file, through
# JSONL (the strings hold newlines).
python3 - "$vocab/ggml-vocab-llama-spm.gguf.inp" >cases.jsonl <<'EOF'
import json, sys
# The file ends with a separator: no string after it.
for text in open(sys.argv[1], encoding="utf-8").read().split("\n__ggml_vocab_test__\n")[:-1]:
    print(json.dumps(text))
EOF
t --tokenizer "$spm" --jsonl --no-special-tokens <cases.jsonl >ids.jsonl || fail "jsonl encode"
python3 - ids.jsonl "$spm.out" <<'EOF' || fail "jsonl ids differ from llama.cpp's .out"
import json, sys
got = [json.loads(l)["ids"] for l in open(sys.argv[1])]
want = [[int(x) for x in l.split()] for l in open(sys.argv[2])]
sys.exit(0 if got == want[:len(got)] and len(got) == len(want) == 46 else 1)
EOF
t --tokenizer "$spm" --jsonl --decode <ids.jsonl >text.jsonl || fail "jsonl decode"
python3 - text.jsonl cases.jsonl <<'EOF' || fail "jsonl decode is not the input text"
import json, sys
got = [json.loads(l)["text"] for l in open(sys.argv[1])]
want = [json.loads(l) for l in open(sys.argv[2])]
sys.exit(0 if got == want else 1)
EOF

# Every vocabulary llama.cpp ships with expected ids, through the command.
for name in phi-3 deepseek-coder deepseek-llm falcon mpt refact starcoder; do
  python3 - "$vocab/ggml-vocab-$name.gguf.inp" >cases-$name.jsonl <<'EOF'
import json, sys
for text in open(sys.argv[1], encoding="utf-8").read().split("\n__ggml_vocab_test__\n")[:-1]:
    print(json.dumps(text))
EOF
  t --tokenizer "$vocab/ggml-vocab-$name.gguf" --jsonl --no-special-tokens <cases-$name.jsonl \
    >ids-$name.jsonl || fail "$name: jsonl encode"
  python3 - ids-$name.jsonl "$vocab/ggml-vocab-$name.gguf.out" <<'EOF' || fail "$name: ids differ from llama.cpp's .out"
import json, sys
got = [json.loads(l)["ids"] for l in open(sys.argv[1])]
want = [[int(x) for x in l.split()] for l in open(sys.argv[2])]
sys.exit(0 if got == want and len(got) == 46 else 1)
EOF
done
expect_error 1 "ggml-vocab-bert-bge\.gguf: GGUF key 'tokenizer.ggml.model' is 'bert', a vocabulary model lockstep does not support" \
  -- t --tokenizer "$vocab/ggml-vocab-bert-bge.gguf" </dev/null

# --chat: the Phi-3 GGUF's own template; special-token text becomes the tokens.
expect_output '{"ids":[1,32010,29871,13,18567,32007,29871,13,32001,29871,13],"text":"<s><|user|>\nHi<|end|>\n<|assistant|>\n"}' \
  -- t --tokenizer "$vocab/ggml-vocab-phi-3.gguf" --chat <<<'{"messages": [{"role": "user", "content": "Hi"}]}'
expect_error 1 "ggml-vocab-gpt-2\.gguf has no chat template; give one with --chat-template" \
  -- t --tokenizer "$gpt2" --chat <<<'{"messages": []}'
printf '{%% for m in messages %%}\n{{ m.content | wordwrap }}{%% endfor %%}' >bad.jinja
expect_error 1 "<stdin>:1: chat_template: line 2: filter 'wordwrap' is not supported" \
  -- t --tokenizer "$gpt2" --chat --chat-template bad.jinja <<<'{"messages": [{"role": "user", "content": "x"}]}'
printf '{%% if x %%}' >unclosed.jinja
expect_error 1 "unclosed\.jinja: chat_template: line 1: '\{% endif %\}' is missing" \
  -- t --tokenizer "$gpt2" --chat --chat-template unclosed.jinja </dev/null

# GPT-2 byte-level BPE: special-token text becomes the special id; decode
# keeps or skips it.
expect_output '{"ids":[64,198,65,220,50256]}' -- t --tokenizer "$gpt2" --jsonl <<<'"a\nb <|endoftext|>"'
expect_output '{"ids":[64]}' -- t --tokenizer "$gpt2" --jsonl <<<'{"text": "a"}'
expect_output '{"text":"a\nb<|endoftext|>"}' -- t --tokenizer "$gpt2" --jsonl --decode \
  <<<'{"ids": [64, 198, 65, 50256]}'
expect_output "ab" -- t --tokenizer "$gpt2" --decode --skip-special-tokens <<<"64 50256 65"
printf 'one\ntwo\n' >in.txt
expect_output $'505\n11545' -- t --tokenizer "$gpt2" --input in.txt </dev/null

# The tokenizer stored in a model file is the same tokenizer.
cat >config.json <<'JSON'
{"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
 "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": 32000,
 "max_position_embeddings": 64}
JSON
"$lockstep" synth --config config.json --tokenizer "$spm" --output m.h5 || fail "synth --tokenizer"
expect_output "1 15043 3186" -- t --tokenizer m.h5 <<<"Hello world"
"$lockstep" synth --config config.json --output bare.h5 || fail "synth"
# inspect names it.
"$lockstep" inspect m.h5 | grep -qE "^  tokenizer +sentencepiece \(.*bos 1, eos 2, add_bos 1\) from .*ggml-vocab-llama-spm\.gguf" \
  || fail "inspect m.h5: no tokenizer line: $("$lockstep" inspect m.h5 | grep tokenizer)"
"$lockstep" inspect bare.h5 | grep -qE "^  tokenizer +- " || fail "inspect bare.h5: tokenizer line"

# Errors: one line naming the input line or the file; bad command lines exit 2.
expect_error 1 "<stdin>:2: 'x' is not a token id" -- t --tokenizer "$spm" --decode <<<$'1 2\n3 x'
expect_error 1 "<stdin>:1: not valid JSON" -- t --tokenizer "$spm" --jsonl <<<'{"text": '
expect_error 1 "<stdin>:1: .*'text'" -- t --tokenizer "$spm" --jsonl <<<'{"prompt": "a"}'
expect_error 1 "<stdin>:1: .*UTF-8" -- t --tokenizer "$spm" <<<$'\xff\xfe'
expect_error 1 "bare\.h5: the model file has no tokenizer" -- t --tokenizer bare.h5 </dev/null
expect_error 1 "nope\.json" -- t --tokenizer nope.json </dev/null
# Damaged tokenizer files: one line naming the file, no crash (also run
# under the asan preset).
head -c 700000 "$gpt2" >cut.gguf
expect_error 1 "cut\.gguf: truncated or corrupt GGUF" -- t --tokenizer cut.gguf </dev/null
printf '{"model": {"type": "BPE", "vocab": {"a": 0' >cut.json
expect_error 1 "cut\.json: not valid JSON" -- t --tokenizer cut.json </dev/null
head -c 1000 m.h5 >cut.h5
expect_error 1 "cut\.h5" -- t --tokenizer cut.h5 </dev/null
expect_error 1 "missing\.txt: cannot open" -- t --tokenizer "$spm" --input missing.txt
t </dev/null >/dev/null 2>&1
[[ $? -eq 2 ]] || fail "tokenize without --tokenizer: want exit 2"

if [[ $failures -ne 0 ]]; then
  echo "tokenize: $failures failure(s)" >&2
  exit 1
fi
echo "tokenize: ok"
