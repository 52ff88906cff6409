"""Greedy decoding with a KV cache, shared by the family references: the
prompt in one forward call, then one token per call. Ties go to the lowest
token id (as lockstep's sampler); margins (top-1 minus top-2 logit) flag
near-ties where a float32 implementation may choose otherwise."""

import torch


def greedy(model, prompt, steps):
    """(tokens [steps], logits [steps, vocab] float64, margins [steps])."""
    cache = model.new_cache()
    n = len(prompt)
    logits = model.forward(prompt, list(range(n)), cache)[-1]
    tokens, rows, margins = [], [], []
    for step in range(steps):
        top = torch.max(logits)
        token = int(torch.nonzero(logits == top).flatten().min())
        top2 = torch.topk(logits, 2).values
        tokens.append(token)
        rows.append(logits)
        margins.append(float(top2[0] - top2[1]))
        if step + 1 < steps:
            logits = model.forward([token], [n + step], cache)[-1]
    return tokens, torch.stack(rows), margins


def rms_norm(x, weight, eps):
    """RMSNorm (Zhang & Sennrich 2019): x / sqrt(mean(x^2) + eps) * weight."""
    return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps) * weight


def silu(x):
    return x / (1.0 + torch.exp(-x))


def attend(q, k, v, q_positions, k_positions, window=None):
    """Scaled dot-product attention, causal by position; with a sliding
    window the query at position p sees the keys at positions p - window < j
    <= p (transformers' sliding_window mask: kv_idx > q_idx - sliding_window).
    q [T, H, D]; k, v [S, KV, D] (KV head g serves query heads g*H/KV ..);
    returns [T, H*D]."""
    heads, kv_heads, d = q.shape[1], k.shape[1], q.shape[2]
    group = heads // kv_heads
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = torch.einsum("thd,shd->hts", q, k) / d ** 0.5
    delta = q_positions[:, None] - k_positions[None, :]  # [T, S]
    hidden = delta < 0
    if window:
        hidden = hidden | (delta >= window)
    scores = scores.masked_fill(hidden[None], float("-inf"))
    out = torch.einsum("hts,shd->thd", torch.softmax(scores, dim=-1), v)
    return out.reshape(out.shape[0], heads * d)


def extend_cache(cache, layer, k, v, positions):
    entry = cache[layer]
    if entry["k"] is not None:
        k = torch.cat([entry["k"], k])
        v = torch.cat([entry["v"], v])
        positions = torch.cat([entry["pos"], positions])
    entry["k"], entry["v"], entry["pos"] = k, v, positions
    return k, v, positions
