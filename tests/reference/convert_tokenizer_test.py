#!/usr/bin/python3
"""The tokenizer `lockstep convert` stores in a model file (ctest label:
reference).

Vocabularies no one here wrote -- llama.cpp's vocab files for Meta's Llama
SentencePiece vocabulary and GPT-2's BPE (tests/data/tokenizers/, with
llama.cpp's expected ids) -- are put into checkpoints the way each format
carries them:

  llama2c_spm   a llama2.c checkpoint + tokenizer.bin written as llama2.c's
                tokenizer.py exports it ('▁' as spaces, BOS/EOS as
                '\\n<s>\\n' / '\\n</s>\\n');
  gguf_spm      a GGUF with the tokenizer.ggml.* keys of the Llama vocab file;
  gguf_gpt2     a GGUF with the keys of the GPT-2 vocab file;
  hf_json       a Hugging Face folder whose tokenizer.json is the one stored
                by gguf_gpt2 (it must be stored unchanged);
  hf_model      a Hugging Face folder with a tokenizer.model trained here by
                Debian's SentencePiece (stored byte for byte).

For SentencePiece tokenizers the stored ModelProto is loaded by Debian's
python3-sentencepiece and must give llama.cpp's expected ids for every test
string, with the pieces of the source vocabulary at the same ids.

  convert_tokenizer_test.py --lockstep path/to/lockstep --data path/to/tests/data
                            [--case NAME]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import sentencepiece as spm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint_formats as cf  # noqa: E402

failures = []


def check(cond, message):
    if not cond:
        failures.append(message)
        print(f"FAIL: {message}", file=sys.stderr)


def convert(lockstep, args, output):
    done = subprocess.run([lockstep, "convert", *args, "--output", output, "--no-progress"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"lockstep convert {' '.join(args)}: exit {done.returncode}: "
                           f"{done.stderr.strip()}")


def stored_tokenizer(model):
    with h5py.File(model, "r") as f:
        if "tokenizer" not in f:
            return None, None
        group = f["tokenizer"]
        attrs = {}
        for k, v in group.attrs.items():
            v = v.decode() if isinstance(v, bytes) else v
            attrs[k] = v.item() if isinstance(v, np.generic) else v
        return attrs, bytes(group["data"][()].tobytes())


def check_sentencepiece(name, model, vocab_file, pieces):
    attrs, data = stored_tokenizer(model)
    check(attrs is not None, f"{name}: no /tokenizer group")
    if attrs is None:
        return
    check(attrs["kind"] == "sentencepiece", f"{name}: kind {attrs['kind']}")
    check((attrs["bos_token_id"], attrs["eos_token_id"], attrs["add_bos_token"]) == (1, 2, 1),
          f"{name}: bos/eos/add_bos {attrs}")
    sp = spm.SentencePieceProcessor(model_proto=data)
    check(sp.get_piece_size() == len(pieces), f"{name}: {sp.get_piece_size()} pieces")
    wrong = [i for i in range(min(len(pieces), sp.get_piece_size())) if sp.id_to_piece(i) != pieces[i]]
    check(not wrong, f"{name}: {len(wrong)} pieces differ, first id {wrong[:1]}")
    cases = cf.read_vocab_tests(vocab_file)
    bad = [(text, sp.encode(text), want) for text, want in cases if sp.encode(text) != want]
    for text, got, want in bad[:3]:
        check(False, f"{name}: {text!r} -> {got}, llama.cpp {want}")
    print(f"{name}: {len(cases) - len(bad)}/{len(cases)} llama.cpp cases identical, "
          f"{len(pieces)} pieces")


def small_config(vocab):
    return cf.Config(vocab=vocab, tied=True, layers=1)


def case_llama2c_spm(lockstep, data, work):
    vocab_file = os.path.join(data, "tokenizers/ggml-vocab-llama-spm.gguf")
    meta = cf.read_gguf_metadata(vocab_file)
    tokens, scores = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.scores"]
    cfg = small_config(len(tokens))
    cf.write_llama2c(os.path.join(work, "model.bin"), cfg, cf.random_weights(cfg, 2), version=0)
    cf.write_llama2c_tokenizer(os.path.join(work, "tokenizer.bin"),
                               cf.llama2c_tokenizer_pieces(tokens), scores)
    model = os.path.join(work, "model.h5")
    convert(lockstep, ["--from", "llama2c", os.path.join(work, "model.bin"),
                       "--tokenizer", os.path.join(work, "tokenizer.bin")], model)
    check_sentencepiece("llama2c_spm", model, vocab_file, tokens)


def tokenizer_kv(meta_typed):
    return [(k, t, v) for k, (t, v) in meta_typed.items() if k.startswith("tokenizer.")]


def case_gguf_spm(lockstep, data, work):
    vocab_file = os.path.join(data, "tokenizers/ggml-vocab-llama-spm.gguf")
    meta = cf.read_gguf_metadata(vocab_file, typed=True)
    tokens = meta["tokenizer.ggml.tokens"][1][1]
    cfg = small_config(len(tokens))
    path = os.path.join(work, "model.gguf")
    cf.write_gguf(path, cfg, cf.random_weights(cfg, 2),
                  lambda n, k: "F32" if n.endswith("norm.weight") else "F16",
                  extra_kv=tokenizer_kv(meta))
    model = os.path.join(work, "model.h5")
    convert(lockstep, ["--from", "gguf", path], model)
    check_sentencepiece("gguf_spm", model, vocab_file, tokens)


def case_gguf_gpt2(lockstep, data, work):
    vocab_file = os.path.join(data, "tokenizers/ggml-vocab-gpt-2.gguf")
    meta = cf.read_gguf_metadata(vocab_file, typed=True)
    tokens = meta["tokenizer.ggml.tokens"][1][1]
    cfg = small_config(len(tokens))
    path = os.path.join(work, "model.gguf")
    cf.write_gguf(path, cfg, cf.random_weights(cfg, 2),
                  lambda n, k: "F32" if n.endswith("norm.weight") else "BF16",
                  extra_kv=tokenizer_kv(meta))
    model = os.path.join(work, "model.h5")
    convert(lockstep, ["--from", "gguf", path], model)
    attrs, data = stored_tokenizer(model)
    check(attrs is not None and attrs["kind"] == "huggingface", f"gguf_gpt2: {attrs}")
    if attrs is None:
        return None
    spec = json.loads(data)
    check(spec["model"]["type"] == "BPE" and len(spec["model"]["vocab"]) == len(tokens),
          f"gguf_gpt2: tokenizer.json model {spec['model']['type']} with "
          f"{len(spec['model']['vocab'])} entries, want BPE with {len(tokens)}")
    check(spec["model"]["merges"] == meta["tokenizer.ggml.merges"][1][1],
          "gguf_gpt2: merges differ from the GGUF's")
    print(f"gguf_gpt2: tokenizer.json with {len(tokens)} tokens and "
          f"{len(spec['model']['merges'])} merges")
    return data


def case_hf_json(lockstep, data, work):
    sub = os.path.join(work, "from_gguf")
    os.makedirs(sub)
    data = case_gguf_gpt2(lockstep, data, sub)
    if data is None:
        return
    spec = json.loads(data)
    cfg = small_config(len(spec["model"]["vocab"]))
    folder = os.path.join(work, "hf")
    cf.write_hf(folder, cfg, cf.random_weights(cfg, 2), "BF16")
    with open(os.path.join(folder, "tokenizer.json"), "wb") as f:
        f.write(data)
    model = os.path.join(work, "model.h5")
    convert(lockstep, ["--from", "hf", folder], model)
    attrs, stored = stored_tokenizer(model)
    check(attrs is not None and attrs["kind"] == "huggingface", f"hf_json: {attrs}")
    check(stored == data, "hf_json: tokenizer.json not stored byte for byte")
    print(f"hf_json: tokenizer.json of {len(data)} bytes stored unchanged")


def case_hf_model(lockstep, data, work):
    # A small BPE SentencePiece model with byte fallback, trained on the
    # llama.cpp test strings and some English.
    corpus = os.path.join(work, "corpus.txt")
    cases = cf.read_vocab_tests(os.path.join(data, "tokenizers/ggml-vocab-llama-spm.gguf"))
    with open(corpus, "w", encoding="utf-8") as f:
        for _ in range(20):
            for text, _ in cases:
                f.write(text.replace("\n", " ") + "\n")
            f.write("the quick brown fox jumps over the lazy dog while lockstep runs\n")
    prefix = os.path.join(work, "sp")
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=prefix, vocab_size=400,
                                   model_type="bpe", byte_fallback=True, minloglevel=2,
                                   character_coverage=1.0)
    with open(prefix + ".model", "rb") as f:
        data = f.read()
    sp = spm.SentencePieceProcessor(model_proto=data)
    cfg = small_config(sp.get_piece_size() + 12)  # embedding rows past the tokenizer: padding
    folder = os.path.join(work, "hf")
    cf.write_hf(folder, cfg, cf.random_weights(cfg, 2), "F16")
    with open(os.path.join(folder, "tokenizer.model"), "wb") as f:
        f.write(data)
    model = os.path.join(work, "model.h5")
    convert(lockstep, ["--from", "hf", folder], model)
    attrs, stored = stored_tokenizer(model)
    check(attrs is not None and attrs["kind"] == "sentencepiece", f"hf_model: {attrs}")
    check(stored == data, "hf_model: tokenizer.model not stored byte for byte")
    print(f"hf_model: tokenizer.model of {len(data)} bytes ({sp.get_piece_size()} pieces) "
          f"stored unchanged")


def case_run_text(lockstep, data, work):
    """`lockstep run` with text on the model converted from a GGUF with
    Meta's Llama vocabulary: prompts are the ids llama.cpp expects (plus BOS),
    "text" is the generated pieces' bytes, stop strings cut it, echo leads
    with the prompt."""
    vocab_file = os.path.join(data, "tokenizers/ggml-vocab-llama-spm.gguf")
    meta = cf.read_gguf_metadata(vocab_file, typed=True)
    tokens = meta["tokenizer.ggml.tokens"][1][1]
    types = meta["tokenizer.ggml.token_type"][1][1]
    cfg = small_config(len(tokens))
    path = os.path.join(work, "model.gguf")
    cf.write_gguf(path, cfg, cf.random_weights(cfg, 3), lambda n, k: "F32",
                  extra_kv=tokenizer_kv(meta))
    model = os.path.join(work, "model.h5")
    convert(lockstep, ["--from", "gguf", path], model)

    def piece_bytes(i):  # what a generated token adds to the text
        t = tokens[i]
        if types[i] == 3:  # control: <s>, </s>
            return b""
        if types[i] == 6:  # byte: <0x0A>
            return bytes([int(t[3:5], 16)])
        return t.replace("\u2581", " ").encode()

    cases = [(t, ids) for t, ids in cf.read_vocab_tests(vocab_file) if t.strip() and len(ids) < 40]
    requests = os.path.join(work, "requests.jsonl")
    results = os.path.join(work, "results.jsonl")

    def run(lines):
        with open(requests, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(json.dumps(line) + "\n")
        done = subprocess.run([lockstep, "run", "--model", model, "--input", requests,
                               "--output", results, "--no-progress", "--force"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"lockstep run: exit {done.returncode}: {done.stderr.strip()}")
        with open(results, encoding="utf-8") as f:
            return {r["id"]: r for r in map(json.loads, f)}

    greedy = {"max_tokens": 12, "temperature": 0, "ignore_eos": True}
    out = run([{"id": str(i), "prompt": t, **greedy} for i, (t, _) in enumerate(cases)]
              + [{"id": f"ids{i}", "prompt_tokens": [1] + ids, **greedy}
                 for i, (_, ids) in enumerate(cases)])
    stops = []
    for i, (text, ids) in enumerate(cases):
        r, r_ids = out[str(i)], out[f"ids{i}"]
        check(r["usage"]["prompt_tokens"] == len(ids) + 1,
              f"run_text: {text!r}: {r['usage']['prompt_tokens']} prompt tokens, "
              f"llama.cpp + BOS {len(ids) + 1}")
        check(r["tokens"] == r_ids["tokens"], f"run_text: {text!r}: text and ids prompts differ")
        want = b"".join(piece_bytes(t) for t in r["tokens"]).decode("utf-8", errors="replace")
        check(r["text"] == want, f"run_text: {text!r}: text {r['text']!r}, pieces {want!r}")
        # A stop string from the middle of the text, when it has one.
        printable = [c for c in want[3:] if c.isalnum()]
        if printable:
            stop = printable[0]
            stops.append((str(i), text, stop, want[:want.index(stop)]))
    check(len(stops) >= len(cases) // 2, f"run_text: only {len(stops)} texts with a stop string")
    out = run([{"id": i, "prompt": t, "stop": ["\u0001never", s], **greedy}
               for i, t, s, _ in stops]
              + [{"custom_id": "echo", "body": {"prompt": cases[0][0], "echo": True,
                                                 "max_tokens": 2}}])
    for i, text, stop, want in stops:
        check(out[i]["text"] == want and out[i]["finish_reason"] == "stop",
              f"run_text: {text!r} stop {stop!r}: {out[i]['text']!r} "
              f"({out[i]['finish_reason']}), want {want!r}")
    check(out["echo"]["text"].startswith(cases[0][0]), f"run_text: echo {out['echo']['text']!r}")
    print(f"run_text: {len(cases)} text prompts = llama.cpp ids + BOS; texts = pieces; "
          f"{len(stops)} stop strings cut")


CASES = {"llama2c_spm": case_llama2c_spm, "gguf_spm": case_gguf_spm,
         "gguf_gpt2": case_gguf_gpt2, "hf_json": case_hf_json, "hf_model": case_hf_model,
         "run_text": case_run_text}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lockstep", required=True)
    parser.add_argument("--data", required=True, help="tests/data of the checkout")
    parser.add_argument("--case", action="append")
    args = parser.parse_args()
    for name in args.case or list(CASES):
        with tempfile.TemporaryDirectory(prefix=f"convert_tok_{name}_") as work:
            try:
                CASES[name](args.lockstep, args.data, work)
            except RuntimeError as e:
                check(False, f"{name}: {e}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
