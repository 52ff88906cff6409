#!/usr/bin/python3
"""Small random Llama checkpoints in the formats people have, and each
format's own reference forward pass (plain PyTorch, float64).

Used by the converter tests (convert_reference_test.py, convert_errors_test.py).
Nothing here shares code with the C++ converter: the writers follow the
published formats, and each reference forward uses the rotary convention of
its source:

  * Hugging Face (safetensors): rotate-half pairing, as in transformers'
    modeling_llama.py (rotate_half: element i pairs with i + head_dim/2).
  * llama2.c / Meta: interleaved pairs (2j, 2j+1) rotated as complex numbers,
    as in Meta's llama/model.py (torch.view_as_complex * freqs_cis).
  * GGUF (llama.cpp): interleaved pairs rotated as ggml's rope "NORM" mode
    writes it, with theta = p * base^(-i0/n_dims) for even i0.

The random weights are drawn directly in each source's own layout, so the
converter only matches the reference if it re-pairs wq/wk rows correctly.

Writers:
  write_hf(folder, cfg, w, dtype, shards)           config.json + safetensors
  write_llama2c(path, cfg, w, version, group_size)  llama2.c export v0/v1/v2
  write_llama2c_tokenizer(path, pieces, scores)     llama2.c tokenizer.bin
  write_gguf(path, cfg, w, types, ...)              GGUF v3 (ggml docs/gguf.md)
Each returns the weights as the file stores them, decoded to float64 (bf16 and
f16 widened, Q8_0 and llama2.c int8 groups dequantised as their readers do):
the weights the reference forward must use.
"""

import json
import math
import os
import struct
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Config:
    dim: int = 64
    ffn: int = 160
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 16
    vocab: int = 256
    eps: float = 1e-5
    theta: float = 10000.0
    max_pos: int = 128
    tied: bool = False

    @property
    def q_dim(self):
        return self.heads * self.head_dim

    @property
    def kv_dim(self):
        return self.kv_heads * self.head_dim


LAYER_KEYS = ("attn_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w_gate", "w_up", "w_down")


# ---------------------------------------------------------------------------
# Random weights (float32), scaled so that activations stay sane and the
# logits are spread.
# ---------------------------------------------------------------------------

def random_weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)

    def normal(shape, std, mean=0.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * std + mean).float().numpy()

    d, f, v, n = cfg.dim, cfg.ffn, cfg.vocab, cfg.layers
    # With tied embeddings a token's own embedding dominates its logits; larger
    # residual branches make the layers matter, so that greedy decoding does
    # not just repeat the last token.
    boost = 16.0 if cfg.tied else 1.0
    w = {"embed": normal((v, d), 1.0 if not cfg.tied else d ** -0.5 * 4),
         "norm": normal((d,), 0.1, 1.0), "layers": []}
    for _ in range(n):
        w["layers"].append({
            "attn_norm": normal((d,), 0.1, 1.0),
            "wq": normal((cfg.q_dim, d), d ** -0.5),
            "wk": normal((cfg.kv_dim, d), d ** -0.5),
            "wv": normal((cfg.kv_dim, d), d ** -0.5),
            "wo": normal((d, cfg.q_dim), boost * (2 * n * cfg.q_dim) ** -0.5),
            "ffn_norm": normal((d,), 0.1, 1.0),
            "w_gate": normal((f, d), d ** -0.5),
            "w_up": normal((f, d), d ** -0.5),
            "w_down": normal((d, f), boost * (2 * n * f) ** -0.5),
        })
    if not cfg.tied:
        w["lm_head"] = normal((v, d), d ** -0.5)
    return w


def map_weights(w, fn):
    """Applies fn(name, array) to every tensor; returns a new weight dict."""
    out = {"embed": fn("embed", w["embed"]), "norm": fn("norm", w["norm"]),
           "layers": [{k: fn(k, layer[k]) for k in LAYER_KEYS} for layer in w["layers"]]}
    if "lm_head" in w:
        out["lm_head"] = fn("lm_head", w["lm_head"])
    return out


def is_norm(name):
    return name.endswith("norm")


# ---------------------------------------------------------------------------
# Exact number formats.
# ---------------------------------------------------------------------------

def f32_to_bf16_bits(x):
    """Round to nearest even, as uint16 bit patterns (finite inputs)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_bits_to_f64(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def round_to(x, dtype):
    """x (float32) as stored in `dtype` ('f32', 'f16', 'bf16'), widened to float64."""
    if dtype == "f32":
        return np.asarray(x, np.float32).astype(np.float64)
    if dtype == "f16":
        return np.asarray(x, np.float32).astype(np.float16).astype(np.float64)
    if dtype == "bf16":
        return bf16_bits_to_f64(f32_to_bf16_bits(x))
    raise ValueError(dtype)


def narrow_matrices(w64, dtype):
    """What a model file of weight dtype `dtype` stores: matrices rounded,
    norms kept (always f32)."""
    return map_weights(w64, lambda name, a: a if is_norm(name) else
                       round_to(a.astype(np.float32), dtype))


# ---------------------------------------------------------------------------
# Reference forward passes (float64).
# ---------------------------------------------------------------------------

def inv_freq(cfg):
    d = cfg.head_dim
    return 1.0 / (cfg.theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))


def rope_half(x, positions, cfg):
    """Hugging Face: q * cos + rotate_half(q) * sin, with emb = cat(freqs, freqs)."""
    freqs = positions.to(torch.float64)[:, None] * inv_freq(cfg)[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
    half = cfg.head_dim // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def rope_meta(x, positions, cfg):
    """Meta's llama: pairs (2j, 2j+1) as complex numbers times e^{i p f_j}."""
    freqs = positions.to(torch.float64)[:, None] * inv_freq(cfg)[None, :]
    freqs_cis = torch.polar(torch.ones_like(freqs), freqs)[:, None, :]
    xc = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous())
    return torch.view_as_real(xc * freqs_cis).flatten(-2)


def rope_ggml_norm(x, positions, cfg):
    """llama.cpp (ggml rope mode 0): for even i0, theta = p * base^(-i0/n_dims),
    (x[i0], x[i0+1]) -> (x0 cos - x1 sin, x0 sin + x1 cos)."""
    out = x.clone()
    n_dims = cfg.head_dim
    for i0 in range(0, n_dims, 2):
        theta = positions.to(torch.float64) * cfg.theta ** (-i0 / n_dims)
        c, s = theta.cos()[:, None], theta.sin()[:, None]
        x0, x1 = x[..., i0], x[..., i0 + 1]
        out[..., i0] = x0 * c - x1 * s
        out[..., i0 + 1] = x0 * s + x1 * c
    return out


ROPES = {"hf": rope_half, "meta": rope_meta, "ggml": rope_ggml_norm}


def forward(w, cfg, tokens, rope):
    """Logits [T, vocab] of a whole sequence (no cache), float64."""
    t64 = {k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in w.items() if k != "layers"}
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    positions = torch.arange(tokens.shape[0])
    n = tokens.shape[0]

    def rms(x, weight):
        return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + cfg.eps) * weight

    x = t64["embed"][tokens]
    group = cfg.heads // cfg.kv_heads
    mask = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    for layer in w["layers"]:
        lw = {k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in layer.items()}
        h = rms(x, lw["attn_norm"])
        q = (h @ lw["wq"].T).reshape(n, cfg.heads, cfg.head_dim)
        k = (h @ lw["wk"].T).reshape(n, cfg.kv_heads, cfg.head_dim)
        v = (h @ lw["wv"].T).reshape(n, cfg.kv_heads, cfg.head_dim)
        q, k = rope(q, positions, cfg), rope(k, positions, cfg)
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(cfg.head_dim)
        scores = scores.masked_fill(mask[None], float("-inf"))
        a = torch.einsum("hts,shd->thd", torch.softmax(scores, dim=-1), v).reshape(n, -1)
        x = x + a @ lw["wo"].T
        h = rms(x, lw["ffn_norm"])
        gate, up = h @ lw["w_gate"].T, h @ lw["w_up"].T
        x = x + (gate / (1.0 + torch.exp(-gate)) * up) @ lw["w_down"].T
    x = rms(x, t64["norm"])
    head = t64["lm_head"] if "lm_head" in t64 else t64["embed"]
    return x @ head.T


def generate(w, cfg, prompt, steps, rope):
    """Greedy decoding (ties to the lowest id): tokens [steps], logits [steps, V],
    margins [steps] (top-1 minus top-2)."""
    seq = list(prompt)
    tokens, rows, margins = [], [], []
    for _ in range(steps):
        logits = forward(w, cfg, seq, rope)[-1]
        top = torch.max(logits)
        token = int(torch.nonzero(logits == top).flatten().min())
        top2 = torch.topk(logits, 2).values
        tokens.append(token)
        rows.append(logits.numpy())
        margins.append(float(top2[0] - top2[1]))
        seq.append(token)
    return tokens, np.stack(rows), margins


# ---------------------------------------------------------------------------
# safetensors + Hugging Face folders.
# ---------------------------------------------------------------------------

def encode(array, dtype):
    """(raw bytes, float64 values as stored) of a float32 array in dtype F32/F16/BF16."""
    a = np.ascontiguousarray(array, np.float32)
    if dtype == "F32":
        return a.tobytes(), a.astype(np.float64)
    if dtype == "F16":
        h = a.astype(np.float16)
        return h.tobytes(), h.astype(np.float64)
    if dtype == "BF16":
        bits = f32_to_bf16_bits(a)
        return bits.tobytes(), bf16_bits_to_f64(bits)
    raise ValueError(dtype)


def safetensors_bytes(entries, metadata=None):
    """entries: list of (name, dtype, shape, raw bytes). Returns the file bytes."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(e[3] for e in entries)


def write_safetensors(path, entries, metadata=None):
    with open(path, "wb") as f:
        f.write(safetensors_bytes(entries, metadata))


def hf_names(cfg):
    """[(HF tensor name, key into the weight dict)] in checkpoint order."""
    names = [("model.embed_tokens.weight", ("embed",))]
    hf = {"attn_norm": "input_layernorm", "wq": "self_attn.q_proj", "wk": "self_attn.k_proj",
          "wv": "self_attn.v_proj", "wo": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
          "w_gate": "mlp.gate_proj", "w_up": "mlp.up_proj", "w_down": "mlp.down_proj"}
    for i in range(cfg.layers):
        for key in LAYER_KEYS:
            names.append((f"model.layers.{i}.{hf[key]}.weight", ("layers", i, key)))
    names.append(("model.norm.weight", ("norm",)))
    if not cfg.tied:
        names.append(("lm_head.weight", ("lm_head",)))
    return names


def lookup(w, key):
    return w[key[0]] if key[0] != "layers" else w["layers"][key[1]][key[2]]


def hf_config(cfg):
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": cfg.dim, "intermediate_size": cfg.ffn,
            "num_hidden_layers": cfg.layers, "num_attention_heads": cfg.heads,
            "num_key_value_heads": cfg.kv_heads, "head_dim": cfg.head_dim,
            "vocab_size": cfg.vocab, "rms_norm_eps": cfg.eps, "rope_theta": cfg.theta,
            "max_position_embeddings": cfg.max_pos, "tie_word_embeddings": cfg.tied,
            "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2,
            "torch_dtype": "float32", "rope_scaling": None}


def write_hf(folder, cfg, w, dtype="F32", shards=1, extra=()):
    """A Hugging Face checkpoint folder. `dtype` applies to every tensor (HF
    checkpoints keep norms in the same dtype). `extra`: (name, float32 array)
    tensors to add (e.g. rotary_emb.inv_freq of old exports)."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(hf_config(cfg), f, indent=2)
    stored = map_weights(w, lambda n, a: a)  # copy of the structure
    entries = []
    for name, key in hf_names(cfg):
        raw, values = encode(lookup(w, key), dtype)
        entries.append((name, dtype, lookup(w, key).shape, raw))
        if key[0] == "layers":
            stored["layers"][key[1]][key[2]] = values
        else:
            stored[key[0]] = values
    for name, array in extra:
        raw, _ = encode(array, "F32")
        entries.append((name, "F32", array.shape, raw))
    if shards == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), entries,
                          {"format": "pt"})
    else:
        weight_map = {}
        per = math.ceil(len(entries) / shards)
        for s in range(shards):
            part = entries[s * per:(s + 1) * per]
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            write_safetensors(os.path.join(folder, fname), part, {"format": "pt"})
            for e in part:
                weight_map[e[0]] = fname
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": sum(len(e[3]) for e in entries)},
                       "weight_map": weight_map}, f, indent=2)
    return stored


# ---------------------------------------------------------------------------
# llama2.c
# ---------------------------------------------------------------------------

def quantize_q80_groups(a, group_size):
    """llama2.c export.py quantize_q80: symmetric int8 per group of the flat
    tensor; returns (int8 values, f32 scales, float64 dequantised as runq.c does)."""
    flat = torch.from_numpy(np.ascontiguousarray(a, np.float32)).reshape(-1, group_size)
    scale = flat.abs().max(dim=1).values / 127.0
    q = torch.round(flat / scale[:, None]).to(torch.int8)
    deq = (q.float() * scale[:, None]).reshape(a.shape)  # f32 product, like runq.c
    return q.numpy().tobytes(), scale.numpy().astype(np.float32).tobytes(), \
        deq.numpy().astype(np.float64)


def write_llama2c(path, cfg, w, version=0, group_size=64):
    """A llama2.c checkpoint (export.py legacy_export / version1_export /
    version2_export). Weights are in Meta's layout. Returns the stored weights."""
    assert cfg.head_dim * cfg.heads == cfg.dim, "llama2.c has head_dim = dim / n_heads"
    shared = cfg.tied
    stored = map_weights(w, lambda n, a: np.asarray(a, np.float32).astype(np.float64))
    f32 = lambda a: np.ascontiguousarray(a, np.float32).tobytes()  # noqa: E731
    L = w["layers"]
    out = bytearray()
    if version == 0:
        vocab = cfg.vocab if shared else -cfg.vocab
        out += struct.pack("7i", cfg.dim, cfg.ffn, cfg.layers, cfg.heads, cfg.kv_heads, vocab,
                           cfg.max_pos)
        out += f32(w["embed"])
        for key in ("attn_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w_gate", "w_down", "w_up"):
            for layer in L:
                out += f32(layer[key])
        out += f32(w["norm"])
        # freq_cis_real and freq_cis_imag, [seq_len, head_size/2] each
        freqs = np.outer(np.arange(cfg.max_pos), inv_freq(cfg).numpy())
        out += f32(np.cos(freqs)) + f32(np.sin(freqs))
        if not shared:
            out += f32(w["lm_head"])
    else:
        out += struct.pack("<I", 0x616B3432) + struct.pack("<i", version)
        out += struct.pack("7i", cfg.dim, cfg.ffn, cfg.layers, cfg.heads, cfg.kv_heads,
                           cfg.vocab, cfg.max_pos)
        out += struct.pack("B", int(shared))
        if version == 2:
            out += struct.pack("<i", group_size)
        out += b"\0" * (256 - len(out))
        for key in ("attn_norm", "ffn_norm"):
            for layer in L:
                out += f32(layer[key])
        out += f32(w["norm"])
        matrices = [("embed", None)]
        for key in ("wq", "wk", "wv", "wo", "w_gate", "w_down", "w_up"):
            matrices += [(key, i) for i in range(cfg.layers)]
        if not shared:
            matrices.append(("lm_head", None))
        for key, i in matrices:
            a = w[key] if i is None else L[i][key]
            if version == 1:
                out += f32(a)
            else:
                q, s, deq = quantize_q80_groups(a, group_size)
                out += q + s
                if i is None:
                    stored[key] = deq
                else:
                    stored["layers"][i][key] = deq
    with open(path, "wb") as f:
        f.write(out)
    return stored


def write_llama2c_tokenizer(path, pieces, scores):
    """llama2.c tokenizer.bin: int32 max_token_length, then per token f32
    score, int32 length, bytes (pieces as bytes)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<i", max(len(p) for p in pieces)))
        for p, s in zip(pieces, scores):
            f.write(struct.pack("<fi", s, len(p)) + p)


# ---------------------------------------------------------------------------
# GGUF (ggml docs/gguf.md, version 3)
# ---------------------------------------------------------------------------

GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_BF16 = 0, 1, 2, 8, 30
GGML_TYPES = {"F32": GGML_F32, "F16": GGML_F16, "Q4_0": GGML_Q4_0, "Q8_0": GGML_Q8_0,
              "BF16": GGML_BF16}
(GGUF_UINT8, GGUF_INT8, GGUF_UINT16, GGUF_INT16, GGUF_UINT32, GGUF_INT32, GGUF_FLOAT32,
 GGUF_BOOL, GGUF_STRING, GGUF_ARRAY, GGUF_UINT64, GGUF_INT64, GGUF_FLOAT64) = range(13)


def q8_0_encode(a):
    """ggml quantize_row_q8_0_ref: per 32 values d = amax/127, q = round(x/d)
    (half away from zero), d stored as f16. Returns (bytes, float64 values as
    dequantised: f32(f16 d) * q)."""
    x = np.ascontiguousarray(a, np.float32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    d = amax / np.float32(127.0)
    inv = np.where(d != 0, np.float32(1.0) / np.where(d != 0, d, 1), 0).astype(np.float32)
    v = x * inv[:, None]
    q = (np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))).astype(np.int8)
    dh = d.astype(np.float16)
    blocks = np.empty((x.shape[0], 34), np.uint8)
    blocks[:, :2] = dh.view(np.uint8).reshape(-1, 2)
    blocks[:, 2:] = q.view(np.uint8)
    deq = (dh.astype(np.float32)[:, None] * q.astype(np.float32)).astype(np.float64)
    return blocks.tobytes(), deq.reshape(a.shape)


def gguf_encode(a, type_name):
    if type_name in ("Q8_0", "Q4_0"):
        # ggml's reference quantizers (quant_blocks.py): the blocks, and the
        # values they hold.
        import quant_blocks
        blocks = quant_blocks.quantize(np.asarray(a, np.float32), type_name.lower())
        return blocks.tobytes(), quant_blocks.dequantize(blocks).astype(np.float64)
    return encode(a, type_name)


def gguf_string(s):
    b = s.encode("utf-8", errors="surrogateescape") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gguf_value(vtype, value):
    fmt = {GGUF_UINT8: "<B", GGUF_INT8: "<b", GGUF_UINT16: "<H", GGUF_INT16: "<h",
           GGUF_UINT32: "<I", GGUF_INT32: "<i", GGUF_FLOAT32: "<f", GGUF_BOOL: "<?",
           GGUF_UINT64: "<Q", GGUF_INT64: "<q", GGUF_FLOAT64: "<d"}
    if vtype == GGUF_STRING:
        return gguf_string(value)
    if vtype == GGUF_ARRAY:
        etype, items = value
        return struct.pack("<IQ", etype, len(items)) + b"".join(gguf_value(etype, i) for i in items)
    return struct.pack(fmt[vtype], value)


def gguf_names(cfg):
    """[(GGUF tensor name, key into the weight dict)] in llama.cpp's order."""
    names = [("token_embd.weight", ("embed",))]
    gg = {"attn_norm": "attn_norm", "wq": "attn_q", "wk": "attn_k", "wv": "attn_v",
          "wo": "attn_output", "ffn_norm": "ffn_norm", "w_gate": "ffn_gate", "w_up": "ffn_up",
          "w_down": "ffn_down"}
    for i in range(cfg.layers):
        for key in LAYER_KEYS:
            names.append((f"blk.{i}.{gg[key]}.weight", ("layers", i, key)))
    names.append(("output_norm.weight", ("norm",)))
    if not cfg.tied:
        names.append(("output.weight", ("lm_head",)))
    return names


def gguf_llama_metadata(cfg, name="random-llama", alignment=None, quantized=False,
                        vocab=None):
    """Metadata KVs [(key, type, value)] of a llama GGUF. `vocab`: optional
    (pieces, scores, types) for a tokenizer.ggml.model = "llama" vocabulary."""
    kv = [("general.architecture", GGUF_STRING, "llama"),
          ("general.name", GGUF_STRING, name)]
    if alignment is not None:
        kv.append(("general.alignment", GGUF_UINT32, alignment))
    if quantized:
        kv.append(("general.quantization_version", GGUF_UINT32, 2))
    kv += [("llama.context_length", GGUF_UINT32, cfg.max_pos),
           ("llama.embedding_length", GGUF_UINT32, cfg.dim),
           ("llama.block_count", GGUF_UINT32, cfg.layers),
           ("llama.feed_forward_length", GGUF_UINT32, cfg.ffn),
           ("llama.rope.dimension_count", GGUF_UINT32, cfg.head_dim),
           ("llama.attention.head_count", GGUF_UINT32, cfg.heads),
           ("llama.attention.head_count_kv", GGUF_UINT32, cfg.kv_heads),
           ("llama.attention.layer_norm_rms_epsilon", GGUF_FLOAT32, cfg.eps),
           ("llama.rope.freq_base", GGUF_FLOAT32, cfg.theta)]
    if cfg.head_dim * cfg.heads != cfg.dim:
        kv.append(("llama.attention.key_length", GGUF_UINT32, cfg.head_dim))
        kv.append(("llama.attention.value_length", GGUF_UINT32, cfg.head_dim))
    if vocab is not None:
        pieces, scores, types = vocab
        kv += [("tokenizer.ggml.model", GGUF_STRING, "llama"),
               ("tokenizer.ggml.tokens", GGUF_ARRAY, (GGUF_STRING, pieces)),
               ("tokenizer.ggml.scores", GGUF_ARRAY, (GGUF_FLOAT32, scores)),
               ("tokenizer.ggml.token_type", GGUF_ARRAY, (GGUF_INT32, types)),
               ("tokenizer.ggml.bos_token_id", GGUF_UINT32, 1),
               ("tokenizer.ggml.eos_token_id", GGUF_UINT32, 2)]
    return kv


def gguf_bytes(kv, tensors, alignment=32, version=3):
    """kv: [(key, type, value)]; tensors: [(name, ggml type id, dims ne0-first,
    raw bytes)]. Returns the file bytes."""
    out = bytearray(b"GGUF")
    out += struct.pack("<IQQ", version, len(tensors), len(kv))
    for key, vtype, value in kv:
        out += gguf_string(key) + struct.pack("<I", vtype) + gguf_value(vtype, value)
    offset = 0
    offsets = []
    for name, ttype, dims, raw in tensors:
        offsets.append(offset)
        out += gguf_string(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ttype, offset)
        offset += len(raw)
        offset += (alignment - offset % alignment) % alignment
    out += b"\0" * ((alignment - len(out) % alignment) % alignment)
    data_start = len(out)
    for (name, ttype, dims, raw), off in zip(tensors, offsets):
        out += b"\0" * (data_start + off - len(out))
        out += raw
    return bytes(out)


def write_gguf(path, cfg, w, types, alignment=32, vocab=None, name="random-llama",
               extra_kv=()):
    """A llama GGUF as llama.cpp's converter writes it. `types(name, key)`
    gives each tensor's type name (F32, F16, BF16, Q8_0, Q4_0). `extra_kv`: more
    metadata [(key, type, value)], e.g. a tokenizer copied from another GGUF.
    Returns the stored weights (float64)."""
    stored = map_weights(w, lambda n, a: a)
    tensors = []
    quantized = False
    for gname, key in gguf_names(cfg):
        a = lookup(w, key)
        tname = types(gname, key)
        quantized |= tname in ("Q8_0", "Q4_0")
        raw, values = gguf_encode(a, tname)
        tensors.append((gname, GGML_TYPES[tname], list(reversed(a.shape)), raw))
        if key[0] == "layers":
            stored["layers"][key[1]][key[2]] = values
        else:
            stored[key[0]] = values
    kv = gguf_llama_metadata(cfg, name, alignment if alignment != 32 else None, quantized, vocab)
    kv += list(extra_kv)
    with open(path, "wb") as f:
        f.write(gguf_bytes(kv, tensors, alignment))
    return stored


def read_gguf_metadata(path, typed=False):
    """The metadata of a GGUF file (v2/v3) as {key: value}; arrays as lists.
    Enough to copy a vocabulary out of llama.cpp's vocab files. typed=True:
    {key: (type, value)} with arrays as (element type, list), the form
    gguf_bytes() writes."""
    scalar = {GGUF_UINT8: "<B", GGUF_INT8: "<b", GGUF_UINT16: "<H", GGUF_INT16: "<h",
              GGUF_UINT32: "<I", GGUF_INT32: "<i", GGUF_FLOAT32: "<f", GGUF_BOOL: "<?",
              GGUF_UINT64: "<Q", GGUF_INT64: "<q", GGUF_FLOAT64: "<d"}
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"GGUF":
        raise ValueError(f"{path}: not GGUF")
    pos = 4

    def take(fmt):
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return value

    def string():
        nonlocal pos
        n = take("<Q")
        s = data[pos:pos + n]
        pos += n
        return s.decode("utf-8", errors="surrogateescape")

    def value(vtype):
        if vtype == GGUF_STRING:
            return string()
        if vtype == GGUF_ARRAY:
            etype, count = take("<I"), take("<Q")
            items = [value(etype) for _ in range(count)]
            return (etype, items) if typed else items
        return take(scalar[vtype])

    version, _, n_kv = take("<I"), take("<Q"), take("<Q")
    assert version in (2, 3), version
    out = {}
    for _ in range(n_kv):
        key = string()
        vtype = take("<I")
        out[key] = (vtype, value(vtype)) if typed else value(vtype)
    return out


def llama2c_tokenizer_pieces(tokens, bos=1, eos=2):
    """SentencePiece pieces as llama2.c's tokenizer.py exports them: BOS and
    EOS as '\\n<s>\\n' / '\\n</s>\\n', '▁' replaced by a space; UTF-8 bytes."""
    out = []
    for i, t in enumerate(tokens):
        if i == bos:
            t = "\n<s>\n"
        elif i == eos:
            t = "\n</s>\n"
        out.append(t.replace("\u2581", " ").encode("utf-8"))
    return out


def read_vocab_tests(path):
    """llama.cpp's tokenizer test files: PATH.inp (cases separated by a line
    '__ggml_vocab_test__') and PATH.out (the ids of each case, one line each)."""
    separator = "\n__ggml_vocab_test__\n"
    with open(path + ".inp", encoding="utf-8") as f:
        text = f.read()
    if text.endswith(separator):
        text = text[:-len(separator)]
    inputs = text.split(separator)
    with open(path + ".out", encoding="utf-8") as f:
        lines = f.read().split("\n")
    outputs = [[int(t) for t in line.split()] for line in lines[:len(inputs)]]
    if len(outputs) != len(inputs):
        raise ValueError(f"{path}: {len(inputs)} inputs but {len(outputs)} outputs")
    return list(zip(inputs, outputs))
