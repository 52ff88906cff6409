"""Qwen2 / Qwen2.5 in float64: transformers' Qwen2ForCausalLM
(models/qwen2/modeling_qwen2.py; Qwen2 technical report, Yang et al. 2024).

The Llama computation with biases on the q, k and v projections
(Qwen2Attention: q_proj, k_proj, v_proj with bias=True, o_proj without),
added before RoPE. Tied embeddings for the small models; yarn rope scaling
for long contexts. (Qwen2's per-layer sliding window, use_sliding_window,
is off in every released checkpoint and not modelled.)
"""

import torch

from . import rope
from .generation import attend, extend_cache, rms_norm, silu


class Qwen2ForCausalLM:
    def __init__(self, config, tensors):
        if config.get("use_sliding_window"):
            raise ValueError("use_sliding_window is not modelled")
        self.config = config
        self.w = tensors
        self.layers = config["num_hidden_layers"]
        self.heads = config["num_attention_heads"]
        self.kv_heads = config.get("num_key_value_heads") or self.heads
        self.head_dim = config["hidden_size"] // self.heads
        self.eps = config.get("rms_norm_eps", 1e-6)
        self.rope = rope.rope_parameters(config)
        self.lm_head = (tensors["model.embed_tokens.weight"]
                        if config.get("tie_word_embeddings", False) else tensors["lm_head.weight"])

    def new_cache(self):
        return [{"k": None, "v": None, "pos": None} for _ in range(self.layers)]

    def linear(self, h, name, bias):
        out = h @ self.w[name + ".weight"].T
        return out + self.w[name + ".bias"] if bias else out

    def forward(self, tokens, positions, cache):
        w = self.w
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        positions = torch.as_tensor(positions, dtype=torch.long)
        t = tokens.shape[0]
        cos, sin = rope.cos_sin(self.rope, positions)
        x = w["model.embed_tokens.weight"][tokens]
        for i in range(self.layers):
            p = f"model.layers.{i}."
            h = rms_norm(x, w[p + "input_layernorm.weight"], self.eps)
            q = self.linear(h, p + "self_attn.q_proj", True).reshape(t, self.heads, self.head_dim)
            k = self.linear(h, p + "self_attn.k_proj", True).reshape(t, self.kv_heads, self.head_dim)
            v = self.linear(h, p + "self_attn.v_proj", True).reshape(t, self.kv_heads, self.head_dim)
            q, k = rope.apply_rope(q, cos, sin), rope.apply_rope(k, cos, sin)
            k, v, k_pos = extend_cache(cache, i, k, v, positions)
            x = x + self.linear(attend(q, k, v, positions, k_pos), p + "self_attn.o_proj", False)
            h = rms_norm(x, w[p + "post_attention_layernorm.weight"], self.eps)
            gate = h @ w[p + "mlp.gate_proj.weight"].T
            up = h @ w[p + "mlp.up_proj.weight"].T
            x = x + (silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
        return rms_norm(x, w["model.norm.weight"], self.eps) @ self.lm_head.T
