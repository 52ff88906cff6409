#!/usr/bin/python3
"""An independent Llama reference in plain PyTorch, computing in float64.

It reads a lockstep model file (docs/model-format.md) with h5py and runs the
Llama forward pass written from the published math (Touvron et al. 2023 and
Hugging Face's modeling_llama.py), sharing no code with the C++ runtime:

  x      = tok_embeddings[tokens]
  per layer:
    h    = RMSNorm(x) * attn_norm          RMSNorm(x) = x / sqrt(mean(x^2) + eps)
    q, k, v = h wq^T, h wk^T, h wv^T       heads of head_dim; k, v have
                                           num_key_value_heads heads (GQA)
    q, k = RoPE(q), RoPE(k)                rotate-half pairing (element i with
                                           i + head_dim/2), angle p * theta^(-2i/head_dim)
    a    = softmax(q k^T / sqrt(head_dim) + causal mask) v
                                           KV head j serves query heads
                                           j*g .. j*g+g-1, g = heads / kv_heads
    x    = x + a wo^T
    h    = RMSNorm(x) * ffn_norm
    x    = x + (silu(h w_gate^T) * (h w_up^T)) w_down^T
  logits = (RMSNorm(x) * norm) lm_head^T   (lm_head = tok_embeddings if tied)

Weights are widened to float64 exactly (bf16 from its raw bits, f16 and f32
by numpy); every operation runs in float64.

Command line (used by the engine's end-to-end tests):

  llama_reference.py --model M.h5 --requests R.json --output OUT.npz

R.json is a JSON list of requests {"id": ..., "prompt_tokens": [...],
"steps": N} with N >= 1. For each request the reference runs the prompt, then
decodes greedily with a KV cache: step 0's logits are those of the last
prompt position, and step s > 0 feeds back the token chosen at step s-1.
Greedy choice: argmax of the float64 logits, ties to the lowest token id.

OUT.npz (numpy.savez, uncompressed) holds, for requests numbered i = 0, 1, ...
in the order of R.json:

  ids            [R]         str      the request ids (JSON value as text
                                      if not a string)
  tokens_<i>     [N]         int64    the N greedy tokens
  logits_<i>     [N, vocab]  float32  each step's logits, rounded from float64
  margins_<i>    [N]         float64  top-1 minus top-2 logit of each step
                                      (small margins flag near-ties, where a
                                      float32 implementation may pick otherwise)

The module can also be imported: load_model(), Llama.forward(),
Llama.generate().
"""

import argparse
import json
import math
import sys

import h5py
import numpy as np
import torch

FORMAT = "lockstep-model"
FORMAT_VERSION = 1


def _attr(f, name):
    value = f.attrs[name]
    if isinstance(value, bytes):
        return value.decode("ascii")
    if isinstance(value, np.ndarray) and value.shape in ((), (1,)):
        value = value.reshape(()).item()
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("ascii")
    return value


def _read_tensor(ds):
    """A dataset as a float64 numpy array, widened exactly."""
    tid = ds.id.get_type()
    if tid.get_class() != h5py.h5t.FLOAT:
        raise ValueError(f"{ds.name}: not a float dataset")
    size = tid.get_size()
    spos, epos, esize, mpos, msize = tid.get_fields()
    if size == 2 and esize == 8 and msize == 7:
        # bfloat16: the upper 16 bits of an IEEE float32.
        raw = np.empty(ds.shape, dtype=np.uint16)
        ds.id.read(h5py.h5s.ALL, h5py.h5s.ALL, raw, mtype=tid)
        return (raw.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if size == 2 and esize == 5 and msize == 10:
        return ds[()].astype(np.float16).astype(np.float64)
    if size == 4 and esize == 8 and msize == 23:
        return ds[()].astype(np.float32).astype(np.float64)
    raise ValueError(f"{ds.name}: unsupported float layout {size} bytes, e{esize} m{msize}")


class Llama:
    """Weights and config of a lockstep model file, as float64 tensors."""

    def __init__(self, config, weights):
        self.config = config
        self.w = weights
        c = config
        self.n_heads = c["num_attention_heads"]
        self.n_kv = c["num_key_value_heads"]
        self.head_dim = c["head_dim"]
        self.eps = c["rms_norm_eps"]
        self.theta = c["rope_theta"]
        self.n_layers = c["num_hidden_layers"]
        self.vocab = c["vocab_size"]
        self.lm_head = weights["/tok_embeddings"] if c["tie_word_embeddings"] else weights["/lm_head"]

    # -- building blocks, each written from its definition -----------------

    def rms_norm(self, x, weight):
        return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + self.eps) * weight

    def rope(self, x, positions):
        """x: [T, heads, head_dim]; rotate-half pairing (HF rotate_half)."""
        d = self.head_dim
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]  # [T, d/2]
        cos = torch.cat([angles.cos(), angles.cos()], dim=-1)[:, None, :]
        sin = torch.cat([angles.sin(), angles.sin()], dim=-1)[:, None, :]
        x1, x2 = x[..., : d // 2], x[..., d // 2:]
        rotated = torch.cat([-x2, x1], dim=-1)
        return x * cos + rotated * sin

    def attention(self, q, k, v, q_positions, k_positions):
        """q: [T, H, D]; k, v: [S, KV, D] -> [T, H*D], causal by position."""
        group = self.n_heads // self.n_kv
        k = k.repeat_interleave(group, dim=1)  # KV head j -> query heads j*g .. j*g+g-1
        v = v.repeat_interleave(group, dim=1)
        scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(self.head_dim)
        mask = k_positions[None, :] > q_positions[:, None]  # [T, S]: future keys
        scores = scores.masked_fill(mask[None, :, :], float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        out = torch.einsum("hts,shd->thd", probs, v)
        return out.reshape(out.shape[0], self.n_heads * self.head_dim)

    # -- the model ---------------------------------------------------------

    def forward(self, tokens, positions, cache=None):
        """Logits [T, vocab] for `tokens` at `positions`.

        cache: None (no history) or a list of per-layer dicts {"k", "v",
        "pos"} that this call extends with the new keys and values.
        """
        w = self.w
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        positions = torch.as_tensor(positions, dtype=torch.long)
        t = tokens.shape[0]
        x = w["/tok_embeddings"][tokens]
        for layer in range(self.n_layers):
            p = f"/layers/{layer}/"
            h = self.rms_norm(x, w[p + "attn_norm"])
            q = (h @ w[p + "attn/wq"].T).reshape(t, self.n_heads, self.head_dim)
            k = (h @ w[p + "attn/wk"].T).reshape(t, self.n_kv, self.head_dim)
            v = (h @ w[p + "attn/wv"].T).reshape(t, self.n_kv, self.head_dim)
            q = self.rope(q, positions)
            k = self.rope(k, positions)
            k_all, v_all, k_pos = k, v, positions
            if cache is not None:
                entry = cache[layer]
                if entry["k"] is not None:
                    k_all = torch.cat([entry["k"], k])
                    v_all = torch.cat([entry["v"], v])
                    k_pos = torch.cat([entry["pos"], positions])
                entry["k"], entry["v"], entry["pos"] = k_all, v_all, k_pos
            x = x + self.attention(q, k_all, v_all, positions, k_pos) @ w[p + "attn/wo"].T
            h = self.rms_norm(x, w[p + "ffn_norm"])
            gate = h @ w[p + "ffn/w_gate"].T
            up = h @ w[p + "ffn/w_up"].T
            silu = gate / (1.0 + torch.exp(-gate))
            x = x + (silu * up) @ w[p + "ffn/w_down"].T
        x = self.rms_norm(x, w["/norm"])
        return x @ self.lm_head.T

    def new_cache(self):
        return [{"k": None, "v": None, "pos": None} for _ in range(self.n_layers)]

    @staticmethod
    def greedy(logits_row):
        """Argmax with ties to the lowest id, and the top-1 minus top-2 margin."""
        top = torch.max(logits_row)
        ties = torch.nonzero(logits_row == top).flatten()
        best = int(ties.min())
        if logits_row.numel() < 2:
            return best, float("inf")
        top2 = torch.topk(logits_row, 2).values
        return best, float(top2[0] - top2[1])

    def generate(self, prompt_tokens, steps):
        """Greedy decoding with a KV cache: (tokens [N], logits [N, V], margins [N])."""
        if steps < 1:
            raise ValueError("steps must be >= 1")
        cache = self.new_cache()
        n = len(prompt_tokens)
        logits = self.forward(prompt_tokens, list(range(n)), cache)[-1]
        tokens, rows, margins = [], [], []
        for step in range(steps):
            token, margin = self.greedy(logits)
            tokens.append(token)
            rows.append(logits)
            margins.append(margin)
            if step + 1 < steps:
                logits = self.forward([token], [n + step], cache)[-1]
        return tokens, torch.stack(rows), margins


def load_model(path):
    """Reads a lockstep model file (format v1) into a Llama."""
    with h5py.File(path, "r") as f:
        if _attr(f, "format") != FORMAT:
            raise ValueError(f"{path}: attribute 'format' is not '{FORMAT}'")
        if int(_attr(f, "format_version")) != FORMAT_VERSION:
            raise ValueError(f"{path}: format_version is not {FORMAT_VERSION}")
        if _attr(f, "rope_layout") != "half":
            raise ValueError(f"{path}: rope_layout is not 'half'")
        config = {}
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                     "num_attention_heads", "num_key_value_heads", "head_dim",
                     "max_position_embeddings", "bos_token_id", "eos_token_id"):
            config[name] = int(_attr(f, name))
        for name in ("rms_norm_eps", "rope_theta"):
            config[name] = float(_attr(f, name))
        config["tie_word_embeddings"] = bool(_attr(f, "tie_word_embeddings"))
        names = ["/tok_embeddings", "/norm"]
        if not config["tie_word_embeddings"]:
            names.append("/lm_head")
        for layer in range(config["num_hidden_layers"]):
            for t in ("attn_norm", "attn/wq", "attn/wk", "attn/wv", "attn/wo", "ffn_norm",
                      "ffn/w_gate", "ffn/w_up", "ffn/w_down"):
                names.append(f"/layers/{layer}/{t}")
        weights = {name: torch.from_numpy(_read_tensor(f[name])) for name in names}
    return Llama(config, weights)


def run_requests(model, requests):
    """The arrays of OUT.npz (see the module docstring)."""
    out = {"ids": np.array([r["id"] if isinstance(r["id"], str) else json.dumps(r["id"])
                            for r in requests])}
    for i, r in enumerate(requests):
        prompt = [int(t) for t in r["prompt_tokens"]]
        if not prompt:
            raise ValueError(f"request {i}: empty prompt_tokens")
        bad = [t for t in prompt if not 0 <= t < model.vocab]
        if bad:
            raise ValueError(f"request {i}: token id {bad[0]} outside the vocabulary")
        steps = int(r["steps"])
        if len(prompt) + steps - 1 > model.config["max_position_embeddings"]:
            raise ValueError(f"request {i}: prompt + steps exceed max_position_embeddings")
        tokens, logits, margins = model.generate(prompt, steps)
        out[f"tokens_{i}"] = np.array(tokens, dtype=np.int64)
        out[f"logits_{i}"] = logits.numpy().astype(np.float32)
        out[f"margins_{i}"] = np.array(margins, dtype=np.float64)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="lockstep model file (HDF5)")
    parser.add_argument("--requests", required=True, help="JSON list of requests")
    parser.add_argument("--output", required=True, help="output .npz")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # deterministic and polite on a shared machine
    try:
        model = load_model(args.model)
        with open(args.requests) as f:
            requests = json.load(f)
        if not isinstance(requests, list):
            raise ValueError(f"{args.requests}: expected a JSON list of requests")
        np.savez(args.output, **run_requests(model, requests))
    except (OSError, ValueError, KeyError) as e:
        print(f"llama_reference: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
