#!/usr/bin/python3
"""Peak memory of `lockstep convert` against the size of the largest tensor
(ctest label: unit).

Writes a Hugging Face checkpoint whose embedding dominates (vocab x hidden
bf16, 128 MiB as f32), converts it, and compares the peak resident memory of
the convert process (ru_maxrss of the child) with the same command on a
small model (the baseline: the binary, its libraries, HDF5 and TBB).
The converter works in row blocks, so the growth must stay well below the
contract of twice the largest tensor; the figures are printed for
docs/converting.md.

  convert_memory_test.py --lockstep path/to/lockstep [--vocab N --dim N]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint_formats as cf  # noqa: E402


def write_checkpoint(folder, cfg):
    """Fast random weights (numpy) in bf16: the converter's memory does not
    depend on the values."""
    rng = np.random.default_rng(1)
    os.makedirs(folder)
    import json
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cf.hf_config(cfg), f)
    entries = []
    for name, key in cf.hf_names(cfg):
        shape = {"embed": (cfg.vocab, cfg.dim), "lm_head": (cfg.vocab, cfg.dim),
                 "norm": (cfg.dim,)}.get(key[0])
        if shape is None:
            shape = {"attn_norm": (cfg.dim,), "ffn_norm": (cfg.dim,),
                     "wq": (cfg.q_dim, cfg.dim), "wk": (cfg.kv_dim, cfg.dim),
                     "wv": (cfg.kv_dim, cfg.dim), "wo": (cfg.dim, cfg.q_dim),
                     "w_gate": (cfg.ffn, cfg.dim), "w_up": (cfg.ffn, cfg.dim),
                     "w_down": (cfg.dim, cfg.ffn)}[key[2]]
        bits = cf.f32_to_bf16_bits(rng.standard_normal(shape, dtype=np.float32) * 0.02)
        entries.append((name, "BF16", shape, bits.tobytes()))
    cf.write_safetensors(os.path.join(folder, "model.safetensors"), entries)


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
        write_checkpoint(os.path.join(work, "small"), small)
        write_checkpoint(os.path.join(work, "big"), big)
        results = {}
        for name in ("small", "big"):
            for dtype in ("bf16", "f32"):
                results[name, dtype] = peak_rss_of(
                    [args.lockstep, "convert", "--from", "hf", os.path.join(work, name),
                     "--output", os.path.join(work, f"{name}_{dtype}.h5"), "--dtype", dtype,
                     "--no-progress"])
        largest = big.vocab * big.dim * 4  # the embedding, as f32
        failures = 0
        for dtype in ("bf16", "f32"):
            growth = results["big", dtype] - results["small", dtype]
            print(f"--dtype {dtype}: peak RSS {results['big', dtype] / 2**20:.1f} MiB "
                  f"(baseline {results['small', dtype] / 2**20:.1f} MiB, growth "
                  f"{growth / 2**20:.1f} MiB) for a largest tensor of {largest / 2**20:.0f} MiB "
                  f"as f32: growth = {growth / largest:.2f} x largest")
            if growth > 2 * largest:
                print(f"FAIL: --dtype {dtype}: memory grew by more than twice the largest tensor",
                      file=sys.stderr)
                failures += 1
            if growth > largest // 2:
                print(f"FAIL: --dtype {dtype}: row blocks should keep growth under half the "
                      f"largest tensor", file=sys.stderr)
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
