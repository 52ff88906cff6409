#!/usr/bin/python3
"""Writes a lockstep model file (f32, f16 or bf16 weights) as a GGUF that
llama.cpp loads: the same weights for a side-by-side benchmark or accuracy
study (benchmarks/RESULTS.md, "## quantized").

Matrices go out as F16 (--type f16) or F32; wq / wk rows are permuted from
model format v1's rotate-half layout into the interleaved one llama.cpp's
RoPE uses (the inverse of `lockstep convert --from gguf`), norms as F32. The
vocabulary (tokenizer.ggml.*) is copied from a GGUF vocab file (e.g.
tests/data/tokenizers/ggml-vocab-llama-spm.gguf, 32000 tokens).

  export_gguf.py MODEL.h5 OUT.gguf --vocab ggml-vocab-llama-spm.gguf [--type f16|f32]
"""
import argparse
import os
import struct
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "reference"))
import checkpoint_formats as cf  # noqa: E402


def half_to_interleaved(a, head_dim):
    """Rows of each head: lockstep's row c*head_dim/2 + j -> GGUF row 2j + c."""
    rows = a.shape[0]
    out = np.empty_like(a)
    half = head_dim // 2
    for h in range(rows // head_dim):
        src = a[h * head_dim:(h + 1) * head_dim]
        dst = out[h * head_dim:(h + 1) * head_dim]
        for c in range(2):
            for j in range(half):
                dst[2 * j + c] = src[c * half + j]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--type", default="f16", choices=["f16", "f32"])
    args = ap.parse_args()
    with h5py.File(args.model, "r") as f:
        a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        cfg = cf.Config(dim=int(a["hidden_size"]), ffn=int(a["intermediate_size"]),
                        layers=int(a["num_hidden_layers"]), heads=int(a["num_attention_heads"]),
                        kv_heads=int(a["num_key_value_heads"]), head_dim=int(a["head_dim"]),
                        vocab=int(a["vocab_size"]), eps=float(a["rms_norm_eps"]),
                        theta=float(a["rope_theta"]), max_pos=int(a["max_position_embeddings"]),
                        tied=bool(a["tie_word_embeddings"]))
        names = {"attn_norm": "attn_norm", "attn/wq": "attn_q", "attn/wk": "attn_k",
                 "attn/wv": "attn_v", "attn/wo": "attn_output", "ffn_norm": "ffn_norm",
                 "ffn/w_gate": "ffn_gate", "ffn/w_up": "ffn_up", "ffn/w_down": "ffn_down"}
        order = [("token_embd.weight", "/tok_embeddings")]
        for i in range(cfg.layers):
            for ours, theirs in names.items():
                order.append((f"blk.{i}.{theirs}.weight", f"/layers/{i}/{ours}"))
        order.append(("output_norm.weight", "/norm"))
        if not cfg.tied:
            order.append(("output.weight", "/lm_head"))
        tensors = []
        for gname, path in order:
            x = f[path][()].astype(np.float32)
            if path.endswith("/wq") or path.endswith("/wk"):
                x = half_to_interleaved(x, cfg.head_dim)
            if x.ndim == 1 or args.type == "f32":
                ttype, raw = cf.GGML_F32, x.tobytes()
            else:
                ttype, raw = cf.GGML_F16, x.astype(np.float16).tobytes()
            tensors.append((gname, ttype, list(reversed(x.shape)), raw))
    meta = cf.read_gguf_metadata(args.vocab, typed=True)
    vocab_kv = [(k, t, v) for k, (t, v) in meta.items() if k.startswith("tokenizer.")]
    kv = cf.gguf_llama_metadata(cfg, name="lockstep-export") + vocab_kv
    kv.append(("general.file_type", cf.GGUF_UINT32, 1 if args.type == "f16" else 0))
    with open(args.out, "wb") as out:
        out.write(cf.gguf_bytes(kv, tensors))
    print(f"wrote {args.out}: {len(tensors)} tensors")


if __name__ == "__main__":
    main()
