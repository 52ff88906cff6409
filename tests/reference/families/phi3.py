"""Phi-3 / Phi-3.5 mini in float64: transformers' Phi3ForCausalLM
(models/phi3/modeling_phi3.py; Abdin et al. 2024, "Phi-3 Technical Report").

  qkv = qkv_proj(h): q = qkv[:, :H*d], k = qkv[:, H*d : H*d + KV*d], v = the rest
  gate, up = gate_up_proj(h).chunk(2): down_proj(up * silu(gate))
  attention with sliding_window (2047 in Phi-3-mini-4k: p - W < j <= p)
  rope_scaling "longrope" ("su"): short or long factors, the attention factor
  sqrt(1 + ln(max_position_embeddings / original) / ln(original))
  (rope.py: per position here).
The fused projections are used as they are, not split.
"""

import torch

from . import rope
from .generation import attend, extend_cache, rms_norm, silu


class Phi3ForCausalLM:
    def __init__(self, config, tensors):
        if config.get("partial_rotary_factor", 1.0) != 1.0:
            raise ValueError("partial_rotary_factor is not modelled")
        self.config = config
        self.w = tensors
        self.layers = config["num_hidden_layers"]
        self.heads = config["num_attention_heads"]
        self.kv_heads = config.get("num_key_value_heads") or self.heads
        self.head_dim = config["hidden_size"] // self.heads
        self.eps = config.get("rms_norm_eps", 1e-5)
        self.window = config.get("sliding_window")
        self.rope = rope.rope_parameters(config)
        self.lm_head = (tensors["model.embed_tokens.weight"]
                        if config.get("tie_word_embeddings", False) else tensors["lm_head.weight"])

    def new_cache(self):
        return [{"k": None, "v": None, "pos": None} for _ in range(self.layers)]

    def forward(self, tokens, positions, cache):
        w = self.w
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        positions = torch.as_tensor(positions, dtype=torch.long)
        t = tokens.shape[0]
        d = self.head_dim
        cos, sin = rope.cos_sin(self.rope, positions)
        x = w["model.embed_tokens.weight"][tokens]
        for i in range(self.layers):
            p = f"model.layers.{i}."
            h = rms_norm(x, w[p + "input_layernorm.weight"], self.eps)
            qkv = h @ w[p + "self_attn.qkv_proj.weight"].T
            query_pos = self.heads * d
            q = qkv[:, :query_pos].reshape(t, self.heads, d)
            k = qkv[:, query_pos:query_pos + self.kv_heads * d].reshape(t, self.kv_heads, d)
            v = qkv[:, query_pos + self.kv_heads * d:].reshape(t, self.kv_heads, d)
            q, k = rope.apply_rope(q, cos, sin), rope.apply_rope(k, cos, sin)
            k, v, k_pos = extend_cache(cache, i, k, v, positions)
            a = attend(q, k, v, positions, k_pos, self.window)
            x = x + a @ w[p + "self_attn.o_proj.weight"].T
            h = rms_norm(x, w[p + "post_attention_layernorm.weight"], self.eps)
            gate, up = (h @ w[p + "mlp.gate_up_proj.weight"].T).chunk(2, dim=-1)
            x = x + (up * silu(gate)) @ w[p + "mlp.down_proj.weight"].T
        return rms_norm(x, w["model.norm.weight"], self.eps) @ self.lm_head.T
