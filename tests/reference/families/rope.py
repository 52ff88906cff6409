"""Rotary position embeddings and their context-extension variants, float64.

Written from the published descriptions -- RoFormer (Su et al. 2021) for
RoPE, Hugging Face transformers' modeling_rope_utils.py for the rope_scaling
types (linear: kaiokendev; dynamic NTK: /u/bloc97 and /u/emozilla; YaRN:
Peng et al. 2023; llama3: Meta's Llama 3.1 apply_scaling; longrope: Phi-3's
LongRoPE) -- not from lockstep's code.

Every function gives the inverse frequencies of one position, inv_freq[i]
for the head's dimension pairs i < head_dim / 2, and the attention factor
that multiplies cos and sin. Two types are defined per position here where
transformers computes them per forward call:

  dynamic   transformers grows the base with the longest sequence of the
            call: base(s) = theta * (factor * s / L - (factor - 1))^(d/(d-2)),
            s = max(seq_len, L). lockstep (and this reference) take s = max(p + 1,
            L) for the token at position p. The two agree for every token that
            transformers' generate() decodes one at a time and for prompts that
            fit the original context; they differ for a prompt longer than L,
            whose tokens transformers rotates with the base of the whole prompt.
  longrope  transformers uses the long factors for every token of a call whose
            sequence exceeds L, the short ones otherwise. Here a token uses the
            long factors from position L on. Again the same as transformers'
            generate() token by token, different for the earlier tokens of a
            prompt longer than L.

Both choices make a token's rotation a function of its position alone, so a
request gives the same logits alone or batched and however its prompt is cut
(lockstep's docs/determinism.md says why).
"""

import math

import torch


def rope_parameters(config):
    """The rope scaling of a Hugging Face config dict as a plain dict:
    {"type": ..., "head_dim", "theta", ...} with every default resolved."""
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    max_pos = config.get("max_position_embeddings", 2048)
    p = {"type": "default", "head_dim": head_dim, "theta": float(config.get("rope_theta", 10000.0)),
         "attention_factor": 1.0}
    scaling = config.get("rope_scaling")
    if not scaling:
        return p
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind in (None, "default"):
        return p
    if kind == "su":
        kind = "longrope"
    p["type"] = kind
    if kind == "linear":
        p["factor"] = float(scaling["factor"])
    elif kind == "dynamic":
        p["factor"] = float(scaling["factor"])
        p["original"] = max_pos  # transformers uses max_position_embeddings
    elif kind == "yarn":
        factor = float(scaling["factor"])
        p["factor"] = factor
        p["original"] = scaling.get("original_max_position_embeddings") or max_pos
        p["beta_fast"] = scaling.get("beta_fast") or 32.0
        p["beta_slow"] = scaling.get("beta_slow") or 1.0
        p["truncate"] = scaling.get("truncate", True)

        def get_mscale(scale, mscale=1.0):
            return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0
        if scaling.get("attention_factor") is not None:
            p["attention_factor"] = float(scaling["attention_factor"])
        elif scaling.get("mscale") and scaling.get("mscale_all_dim"):
            p["attention_factor"] = (get_mscale(factor, scaling["mscale"]) /
                                     get_mscale(factor, scaling["mscale_all_dim"]))
        else:
            p["attention_factor"] = get_mscale(factor)
    elif kind == "llama3":
        p["factor"] = float(scaling["factor"])
        p["low_freq_factor"] = float(scaling["low_freq_factor"])
        p["high_freq_factor"] = float(scaling["high_freq_factor"])
        p["original"] = scaling["original_max_position_embeddings"]
        if "frequency_factors" in scaling:  # explicit divisors (a GGUF's rope_freqs)
            p["frequency_factors"] = [float(x) for x in scaling["frequency_factors"]]
    elif kind == "longrope":
        p["short_factor"] = [float(x) for x in scaling["short_factor"]]
        p["long_factor"] = [float(x) for x in scaling["long_factor"]]
        if config.get("original_max_position_embeddings"):  # Phi-3
            p["original"] = config["original_max_position_embeddings"]
            factor = max_pos / p["original"]
        else:
            p["original"] = scaling.get("original_max_position_embeddings") or max_pos
            factor = float(scaling.get("factor", 1.0))
        if scaling.get("attention_factor") is not None:
            p["attention_factor"] = float(scaling["attention_factor"])
        else:
            p["attention_factor"] = (1.0 if factor <= 1.0 else
                                     math.sqrt(1 + math.log(factor) / math.log(p["original"])))
    else:
        raise ValueError(f"rope_scaling type {kind!r} has no reference")
    return p


def _plain(theta, d):
    """RoFormer: theta^(-2i/d) for i < d/2."""
    return 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))


def inverse_frequencies(p, position):
    """inv_freq [head_dim/2] (float64) at `position`, per the definitions above."""
    d, theta = p["head_dim"], p["theta"]
    kind = p["type"]
    if kind == "default":
        return _plain(theta, d)
    if kind == "linear":
        return _plain(theta, d) / p["factor"]
    if kind == "dynamic":
        length = max(position + 1, p["original"])
        factor = p["factor"]
        base = theta * ((factor * length / p["original"]) - (factor - 1)) ** (d / (d - 2))
        return _plain(base, d)
    if kind == "yarn":
        def correction_dim(rotations):
            return (d * math.log(p["original"] / (rotations * 2 * math.pi))) / (2 * math.log(theta))
        low, high = correction_dim(p["beta_fast"]), correction_dim(p["beta_slow"])
        if p["truncate"]:
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, d - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(d // 2, dtype=torch.float64) - low) / (high - low), 0, 1)
        extrapolation = 1 - ramp
        extrapolated = _plain(theta, d)
        interpolated = extrapolated / p["factor"]
        return interpolated * (1 - extrapolation) + extrapolated * extrapolation
    if kind == "llama3":
        inv = _plain(theta, d)
        if "frequency_factors" in p:
            return inv / torch.tensor(p["frequency_factors"], dtype=torch.float64)
        factor, low, high, old = p["factor"], p["low_freq_factor"], p["high_freq_factor"], p["original"]
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > old / low, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old / high) & (wavelen <= old / low)
        return torch.where(medium, smoothed, scaled)
    if kind == "longrope":
        factors = p["short_factor"] if position < p["original"] else p["long_factor"]
        return 1.0 / (torch.tensor(factors, dtype=torch.float64) * theta **
                      (torch.arange(0, d, 2, dtype=torch.float64) / d))
    raise ValueError(kind)


def cos_sin(p, positions):
    """cos, sin [T, head_dim] for the rotate-half layout (emb = cat(freqs, freqs)),
    times the attention factor."""
    rows = []
    for pos in positions.tolist():
        rows.append(float(pos) * inverse_frequencies(p, int(pos)))
    freqs = torch.stack(rows)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos() * p["attention_factor"], emb.sin() * p["attention_factor"]


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rope(x, cos, sin):
    """x [T, heads, head_dim]; cos, sin [T, head_dim]."""
    return x * cos[:, None, :] + rotate_half(x) * sin[:, None, :]
