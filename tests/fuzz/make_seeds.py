#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

Run once by hand when a format changes; the seeds are committed. Everything
is made here from nothing but lockstep itself and the test helpers:

    python3 tests/fuzz/make_seeds.py build/release/launch/lockstep

The checkpoints come from tests/reference/checkpoint_formats.py (a 1-layer
model of width 32), the SentencePiece model from the sentencepiece Python
package trained on a few sentences, the model file and the plan from the
`lockstep` binary given.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import checkpoint_formats as cf  # noqa: E402


def out(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    mode = "w" if isinstance(data, str) else "wb"
    with open(os.path.join(folder, name), mode) as f:
        f.write(data)


def main():
    lockstep = sys.argv[1]
    cfg = cf.Config(dim=32, ffn=64, layers=1, heads=2, kv_heads=1, head_dim=16, vocab=32,
                    max_pos=64)
    w = cf.random_weights(cfg, 1)
    work = tempfile.mkdtemp()

    # Request lines: both forms, text, stop strings, and typical mistakes.
    out("request_line", "forms.jsonl", "\n".join([
        '{"id": "a", "prompt_tokens": [1, 15, 27], "max_tokens": 16, "temperature": 0}',
        '{"custom_id": "b", "method": "POST", "url": "/v1/completions", "body": {"prompt": '
        '[1, 2], "max_tokens": 8, "temperature": 0.8, "top_p": 0.9, "seed": 7, "stop": ["\\n"]}}',
        '{"id": 7, "prompt": "Once upon a time", "stop": "x", "echo": true, "top_k": -1}',
        '{"id": "c", "prompt_tokens": [1], "stop_token_ids": [2, 3], "ignore_eos": true}',
    ]) + "\n")
    out("request_line", "mistakes.jsonl", "\n".join([
        '{"id": "a", "prompt_tokens": [1], "temprature": 0}',
        '{"id": "b", "prompt_tokens": [1], "temperature": 1e400}',
        '{"id": "c", "prompt_tokens": [1, 2.5, -3, 4294967296]}',
        '{"custom_id": "d", "body": {"prompt": [[1], [2]], "n": 2}}',
        '{"id": "\\ud800", "prompt": "caf\\u00e9"}',
        '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
        '{"id": "e", "prompt_tokens": [1], "max_tokens": 99999999999999999999}',
    ]) + "\n")

    # GGUF: f32 and Q8_0 tensors, llama metadata.
    for name, types in (("f32", lambda n, k: "F32"),
                        ("q8_0", lambda n, k: "F32" if n.endswith("norm.weight") else "Q8_0")):
        path = os.path.join(work, name + ".gguf")
        cf.write_gguf(path, cfg, w, types)
        out("gguf", name + ".gguf", open(path, "rb").read())

    # safetensors: the Hugging Face checkpoint's file.
    folder = os.path.join(work, "hf")
    cf.write_hf(folder, cfg, w, dtype="BF16")
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            out("safetensors", f, open(os.path.join(folder, f), "rb").read())

    # llama2.c: the legacy format and version 2 (Q8_0 groups).
    for version in (0, 2):
        path = os.path.join(work, f"v{version}.bin")
        cf.write_llama2c(path, cfg, w, version=version, group_size=32)
        out("llama2c", f"v{version}.bin", open(path, "rb").read())

    # tokenizer.json: a byte-level BPE with merges, added tokens, a template.
    vocab = {chr(c): i for i, c in enumerate(range(ord("a"), ord("z") + 1))}
    vocab.update({"Ġ": 26, "he": 27, "ll": 28, "hell": 29, "<s>": 30, "</s>": 31})
    out("tokenizer_json", "bpe.json", json.dumps({
        "version": "1.0",
        "added_tokens": [{"id": 30, "content": "<s>", "special": True, "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False},
                         {"id": 31, "content": "</s>", "special": True, "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False}],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [30],
                                                                  "tokens": ["<s>"]}}},
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": vocab, "merges": ["h e", "l l", "he ll"],
                  "byte_fallback": False, "ignore_merges": False},
    }, indent=1))

    # tokenizer.model: SentencePiece (BPE and unigram), identity normalizer.
    import sentencepiece as spm
    text = os.path.join(work, "text.txt")
    with open(text, "w") as f:
        f.write("Once upon a time there was a little model.\nIt split itself over many chips.\n"
                "The same request gave the same bits on every one of them.\n" * 4)
    for model_type in ("bpe", "unigram"):
        prefix = os.path.join(work, model_type)
        spm.SentencePieceTrainer.train(
            input=text, model_prefix=prefix, vocab_size=300, model_type=model_type,
            normalization_rule_name="identity", byte_fallback=True, minloglevel=2)
        out("tokenizer_model", model_type + ".model", open(prefix + ".model", "rb").read())

    # A model file (with its tokenizer) and a plan for it, from lockstep.
    config = os.path.join(work, "config.json")
    with open(config, "w") as f:
        json.dump({"model_type": "llama", "hidden_size": 16, "intermediate_size": 32,
                   "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                   "vocab_size": 320, "max_position_embeddings": 64}, f)
    model = os.path.join(work, "micro.h5")
    subprocess.run([lockstep, "synth", "--config", config, "--dtype", "bf16", "--output", model,
                    "--tokenizer", os.path.join(HERE, "corpus", "tokenizer_model", "bpe.model")],
                   check=True)
    out("model_file", "micro.h5", open(model, "rb").read())
    plan = os.path.join(work, "plan.json")
    subprocess.run([lockstep, "plan", "--model", model, "--chip", "h100-nvlink", "--chips", "2",
                    "--tp", "2", "--pp", "1", "--batch", "2", "--prompt-length", "16",
                    "--generate", "16", "--output", plan, "--quiet"],
                   check=True)
    text = open(plan).read()
    out("plan", "micro_tp2.json", text)
    out("cluster_spec", "h100_2.json", json.dumps(json.loads(text)["inputs"]["cluster"], indent=1))


if __name__ == "__main__":
    main()
