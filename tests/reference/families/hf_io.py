"""Reading a Hugging Face checkpoint folder the way transformers does:
config.json, then model.safetensors or the shards that
model.safetensors.index.json's weight_map names. Tensors are widened to
float64 exactly (F32, F16 and BF16 -- the upper half of an IEEE float32).

The safetensors layout (huggingface/safetensors, docs): an 8-byte
little-endian header length N, N bytes of JSON {name: {"dtype", "shape",
"data_offsets": [begin, end]}} (plus "__metadata__"), then the data, offsets
relative to its start.
"""

import json
import os
import struct

import numpy as np
import torch


def read_safetensors(path):
    """{name: float64 torch tensor} of one safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + length])
    base = 8 + length
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = data[base + begin:base + end]
        shape = entry["shape"]
        dtype = entry["dtype"]
        if dtype == "F32":
            values = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif dtype == "F16":
            values = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif dtype == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            values = bits.view(np.float32).astype(np.float64)
        else:
            raise ValueError(f"{path}: tensor {name}: dtype {dtype} has no reference reader")
        out[name] = torch.from_numpy(values.reshape(shape).copy())
    return out


def read_folder(folder):
    """(config dict, {tensor name: float64 tensor}) of a checkpoint folder."""
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for name in files:
        tensors.update(read_safetensors(os.path.join(folder, name)))
    return config, tensors
