#!/usr/bin/env python3
"""Quantized model files (docs/model-format.md, "Quantized tensors") read and
written by h5py + numpy, against lockstep:

1. `lockstep synth --dtype q8_0|q4_0` stores, for every matrix, exactly the
   blocks the Python reference quantizer (quant_blocks.py, ggml's reference
   quantizer) makes from the f32 model of the same seed; the reference
   dequantizer reads them back, and norms stay f32.
2. `lockstep quantize` of the f32 model gives the same file, byte for byte, as
   `lockstep synth --dtype` of the same seed; of the bf16 model, the blocks of
   the bf16 values; q4_0 -> q8_0 widens exactly, q8_0 -> q8_0 copies.
3. A q8_0 / q4_0 file written by h5py alone (numpy compound dtypes, no chunks)
   is accepted by lockstep and gives the same logits as lockstep's own file.
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
import quant_blocks  # noqa: E402

MATRICES = ("attn/wq", "attn/wk", "attn/wv", "attn/wo", "ffn/w_gate", "ffn/w_up", "ffn/w_down")


def run(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(args)} exited {r.returncode}\n{r.stderr}")
    return r


def matrix_paths(f):
    paths = ["/tok_embeddings"]
    for i in range(int(f.attrs["num_hidden_layers"])):
        paths += [f"/layers/{i}/{m}" for m in MATRICES]
    if "/lm_head" in f:
        paths.append("/lm_head")
    return paths


def check_blocks_match_reference(f32_path, q_path, dtype):
    with h5py.File(f32_path, "r") as f, h5py.File(q_path, "r") as q:
        wd = q.attrs["weight_dtype"]
        assert (wd.decode() if isinstance(wd, bytes) else wd) == dtype, wd
        for path in matrix_paths(f):
            x = f[path][()].astype(np.float32)
            stored = q[path][()]
            assert quant_blocks.block_type(q[path]) == dtype, (path, q[path].dtype)
            assert stored.shape == (x.shape[0], x.shape[1] // 32), (path, stored.shape)
            expected = quant_blocks.quantize(x, dtype)
            if not quant_blocks.same_blocks(stored, expected):
                bad = np.argwhere((stored["d"].view(np.uint16) != expected["d"].view(np.uint16))
                                  | (stored["qs"] != expected["qs"]).any(axis=-1))
                sys.exit(f"FAIL: {q_path}{path}: {len(bad)} blocks differ from the reference "
                         f"quantizer, first {bad[0].tolist()}")
            w = quant_blocks.read_matrix(q, path)
            assert w.shape == x.shape and w.dtype == np.float32
            # The dequantized values are within about half a step of the
            # originals (q4_0: a whole step where the positive end saturates
            # at 7; plus the f16 rounding of the scale).
            step = np.repeat(np.abs(stored["d"].astype(np.float32)), 32, axis=-1)
            limit = step * (0.6 if dtype == "q8_0" else 1.1)
            assert (np.abs(w - x) <= limit + 1e-6 * np.abs(x)).all(), path
        for i in range(int(f.attrs["num_hidden_layers"])):
            for norm in ("attn_norm", "ffn_norm"):
                assert q[f"/layers/{i}/{norm}"].dtype == np.float32
        print(f"ok: {q_path}: {len(matrix_paths(f))} matrices are the reference {dtype} blocks")


def write_with_h5py(src, dst):
    """Copies a lockstep model into a new file using h5py only: attributes,
    contiguous datasets with numpy dtypes (the q8_0 / q4_0 compounds for the
    matrices), format attributes last."""
    with h5py.File(src, "r") as s, h5py.File(dst, "w") as d:
        def copy(name, obj):
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                kind = quant_blocks.block_type(obj)
                if kind is not None:
                    data = data.astype(quant_blocks.Q8_0 if kind == "q8_0" else quant_blocks.Q4_0)
                d.create_dataset(name, data=data)
        s.visititems(copy)
        for k, v in s.attrs.items():
            if k not in ("format", "format_version", "manifest_sha256"):  # h5py writes no checksums
                d.attrs[k] = v
        d.attrs["format_version"] = 1
        d.attrs["format"] = "lockstep-model"


def logits_hash(lockstep, model, tmp):
    requests = os.path.join(tmp, "req.jsonl")
    out = model + ".results.jsonl"
    with open(requests, "w") as f:
        f.write(json.dumps({"id": "a", "prompt_tokens": [1, 15, 27, 99, 3], "max_tokens": 6,
                            "temperature": 0}) + "\n")
    run([lockstep, "run", "--model", model, "--input", requests, "--output", out,
         "--hash-logits"])
    with open(out) as f:
        r = json.loads(f.readline())
    return r["tokens"], r["logits_sha256"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lockstep", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        def synth(dtype, name=None):
            path = os.path.join(tmp, name or f"tiny-{dtype}.h5")
            run([args.lockstep, "synth", "--preset", "tiny", "--dtype", dtype, "--seed", "3",
                 "--output", path])
            return path

        f32, bf16 = synth("f32"), synth("bf16")
        for dtype in ("q8_0", "q4_0"):
            q = synth(dtype)
            check_blocks_match_reference(f32, q, dtype)
            # quantize of the f32 file == synth of the same seed, byte for byte.
            quantized = os.path.join(tmp, f"quantized-{dtype}.h5")
            run([args.lockstep, "quantize", "--model", f32, "--type", dtype, "--output",
                 quantized, "--no-progress"])
            with open(q, "rb") as a, open(quantized, "rb") as b:
                if a.read() != b.read():
                    sys.exit(f"FAIL: lockstep quantize of {f32} differs from synth --dtype {dtype}")
            print(f"ok: lockstep quantize --type {dtype} of the f32 model == synth --dtype {dtype}")
            # quantize of the bf16 file: the blocks of the bf16 values.
            from_bf16 = os.path.join(tmp, f"from-bf16-{dtype}.h5")
            run([args.lockstep, "quantize", "--model", bf16, "--type", dtype, "--output",
                 from_bf16, "--no-progress"])
            check_blocks_match_reference(bf16, from_bf16, dtype)
            # A file h5py wrote alone: accepted, same logits.
            plain = os.path.join(tmp, f"h5py-{dtype}.h5")
            write_with_h5py(q, plain)
            ours = logits_hash(args.lockstep, q, tmp)
            theirs = logits_hash(args.lockstep, plain, tmp)
            if ours != theirs:
                sys.exit(f"FAIL: the h5py-written {dtype} file gives {theirs}, lockstep's {ours}")
            print(f"ok: a {dtype} file written by h5py alone runs with the same logits hash")

        # q4_0 -> q8_0 widens exactly; q8_0 -> q8_0 copies.
        q4 = os.path.join(tmp, "tiny-q4_0.h5")
        widened = os.path.join(tmp, "widened.h5")
        run([args.lockstep, "quantize", "--model", q4, "--type", "q8_0", "--output", widened,
             "--no-progress"])
        with h5py.File(q4, "r") as a, h5py.File(widened, "r") as b:
            for path in matrix_paths(a):
                assert quant_blocks.block_type(b[path]) == "q8_0"
                assert np.array_equal(quant_blocks.read_matrix(a, path),
                                      quant_blocks.read_matrix(b, path)), path
                assert np.array_equal(a[path]["d"].view(np.uint16), b[path]["d"].view(np.uint16))
        print("ok: q4_0 -> q8_0 keeps every value and scale")
        q8 = os.path.join(tmp, "tiny-q8_0.h5")
        copied = os.path.join(tmp, "copied.h5")
        run([args.lockstep, "quantize", "--model", q8, "--type", "q8_0", "--output", copied,
             "--no-progress"])
        with open(q8, "rb") as a, open(copied, "rb") as b:
            assert a.read() == b.read(), "q8_0 -> q8_0 is not a copy"
        print("ok: q8_0 -> q8_0 is a byte-for-byte copy")
    print("PASS")


if __name__ == "__main__":
    main()
