#!/usr/bin/python3
"""Peak memory of `lockstep convert` against the size of the largest tensor
(ctest label: unit).

Writes a Hugging Face checkpoint (bf16) and a GGUF (f16 embedding, Q8_0
matrices) whose embedding dominates (32768 x 1024, 128 MiB as f32), converts
them, and compares the peak resident memory of
the convert process (ru_maxrss of the child) with the same command on a
small model (the baseline: the binary, its libraries, HDF5 and TBB).
The converter works in row blocks, so the growth must stay well below the
contract of twice the largest tensor; the figures are printed for
docs/converting.md.

  convert_memory_test.py --lockstep path/to/lockstep [--vocab N --dim N]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint_formats as cf  # noqa: E402


def fast_weights(cfg):
    """Random weights from numpy (fast at this size): the converter's memory
    does not depend on the values."""
    rng = np.random.default_rng(1)

    def normal(*shape):
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
    d, f = cfg.dim, cfg.ffn
    return {"embed": normal(cfg.vocab, d), "norm": normal(d) + 1,
            "layers": [{"attn_norm": normal(d) + 1, "wq": normal(cfg.q_dim, d),
                        "wk": normal(cfg.kv_dim, d), "wv": normal(cfg.kv_dim, d),
                        "wo": normal(d, cfg.q_dim), "ffn_norm": normal(d) + 1,
                        "w_gate": normal(f, d), "w_up": normal(f, d), "w_down": normal(d, f)}
                       for _ in range(cfg.layers)]}


def write_checkpoint(work, name, cfg, fmt):
    """A bf16 Hugging Face folder, or a GGUF with an f16 embedding and Q8_0
    matrices. Returns the `lockstep convert` source arguments."""
    w = fast_weights(cfg)
    if fmt == "hf":
        folder = os.path.join(work, name)
        os.makedirs(folder)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cf.hf_config(cfg), f)
        entries = []
        for tname, key in cf.hf_names(cfg):
            a = cf.lookup(w, key)
            bits = (a.view(np.uint32) >> 16).astype(np.uint16)  # bf16 by truncation: fast
            entries.append((tname, "BF16", a.shape, bits.tobytes()))
        cf.write_safetensors(os.path.join(folder, "model.safetensors"), entries)
        return ["--from", "hf", folder]
    tensors = []
    for tname, key in cf.gguf_names(cfg):
        a = cf.lookup(w, key)
        if tname.endswith("norm.weight"):
            ttype, raw = cf.GGML_F32, a.tobytes()
        elif tname == "token_embd.weight":
            ttype, raw = cf.GGML_F16, a.astype(np.float16).tobytes()
        else:
            ttype, raw = cf.GGML_Q8_0, cf.q8_0_encode(a)[0]
        tensors.append((tname, ttype, list(reversed(a.shape)), raw))
    path = os.path.join(work, name + ".gguf")
    with open(path, "wb") as f:
        f.write(cf.gguf_bytes(cf.gguf_llama_metadata(cfg, quantized=True), tensors))
    return ["--from", "gguf", path]


def peak_rss_of(cmd):
    """Runs cmd and returns the peak RSS in bytes that `lockstep convert`
    reports for itself (its VmHWM; a child's ru_maxrss would include the RSS
    of this Python process at fork time)."""
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr}")
    match = re.search(r"peak memory ([0-9.]+) MiB", done.stderr)
    if not match:
        raise RuntimeError(f"no peak memory line in: {done.stderr}")
    return float(match.group(1)) * 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lockstep", required=True)
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--dim", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="convert_memory_") as work:
        small = cf.Config(dim=64, vocab=256, tied=True)
        big = cf.Config(dim=args.dim, vocab=args.vocab, ffn=args.dim * 2, layers=1, heads=8,
                        kv_heads=8, head_dim=args.dim // 8, tied=True)
        largest = big.vocab * big.dim * 4  # the embedding, as f32
        failures = 0
        for fmt in ("hf", "gguf"):
            sources = {name: write_checkpoint(work, f"{fmt}_{name}", cfg, fmt)
                       for name, cfg in (("small", small), ("big", big))}
            results = {}
            for name in ("small", "big"):
                for dtype in ("bf16", "f32"):
                    output = os.path.join(work, f"{fmt}_{name}_{dtype}.h5")
                    results[name, dtype] = peak_rss_of(
                        [args.lockstep, "convert", *sources[name], "--output", output,
                         "--dtype", dtype, "--no-progress"])
                    os.remove(output)
            for dtype in ("bf16", "f32"):
                growth = results["big", dtype] - results["small", dtype]
                print(f"{fmt} -> {dtype}: peak RSS {results['big', dtype] / 2**20:.1f} MiB "
                      f"(baseline {results['small', dtype] / 2**20:.1f} MiB, growth "
                      f"{growth / 2**20:.1f} MiB) for a largest tensor of "
                      f"{largest / 2**20:.0f} MiB as f32: growth = {growth / largest:.2f} x "
                      f"largest")
                if growth > 2 * largest:
                    print(f"FAIL: {fmt} -> {dtype}: memory grew by more than twice the largest "
                          f"tensor", file=sys.stderr)
                    failures += 1
                if growth > largest // 2:
                    print(f"FAIL: {fmt} -> {dtype}: row blocks should keep growth under half the "
                          f"largest tensor", file=sys.stderr)
                    failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
