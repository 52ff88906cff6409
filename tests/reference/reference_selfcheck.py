#!/usr/bin/python3
"""Self-check of llama_reference.py (ctest label: reference).

The reference is what the C++ engine is judged against, so it is checked
here against itself and against the definitions it is written from:

  * decoding with the KV cache gives the logits of a full-sequence forward
    pass without cache, and of a prompt fed in two chunks;
  * RoPE equals its complex-number form (pair (x_i, x_{i+d/2}) times
    e^{i p theta^(-2i/d)}), keeps norms, and makes q.k depend only on the
    distance between positions;
  * grouped-query attention equals an explicit per-head loop in which query
    head h reads KV head h // (heads / kv_heads), with a causal mask;
  * RMSNorm and SwiGLU equal their one-line definitions;
  * synthetic models (lockstep synth) give spread, non-degenerate logits;
  * the command line writes the documented .npz layout and fails with one
    line on bad input;
  * the h5py converter recipe of docs/model-format.md, run as written on a
    Hugging Face style state dict, makes files (bf16 and f16, h5py's own
    attribute types) that `lockstep inspect` accepts and that hold the same
    weights.

  reference_selfcheck.py --lockstep path/to/lockstep
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402

REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "llama_reference.py")
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print(f"FAIL: {message}", file=sys.stderr)


def rel_diff(a, b):
    scale = max(float(torch.max(torch.abs(a))), float(torch.max(torch.abs(b))), 1e-300)
    return float(torch.max(torch.abs(a - b))) / scale


def synth(lockstep, workdir, name, args):
    path = os.path.join(workdir, name + ".h5")
    subprocess.run([lockstep, "synth", *args, "--output", path], check=True)
    return path


def check_incremental_equals_full(model, name, prompt, steps):
    tokens, rows, margins = model.generate(prompt, steps)
    check(len(tokens) == steps and rows.shape == (steps, model.vocab), f"{name}: shapes")
    # Full sequence, no cache: position p's logits predict token p + 1.
    sequence = prompt + tokens[:-1]
    full = model.forward(sequence, list(range(len(sequence))))
    full_rows = full[len(prompt) - 1:]
    d = rel_diff(full_rows, rows)
    check(d < 1e-12, f"{name}: KV-cache decode differs from full forward by {d:.3g}")
    # Prompt in two chunks through the cache, then the same decode.
    cache = model.new_cache()
    half = len(prompt) // 2
    model.forward(prompt[:half], list(range(half)), cache)
    last = model.forward(prompt[half:], list(range(half, len(prompt))), cache)[-1]
    d = rel_diff(last, rows[0])
    check(d < 1e-12, f"{name}: chunked prefill differs by {d:.3g}")
    # Greedy tokens are the argmax of their rows.
    check(all(int(torch.argmax(rows[i])) == tokens[i] for i in range(steps)), f"{name}: argmax")
    return tokens, rows, margins


def check_rope(model, name):
    d = model.head_dim
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 3, d, generator=g, dtype=torch.float64)
    positions = torch.tensor([0, 1, 7, 100, 511])
    rotated = model.rope(x, positions)
    # Complex form: element i pairs with element i + d/2.
    z = torch.complex(x[..., : d // 2], x[..., d // 2:])
    inv_freq = model.theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angle = positions.to(torch.float64)[:, None, None] * inv_freq
    w = z * torch.polar(torch.ones_like(angle), angle)
    expected = torch.cat([w.real, w.imag], dim=-1)
    check(rel_diff(rotated, expected) < 1e-13, f"{name}: RoPE differs from its complex form")
    check(torch.allclose(rotated.norm(dim=-1), x.norm(dim=-1), rtol=1e-13), f"{name}: RoPE norm")
    check(torch.equal(rotated[0], x[0]), f"{name}: RoPE at position 0 is not the identity")
    q, k = x[0, 0], x[1, 1]
    dot = lambda m, n: float(model.rope(q[None, None], torch.tensor([m]))[0, 0] @
                             model.rope(k[None, None], torch.tensor([n]))[0, 0])
    check(abs(dot(5, 2) - dot(13, 10)) < 1e-12 * abs(dot(5, 2)) + 1e-12,
          f"{name}: RoPE q.k depends on more than the distance")


def check_attention(model, name):
    g = torch.Generator().manual_seed(2)
    t, h, kv, d = 6, model.n_heads, model.n_kv, model.head_dim
    q = torch.randn(t, h, d, generator=g, dtype=torch.float64)
    k = torch.randn(t, kv, d, generator=g, dtype=torch.float64)
    v = torch.randn(t, kv, d, generator=g, dtype=torch.float64)
    pos = torch.arange(t)
    got = model.attention(q, k, v, pos, pos).reshape(t, h, d)
    group = h // kv
    for head in range(h):
        j = head // group
        for i in range(t):
            scores = torch.stack([q[i, head] @ k[s, j] for s in range(i + 1)]) / math.sqrt(d)
            weights = torch.exp(scores - scores.max())
            weights = weights / weights.sum()
            want = sum(weights[s] * v[s, j] for s in range(i + 1))
            if rel_diff(got[i, head], want) > 1e-13:
                check(False, f"{name}: attention head {head} query {i}")
                return


def check_norm_and_ffn(model, name):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 16, generator=g, dtype=torch.float64) * 3
    w = torch.randn(16, generator=g, dtype=torch.float64)
    want = torch.stack([x[i] / math.sqrt(float((x[i] ** 2).sum()) / 16 + model.eps) * w
                        for i in range(4)])
    check(rel_diff(model.rms_norm(x, w), want) < 1e-14, f"{name}: RMSNorm")
    silu = x / (1 + torch.exp(-x))
    check(rel_diff(silu, torch.nn.functional.silu(x)) < 1e-14, f"{name}: SiLU")


def check_not_degenerate(name, rows, tokens, vocab):
    std = float(rows.std(dim=-1).mean())
    check(0.3 < std < 30, f"{name}: logits std {std:.3g} out of range")
    probs = torch.softmax(rows, dim=-1)
    entropy = float(-(probs * torch.log(probs + 1e-300)).sum(dim=-1).mean())
    check(0.05 * math.log(vocab) < entropy < 0.999 * math.log(vocab),
          f"{name}: mean entropy {entropy:.3g} nats (vocab {vocab}) is degenerate")
    check(len(set(tokens)) >= 3, f"{name}: greedy tokens {tokens} are degenerate")
    print(f"{name}: logits std {std:.3f}, entropy {entropy:.3f} of {math.log(vocab):.3f} nats, "
          f"{len(set(tokens))} distinct of {len(tokens)} greedy tokens")


def check_command_line(path, workdir, model):
    requests = [{"id": "a", "prompt_tokens": [1, 5, 9, 2, 7], "steps": 6},
                {"id": 17, "prompt_tokens": [3], "steps": 1}]
    req_path = os.path.join(workdir, "requests.json")
    out_path = os.path.join(workdir, "out.npz")
    with open(req_path, "w") as f:
        json.dump(requests, f)
    result = subprocess.run([sys.executable, REFERENCE, "--model", path, "--requests", req_path,
                             "--output", out_path], capture_output=True, text=True)
    check(result.returncode == 0, f"command line failed: {result.stderr}")
    out = np.load(out_path)
    check(list(out["ids"]) == ["a", "17"], f"ids {list(out['ids'])}")
    for i, r in enumerate(requests):
        tokens, logits, margins = out[f"tokens_{i}"], out[f"logits_{i}"], out[f"margins_{i}"]
        n = r["steps"]
        check(tokens.shape == (n,) and tokens.dtype == np.int64, f"tokens_{i} {tokens.shape}")
        check(logits.shape == (n, model.vocab) and logits.dtype == np.float32, f"logits_{i}")
        check(margins.shape == (n,) and np.all(margins >= 0), f"margins_{i}")
        want_tokens, want_rows, _ = model.generate(r["prompt_tokens"], n)
        check(list(tokens) == want_tokens, f"request {i}: tokens differ from generate()")
        check(np.array_equal(logits, want_rows.numpy().astype(np.float32)),
              f"request {i}: logits are not the f32 rounding of generate()'s")
    # Bad input: one line on stderr, exit 1.
    with open(req_path, "w") as f:
        json.dump([{"id": "x", "prompt_tokens": [model.vocab + 3], "steps": 2}], f)
    result = subprocess.run([sys.executable, REFERENCE, "--model", path, "--requests", req_path,
                             "--output", out_path], capture_output=True, text=True)
    check(result.returncode == 1, "bad token id: want exit 1")
    check(len(result.stderr.strip().splitlines()) == 1 and "outside the vocabulary" in result.stderr,
          f"bad token id: stderr {result.stderr!r}")


DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                   "model-format.md")


def converter_from_doc():
    """The write_lockstep() recipe of docs/model-format.md, executed as written."""
    with open(DOC) as f:
        text = f.read()
    section = text[text.index("## Writing a converter with h5py"):]
    code = section[section.index("```python") + len("```python"):]
    code = code[:code.index("```")]
    namespace = {}
    exec(compile(code, DOC, "exec"), namespace)
    return namespace["write_lockstep"]


def check_h5py_converter(lockstep, workdir, model):
    """The doc's converter, fed a Hugging Face style state dict made from
    `model`, writes a file lockstep accepts, holding the same weights."""
    hf = {"model.embed_tokens.weight": model.w["/tok_embeddings"], "model.norm.weight": model.w["/norm"]}
    if not model.config["tie_word_embeddings"]:
        hf["lm_head.weight"] = model.w["/lm_head"]
    names = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
             "attn/wq": "self_attn.q_proj", "attn/wk": "self_attn.k_proj",
             "attn/wv": "self_attn.v_proj", "attn/wo": "self_attn.o_proj",
             "ffn/w_gate": "mlp.gate_proj", "ffn/w_up": "mlp.up_proj", "ffn/w_down": "mlp.down_proj"}
    for i in range(model.n_layers):
        for ours, theirs in names.items():
            hf[f"model.layers.{i}.{theirs}.weight"] = model.w[f"/layers/{i}/{ours}"].float()
    write_lockstep = converter_from_doc()
    for dtype in ("bf16", "f16"):
        target = os.path.join(workdir, f"converted-{dtype}.h5")
        write_lockstep(target, model.config, hf, dtype=dtype)
        result = subprocess.run([lockstep, "inspect", target], capture_output=True, text=True)
        check(result.returncode == 0, f"lockstep inspect refuses the doc converter's {dtype} "
              f"file: {result.stderr.strip()}")
        check(f"weight_dtype              {dtype}" in result.stdout, f"converted {dtype}: dtype")
        again = ref.load_model(target)
        for name, tensor in model.w.items():
            want = tensor
            if dtype == "f16" and not name.endswith("norm"):
                want = tensor.float().half().double()
            check(torch.equal(again.w[name], want), f"converted {dtype}: {name} differs")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lockstep", required=True, help="the built lockstep binary")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="lockstep_ref_") as workdir:
        hf = os.path.join(workdir, "config.json")
        with open(hf, "w") as f:
            # Tied embeddings, head_dim 32 != 96 / 4, rope_theta 500000, odd vocabulary.
            json.dump({"model_type": "llama", "hidden_size": 96, "intermediate_size": 160,
                       "num_hidden_layers": 3, "num_attention_heads": 4,
                       "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 257,
                       "rms_norm_eps": 1e-6, "rope_theta": 500000.0,
                       "max_position_embeddings": 256, "tie_word_embeddings": True}, f)
        models = [
            ("tiny-f32", ["--preset", "tiny", "--dtype", "f32", "--seed", "1"]),
            ("tiny-f16", ["--preset", "tiny", "--dtype", "f16", "--seed", "1"]),
            ("tied-bf16", ["--config", hf, "--dtype", "bf16", "--seed", "2"]),
        ]
        loaded = {}
        for name, synth_args in models:
            path = synth(args.lockstep, workdir, name, synth_args)
            model = ref.load_model(path)
            loaded[name] = (path, model)
            g = torch.Generator().manual_seed(len(name))
            prompt = torch.randint(0, model.vocab, (11,), generator=g).tolist()
            tokens, rows, _ = check_incremental_equals_full(model, name, prompt, 16)
            check_rope(model, name)
            check_attention(model, name)
            check_norm_and_ffn(model, name)
            check_not_degenerate(name, rows, tokens, model.vocab)
        # f16 weights are the f32 weights rounded: close logits, not equal ones.
        _, m32 = loaded["tiny-f32"]
        _, m16 = loaded["tiny-f16"]
        prompt = [1, 2, 3, 4]
        a = m32.forward(prompt, list(range(4)))
        b = m16.forward(prompt, list(range(4)))
        d = rel_diff(a, b)
        check(1e-7 < d < 1e-2, f"f16 vs f32 logits differ by {d:.3g}")
        check_command_line(loaded["tied-bf16"][0], workdir, loaded["tied-bf16"][1])
        check_h5py_converter(args.lockstep, workdir, loaded["tied-bf16"][1])
    if failures:
        print(f"reference self-check: {len(failures)} failure(s)", file=sys.stderr)
        return 1
    print("reference self-check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
