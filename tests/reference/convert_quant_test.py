#!/usr/bin/env python3
"""`lockstep convert --from gguf` with quantized tensors (docs/converting.md):

  q8_0      a GGUF of Q8_0 matrices converts to q8_0 by default, every block
            kept as it is (wq/wk rows permuted from the interleaved RoPE
            layout, blocks untouched), and the file is byte for byte the one
            `lockstep quantize` makes from the f32 conversion of the same GGUF
            (the blocks came from ggml's reference quantizer, which maps its
            own output onto itself);
  q4_0      the same for Q4_0;
  mixed     Q8_0 and Q4_0 matrices together: q8_0, the Q4_0 blocks widened
            exactly (same scale, same values);
  requant   Q8_0 with --dtype q4_0: the reference q4_0 blocks of the Q8_0
            values, and a warning that says it is lossy;
  f16       an F16 GGUF with --dtype q8_0: the reference blocks of the f16
            values;
  run       the converted q8_0 model runs and its greedy tokens and logits
            stay close to the float reference of the same (dequantized)
            weights: the loss of quantizing activations per block.
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
import quant_blocks  # noqa: E402

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}", file=sys.stderr)


def lockstep_run(lockstep, args):
    r = subprocess.run([lockstep] + args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: lockstep {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
    return r


def interleaved_to_half(blocks, head_dim):
    """The row permutation lockstep applies to wq / wk of a GGUF (whole rows)."""
    rows = blocks.shape[0]
    out = np.empty_like(blocks)
    half = head_dim // 2
    for h in range(rows // head_dim):
        src = blocks[h * head_dim:(h + 1) * head_dim]
        dst = out[h * head_dim:(h + 1) * head_dim]
        for c in range(2):
            for j in range(half):
                dst[c * half + j] = src[2 * j + c]
    return out


def gguf_blocks(cfg, w, types):
    """{model path: the GGUF's blocks (rows permuted as lockstep stores them)}."""
    out = {}
    for gname, key in cf.gguf_names(cfg):
        t = types(gname, key)
        if t not in ("Q8_0", "Q4_0"):
            continue
        blocks = quant_blocks.quantize(np.asarray(cf.lookup(w, key), np.float32), t.lower())
        if key[0] == "layers":
            path = f"/layers/{key[1]}/" + {"wq": "attn/wq", "wk": "attn/wk", "wv": "attn/wv",
                                           "wo": "attn/wo", "w_gate": "ffn/w_gate",
                                           "w_up": "ffn/w_up", "w_down": "ffn/w_down"}[key[2]]
            if key[2] in ("wq", "wk"):
                blocks = interleaved_to_half(blocks, cfg.head_dim)
        else:
            path = {"embed": "/tok_embeddings", "lm_head": "/lm_head"}[key[0]]
        out[path] = blocks
    return out


def uniform(t):
    return lambda n, k: "F32" if n.endswith("norm.weight") else t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lockstep", required=True)
    args = ap.parse_args()
    ls = args.lockstep
    cfg = cf.Config(dim=128, ffn=192, head_dim=16, heads=8, kv_heads=4)
    w = cf.random_weights(cfg, 5)
    with tempfile.TemporaryDirectory() as tmp:
        def convert(name, types, dtype=None):
            gguf = os.path.join(tmp, f"{name}.gguf")
            cf.write_gguf(gguf, cfg, w, types)
            out = os.path.join(tmp, f"{name}.h5")
            extra = ["--dtype", dtype] if dtype else []
            r = lockstep_run(ls, ["convert", "--from", "gguf", gguf, "--output", out,
                                  "--no-progress"] + extra)
            return gguf, out, r.stderr

        for t in ("Q8_0", "Q4_0"):
            gguf, out, _ = convert(t, uniform(t))
            expected = gguf_blocks(cfg, w, uniform(t))
            with h5py.File(out, "r") as f:
                wd = f.attrs["weight_dtype"]
                wd = wd.decode() if isinstance(wd, bytes) else wd
                check(wd == t.lower(), f"{t}: weight_dtype {wd}")
                for path, blocks in expected.items():
                    check(quant_blocks.same_blocks(f[path][()], blocks),
                          f"{t}: {path} blocks differ from the GGUF's")
            print(f"ok: {t} GGUF -> {t.lower()}: {len(expected)} matrices, every block kept")
            # The same bytes as quantizing the f32 conversion.
            f32 = os.path.join(tmp, f"{t}-f32.h5")
            lockstep_run(ls, ["convert", "--from", "gguf", gguf, "--output", f32, "--dtype", "f32",
                              "--no-progress"])
            requantized = os.path.join(tmp, f"{t}-requantized.h5")
            lockstep_run(ls, ["quantize", "--model", f32, "--type", t.lower(), "--output",
                              requantized, "--no-progress"])
            with open(out, "rb") as a, open(requantized, "rb") as b:
                check(a.read() == b.read(),
                      f"{t}: convert keeping blocks != quantize of the f32 conversion")
            print(f"ok: {t}: the same file as `lockstep quantize` of the f32 conversion")

        # Q8_0 and Q4_0 together: q8_0, Q4_0 blocks widened exactly.
        def mixed(n, k):
            if n.endswith("norm.weight"):
                return "F32"
            return "Q4_0" if ("ffn" in n or n == "token_embd.weight") else "Q8_0"
        _, out, _ = convert("mixed", mixed)
        expected = gguf_blocks(cfg, w, mixed)
        with h5py.File(out, "r") as f:
            for path, blocks in expected.items():
                got = f[path][()]
                check(quant_blocks.block_type(got.dtype) == "q8_0", f"mixed: {path} not q8_0")
                check(np.array_equal(quant_blocks.dequantize(got), quant_blocks.dequantize(blocks)),
                      f"mixed: {path} values changed")
                check(np.array_equal(got["d"].view(np.uint16), blocks["d"].view(np.uint16)),
                      f"mixed: {path} scales changed")
        print("ok: Q8_0 + Q4_0 -> q8_0, Q4_0 blocks widened without loss")

        # Q8_0 with --dtype q4_0: requantized (lossy, said so).
        _, out, err = convert("requant", uniform("Q8_0"), "q4_0")
        check("lossy" in err, f"requant: no lossy warning in {err!r}")
        q8 = gguf_blocks(cfg, w, uniform("Q8_0"))
        with h5py.File(out, "r") as f:
            for path, blocks in q8.items():
                want = quant_blocks.quantize_q4_0(quant_blocks.dequantize(blocks))
                check(quant_blocks.same_blocks(f[path][()], want), f"requant: {path}")
        print("ok: Q8_0 --dtype q4_0: reference q4_0 blocks of the Q8_0 values, with a warning")

        # F16 with --dtype q8_0.
        _, out, _ = convert("f16", uniform("F16"), "q8_0")
        with h5py.File(out, "r") as f:
            for gname, key in cf.gguf_names(cfg):
                if gname.endswith("norm.weight"):
                    continue
                path = {"token_embd.weight": "/tok_embeddings", "output.weight": "/lm_head"}.get(gname)
                if path is None:
                    continue
                a = np.asarray(cf.lookup(w, key), np.float32).astype(np.float16).astype(np.float32)
                check(quant_blocks.same_blocks(f[path][()], quant_blocks.quantize_q8_0(a)),
                      f"f16 -> q8_0: {path}")
        print("ok: F16 --dtype q8_0: reference blocks of the f16 values")

        # The q8_0 model runs, close to the float reference of its weights.
        gguf, out, _ = convert("Q8_0-run", uniform("Q8_0"))
        stored = cf.write_gguf(gguf, cfg, w, uniform("Q8_0"))
        requests = os.path.join(tmp, "req.jsonl")
        prompt = [1, 17, 33, 200, 5, 9]
        with open(requests, "w") as f:
            f.write(json.dumps({"id": "r", "prompt_tokens": prompt, "max_tokens": 4,
                                "temperature": 0, "ignore_eos": True}) + "\n")
        dump = os.path.join(tmp, "dump.jsonl")
        lockstep_run(ls, ["run", "--model", out, "--input", requests, "--output",
                          os.path.join(tmp, "res.jsonl"), "--dump-logits", dump, "--no-progress"])
        rows = sorted((json.loads(l) for l in open(dump)), key=lambda r: r["step"])
        got = np.array([r["logits"] for r in rows], np.float64)
        tokens, logits, _ = cf.generate(stored, cfg, prompt, 4, cf.ROPES["ggml"])
        rel = np.linalg.norm(got - logits) / np.linalg.norm(logits)
        print(f"q8_0 run: relative L2 of the logits against the float reference of the same "
              f"weights {rel:.2e}; tokens {[r['token'] for r in rows]} vs {tokens}")
        check(rel < 0.05, f"run: relative L2 {rel:.3g} >= 0.05")
        check(rows[0]["token"] == tokens[0], "run: first greedy token differs")
    if failures:
        print(f"{len(failures)} failure(s)", file=sys.stderr)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
