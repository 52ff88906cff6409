"""Llama 2 / 3 / 3.1 / 3.2 / 3.3 in float64: transformers' LlamaForCausalLM
(models/llama/modeling_llama.py) and Touvron et al. 2023.

  x = embed_tokens[ids]
  per layer: h = RMSNorm(x) * input_layernorm
             q, k, v = q_proj(h), k_proj(h), v_proj(h)  (k, v: num_key_value_heads)
             q, k = RoPE(q), RoPE(k)                      (rotate-half; rope_scaling)
             x = x + o_proj(softmax(q k^T / sqrt(d) + causal) v)
             h = RMSNorm(x) * post_attention_layernorm
             x = x + down_proj(silu(gate_proj(h)) * up_proj(h))
  logits = lm_head(RMSNorm(x) * norm), lm_head = embed_tokens if tied
"""

import torch

from . import rope
from .generation import attend, extend_cache, rms_norm, silu


class LlamaForCausalLM:
    def __init__(self, config, tensors):
        self.config = config
        self.w = tensors
        self.layers = config["num_hidden_layers"]
        self.heads = config["num_attention_heads"]
        self.kv_heads = config.get("num_key_value_heads") or self.heads
        self.head_dim = config.get("head_dim") or config["hidden_size"] // self.heads
        self.eps = config.get("rms_norm_eps", 1e-6)
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
        cos, sin = rope.cos_sin(self.rope, positions)
        x = w["model.embed_tokens.weight"][tokens]
        for i in range(self.layers):
            p = f"model.layers.{i}."
            h = rms_norm(x, w[p + "input_layernorm.weight"], self.eps)
            q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(t, self.heads, self.head_dim)
            k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(t, self.kv_heads, self.head_dim)
            v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(t, self.kv_heads, self.head_dim)
            q, k = rope.apply_rope(q, cos, sin), rope.apply_rope(k, cos, sin)
            k, v, k_pos = extend_cache(cache, i, k, v, positions)
            x = x + attend(q, k, v, positions, k_pos) @ w[p + "self_attn.o_proj.weight"].T
            h = rms_norm(x, w[p + "post_attention_layernorm.weight"], self.eps)
            gate = h @ w[p + "mlp.gate_proj.weight"].T
            up = h @ w[p + "mlp.up_proj.weight"].T
            x = x + (silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
        return rms_norm(x, w["model.norm.weight"], self.eps) @ self.lm_head.T
