#!/usr/bin/python3
"""`lockstep convert` against each source format's own reference forward
(ctest label: reference).

For one case: write a small random checkpoint (checkpoint_formats.py), compute
greedy decoding with the reference forward of the source's own convention on
the weights as the source stores them, convert with `lockstep convert`, run
`lockstep run --dump-logits` on the converted model, and compare:

  * every step's logits: max |lockstep - reference| <= 1e-4 * max |reference|;
  * the greedy tokens: identical at every step;
  * the model file's weight_dtype (the default: the source's dtype where exact).

  convert_reference_test.py --lockstep path/to/lockstep --case NAME
  convert_reference_test.py --list
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint_formats as cf  # noqa: E402

PROMPTS = [[1, 17, 93, 5, 200], [1, 44, 8, 150, 61, 2, 99, 12, 7]]
STEPS = 6
TOLERANCE = 1e-4


def hf_case(dtype, shards=1, tied=False, convert_dtype=None, kv_heads=2, head_dim=16):
    def run(work, seed):
        cfg = cf.Config(tied=tied, kv_heads=kv_heads, head_dim=head_dim)
        w = cf.random_weights(cfg, seed)
        extra = [("model.layers.0.self_attn.rotary_emb.inv_freq", cf.inv_freq(cfg).numpy())]
        stored = cf.write_hf(os.path.join(work, "hf"), cfg, w, dtype, shards, extra)
        return cfg, stored, ["--from", "hf", os.path.join(work, "hf")], "hf", \
            {"F32": "f32", "F16": "f16", "BF16": "bf16"}[dtype]
    return run, convert_dtype


def llama2c_case(version, tied, convert_dtype=None):
    def run(work, seed):
        cfg = cf.Config(tied=tied, head_dim=16, heads=4, dim=64)
        w = cf.random_weights(cfg, seed)
        path = os.path.join(work, "model.bin")
        stored = cf.write_llama2c(path, cfg, w, version=version, group_size=64)
        return cfg, stored, ["--from", "llama2c", path], "meta", "f32"
    return run, convert_dtype


def gguf_case(types, expected_default, tied=False, convert_dtype=None, alignment=32):
    def run(work, seed):
        # GGUF stores eps as float32: the reference uses that value.
        cfg = cf.Config(tied=tied, eps=float(np.float32(1e-5)))
        w = cf.random_weights(cfg, seed)
        path = os.path.join(work, "model.gguf")
        stored = cf.write_gguf(path, cfg, w, types, alignment=alignment)
        return cfg, stored, ["--from", "gguf", path], "ggml", expected_default
    return run, convert_dtype


def mixed_types(name, key):
    """F32 norms, then every matrix type in turn (as llama.cpp's mixed quantisations do)."""
    if name.endswith("norm.weight"):
        return "F32"
    if name == "token_embd.weight":
        return "F16"
    if name == "output.weight":
        return "Q8_0"
    return {"wq": "Q8_0", "wk": "BF16", "wv": "F16", "wo": "F32", "w_gate": "Q8_0",
            "w_up": "BF16", "w_down": "Q8_0"}[key[2]]


CASES = {
    "hf_f32_sharded": hf_case("F32", shards=3),
    "hf_bf16_tied": hf_case("BF16", tied=True),
    "hf_f16": hf_case("F16"),
    "hf_f32_to_bf16": hf_case("F32", convert_dtype="bf16"),
    "hf_bf16_to_f16_mha": hf_case("BF16", convert_dtype="f16", kv_heads=4),
    "llama2c_v0": llama2c_case(0, tied=False),
    "llama2c_v0_shared": llama2c_case(0, tied=True),
    "llama2c_v1": llama2c_case(1, tied=True),
    "llama2c_v2_q8": llama2c_case(2, tied=False),
    "gguf_mixed_q8": gguf_case(mixed_types, "f32"),
    "gguf_f16_tied": gguf_case(lambda n, k: "F32" if n.endswith("norm.weight") else "F16", "f16",
                               tied=True, alignment=64),
    "gguf_q8_to_bf16": gguf_case(lambda n, k: "F32" if n.endswith("norm.weight") else "Q8_0",
                                 "f32", convert_dtype="bf16"),
}


def read_dump(path):
    by_id = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            by_id.setdefault(r["id"], []).append(r)
    out = {}
    for rid, rows in by_id.items():
        rows.sort(key=lambda r: r["step"])
        out[rid] = ([r["token"] for r in rows], np.array([r["logits"] for r in rows], np.float64))
    return out


def run_case(lockstep, name, seed=7):
    build, convert_dtype = CASES[name]
    failures = []
    with tempfile.TemporaryDirectory(prefix=f"convert_{name}_") as work:
        cfg, stored, source_args, rope, default_dtype = build(work, seed)
        model = os.path.join(work, "model.h5")
        cmd = [lockstep, "convert", *source_args, "--output", model, "--no-progress"]
        if convert_dtype:
            cmd += ["--dtype", convert_dtype]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            return [f"{name}: lockstep convert exited {done.returncode}: {done.stderr.strip()}"]
        want_dtype = convert_dtype or default_dtype
        with h5py.File(model, "r") as f:
            got_dtype = f.attrs["weight_dtype"]
            got_dtype = got_dtype.decode() if isinstance(got_dtype, bytes) else str(got_dtype)
        if got_dtype != want_dtype:
            failures.append(f"{name}: weight_dtype {got_dtype}, want {want_dtype}")
        # The reference sees what the model file stores: the source's values,
        # rounded to the output dtype when --dtype narrows them.
        reference_weights = cf.narrow_matrices(stored, want_dtype)

        requests = os.path.join(work, "requests.jsonl")
        with open(requests, "w") as f:
            for i, p in enumerate(PROMPTS):
                f.write(json.dumps({"id": f"r{i}", "prompt_tokens": p, "max_tokens": STEPS,
                                    "temperature": 0, "ignore_eos": True}) + "\n")
        dump = os.path.join(work, "dump.jsonl")
        run = subprocess.run([lockstep, "run", "--model", model, "--input", requests,
                              "--output", os.path.join(work, "results.jsonl"),
                              "--dump-logits", dump, "--no-progress"],
                             capture_output=True, text=True)
        if run.returncode != 0:
            return failures + [f"{name}: lockstep run exited {run.returncode}: {run.stderr.strip()}"]
        got = read_dump(dump)
        for i, prompt in enumerate(PROMPTS):
            tokens, logits, margins = cf.generate(reference_weights, cfg, prompt, STEPS,
                                                  cf.ROPES[rope])
            got_tokens, got_logits = got[f"r{i}"]
            scale = np.max(np.abs(logits))
            diff = np.max(np.abs(got_logits - logits))
            print(f"{name} r{i}: max|diff| {diff:.3g} = {diff / scale:.3g} x max|logit| "
                  f"({scale:.3g}); min margin {min(margins):.3g}; tokens {tokens}")
            if diff > TOLERANCE * scale:
                failures.append(f"{name} r{i}: logits differ by {diff:.3g} > "
                                f"{TOLERANCE} x {scale:.3g}")
            if got_tokens != tokens:
                failures.append(f"{name} r{i}: tokens {got_tokens}, reference {tokens}")
        # The converse: with the other rotary convention the reference must
        # disagree, so the comparison above really checks the pairing.
        other = "hf" if rope != "hf" else "meta"
        _, wrong, _ = cf.generate(reference_weights, cfg, PROMPTS[1], 2, cf.ROPES[other])
        wrong_diff = np.max(np.abs(got[f"r1"][1][:2] - wrong))
        if wrong_diff <= TOLERANCE * np.max(np.abs(wrong)):
            failures.append(f"{name}: the {other} rotary convention also matches; the test is blind")
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lockstep")
    parser.add_argument("--case", action="append", default=[])
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list:
        print("\n".join(CASES))
        return 0
    failures = []
    for name in args.case or list(CASES):
        failures += run_case(args.lockstep, name)
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
