"""The reference dequantizer (and quantizer) of lockstep's q8_0 / q4_0 tensors,
in h5py + numpy: docs/model-format.md ("Quantized tensors") in code.

A quantized matrix [rows, cols] is stored as a dataset of shape [rows, cols/32]
whose elements are blocks, the compound types

    q8_0: [('d', '<f2'), ('qs', 'i1', (32,))]   value j = d * qs[j]
    q4_0: [('d', '<f2'), ('qs', 'u1', (16,))]   value j = d * ((qs[j] & 15) - 8),
                                                value j+16 = d * ((qs[j] >> 4) - 8)

byte for byte GGUF's block_q8_0 / block_q4_0. quantize_q8_0 / quantize_q4_0 are
ggml's reference quantizers (quantize_row_q8_0_ref / quantize_row_q4_0_ref)
with every operation in float32 and none fused.

    import h5py, quant_blocks
    with h5py.File("model-q8_0.h5") as f:
        w = quant_blocks.read_matrix(f, "/layers/0/attn/wq")   # float32 [rows, cols]
"""
import numpy as np

Q8_0 = np.dtype([("d", "<f2"), ("qs", "i1", (32,))])
Q4_0 = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def block_type(ds_or_dtype):
    """'q8_0', 'q4_0' or None for a dataset (or numpy dtype)."""
    dt = getattr(ds_or_dtype, "dtype", ds_or_dtype)
    if dt == Q8_0:
        return "q8_0"
    if dt == Q4_0:
        return "q4_0"
    return None


def dequantize(blocks):
    """Structured array of q8_0 or q4_0 blocks [rows, nb] -> float32 [rows, nb*32]
    (exact: an f16 scale times a small integer)."""
    d = blocks["d"].astype(np.float32)[..., None]
    qs = blocks["qs"]
    if blocks.dtype == Q8_0:
        q = qs.astype(np.float32)
    elif blocks.dtype == Q4_0:
        q = np.concatenate([(qs & 15).astype(np.int8) - 8, (qs >> 4).astype(np.int8) - 8],
                           axis=-1).astype(np.float32)
    else:
        raise ValueError(f"not a q8_0 / q4_0 block type: {blocks.dtype}")
    out = d * q
    return out.reshape(*blocks.shape[:-1], blocks.shape[-1] * 32)


def read_matrix(f, path):
    """Any weight of a lockstep model file as float32 (f32, f16, bf16 through
    HDF5's own conversion; q8_0 / q4_0 dequantized)."""
    ds = f[path]
    if block_type(ds) is not None:
        return dequantize(ds[()])
    return ds[()].astype(np.float32)


def _f16(d):
    """float32 -> float16, round to nearest even (what ggml's F16C does)."""
    return np.asarray(d, np.float32).astype(np.float16)


def quantize_q8_0(x):
    """float32 [..., n] (n a multiple of 32) -> q8_0 blocks [..., n/32]."""
    x = np.asarray(x, np.float32)
    xb = x.reshape(-1, 32)
    amax = np.abs(xb).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    nonzero = d != 0
    inv = np.zeros_like(d)
    inv[nonzero] = (np.float32(1) / d[nonzero]).astype(np.float32)
    v = (xb * inv[:, None]).astype(np.float32)
    # roundf: half away from zero, exactly (in float64 |v| + 0.5 cannot round).
    q = np.sign(v) * np.floor(np.abs(v.astype(np.float64)) + 0.5)
    out = np.empty(xb.shape[0], Q8_0)
    out["d"] = _f16(d)
    out["qs"] = q.astype(np.int8)
    return out.reshape(*x.shape[:-1], x.shape[-1] // 32)


def quantize_q4_0(x):
    """float32 [..., n] (n a multiple of 32) -> q4_0 blocks [..., n/32]."""
    x = np.asarray(x, np.float32)
    xb = x.reshape(-1, 32)
    # The value of largest magnitude, the first one on ties.
    idx = np.argmax(np.abs(xb), axis=1)
    m = xb[np.arange(xb.shape[0]), idx]
    d = (m / np.float32(-8)).astype(np.float32)
    nonzero = d != 0
    inv = np.zeros_like(d)
    inv[nonzero] = (np.float32(1) / d[nonzero]).astype(np.float32)
    t = ((xb * inv[:, None]).astype(np.float32) + np.float32(8.5)).astype(np.float32)
    n = np.minimum(15, np.trunc(t).astype(np.int32)).astype(np.uint8)
    out = np.empty(xb.shape[0], Q4_0)
    out["d"] = _f16(d)
    out["qs"] = n[:, :16] | (n[:, 16:] << 4)
    return out.reshape(*x.shape[:-1], x.shape[-1] // 32)


def quantize(x, dtype):
    return quantize_q8_0(x) if dtype == "q8_0" else quantize_q4_0(x)


def same_blocks(a, b):
    """Bit-exact comparison of two block arrays (scales as bits, values)."""
    return (a.dtype == b.dtype and a.shape == b.shape
            and np.array_equal(a["d"].view(np.uint16), b["d"].view(np.uint16))
            and np.array_equal(a["qs"], b["qs"]))
