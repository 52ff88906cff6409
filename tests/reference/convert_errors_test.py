#!/usr/bin/python3
"""`lockstep convert` on bad input (ctest label: unit).

Every case must exit 1 with exactly one stderr line "lockstep: error: ..."
matching the expected pattern (naming the file and the tensor or field), and
leave no output file behind (neither MODEL.h5 nor MODEL.h5.partial). Run it
under the asan preset to check that no bad file causes an out-of-bounds read.

  convert_errors_test.py --lockstep path/to/lockstep [--format hf|llama2c|gguf|tokenizer|families]
"""

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint_formats as cf  # noqa: E402

failures = []


def expect_error(lockstep, work, label, args, pattern, code=1):
    out = os.path.join(work, "out.h5")
    done = subprocess.run([lockstep, "convert", *args, "--output", out, "--no-progress"],
                          capture_output=True, text=True)
    lines = done.stderr.splitlines()
    ok = True
    if done.returncode != code:
        failures.append(f"{label}: exit {done.returncode}, want {code}; stderr: {done.stderr!r}")
        ok = False
    elif len(lines) != 1 or not lines[0].startswith("lockstep: error: "):
        failures.append(f"{label}: want one 'lockstep: error:' line, got {done.stderr!r}")
        ok = False
    elif not re.search(pattern, lines[0]):
        failures.append(f"{label}: {lines[0]!r} does not match {pattern!r}")
        ok = False
    for leftover in (out, out + ".partial"):
        if os.path.exists(leftover):
            failures.append(f"{label}: {os.path.basename(leftover)} left behind")
            os.remove(leftover)
    print(f"{'ok  ' if ok else 'FAIL'} {label}: {lines[0] if lines else done.stderr!r}")


def hf_folder(work, name, cfg=None, dtype="BF16", mutate_entries=None, mutate_config=None):
    """A valid HF folder, optionally with its safetensors entries or config changed."""
    cfg = cfg or cf.Config()
    w = cf.random_weights(cfg, 3)
    folder = os.path.join(work, name)
    os.makedirs(folder)
    config = cf.hf_config(cfg)
    if mutate_config:
        mutate_config(config)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    entries = []
    for tname, key in cf.hf_names(cfg):
        a = cf.lookup(w, key)
        raw, _ = cf.encode(a, dtype)
        entries.append([tname, dtype, list(a.shape), raw])
    if mutate_entries:
        entries = mutate_entries(entries)
    cf.write_safetensors(os.path.join(folder, "model.safetensors"), entries)
    return folder


def raw_safetensors(folder, header, data=b"", length=None):
    text = json.dumps(header).encode()
    with open(os.path.join(folder, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text) if length is None else length) + text + data)


def hf_cases(lockstep, work):
    st = "model\\.safetensors"
    expect_error(lockstep, work, "hf: folder missing", ["--from", "hf", os.path.join(work, "nope")],
                 r"nope: checkpoint folder not found")
    good = hf_folder(work, "good")
    expect_error(lockstep, work, "hf: a file, not a folder",
                 ["--from", "hf", os.path.join(good, "config.json")], r"config\.json: not a folder")
    no_config = os.path.join(work, "no_config")
    shutil.copytree(good, no_config)
    os.remove(os.path.join(no_config, "config.json"))
    expect_error(lockstep, work, "hf: no config.json", ["--from", "hf", no_config],
                 r"no_config/config\.json: missing")
    no_weights = os.path.join(work, "no_weights")
    shutil.copytree(good, no_weights)
    os.remove(os.path.join(no_weights, "model.safetensors"))
    expect_error(lockstep, work, "hf: no safetensors", ["--from", "hf", no_weights],
                 r"no model\.safetensors or model\.safetensors\.index\.json")

    # Truncated: the last tensor's bytes are cut off.
    cut = os.path.join(work, "cut")
    shutil.copytree(good, cut)
    path = os.path.join(cut, "model.safetensors")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 100)
    expect_error(lockstep, work, "hf: truncated data", ["--from", "hf", cut],
                 st + r": truncated: tensor 'lm_head\.weight' needs bytes")
    with open(path, "r+b") as f:
        f.truncate(5)
    expect_error(lockstep, work, "hf: shorter than the length field", ["--from", "hf", cut],
                 st + r": truncated: 5 bytes")

    # Header lies and damage, written by hand.
    bad = os.path.join(work, "bad")
    shutil.copytree(good, bad)
    raw_safetensors(bad, {"x": 1}, length=1 << 40)
    expect_error(lockstep, work, "hf: header length beyond the file", ["--from", "hf", bad],
                 st + r": truncated or not a safetensors file: the header length field says")
    with open(os.path.join(bad, "model.safetensors"), "wb") as f:
        f.write(b"\x10\0\0\0\0\0\0\0PK\x03\x04 this is a zip")
    expect_error(lockstep, work, "hf: wrong magic (not a safetensors header)",
                 ["--from", "hf", bad], st + r": not a safetensors file")
    with open(os.path.join(bad, "model.safetensors"), "wb") as f:
        f.write(b"\x08\0\0\0\0\0\0\0{\"a\": [}")
    expect_error(lockstep, work, "hf: header not JSON", ["--from", "hf", bad],
                 st + r": the safetensors header is not valid JSON")
    raw_safetensors(bad, {"model.embed_tokens.weight":
                          {"dtype": "Q4", "shape": [2, 2], "data_offsets": [0, 2]}}, b"\0\0")
    expect_error(lockstep, work, "hf: unknown dtype", ["--from", "hf", bad],
                 st + r": tensor 'model\.embed_tokens\.weight' has unknown dtype 'Q4'")
    raw_safetensors(bad, {"model.embed_tokens.weight":
                          {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 16]}}, b"\0" * 64)
    expect_error(lockstep, work, "hf: shape and offsets disagree", ["--from", "hf", bad],
                 st + r": tensor 'model\.embed_tokens\.weight': the safetensors header lies")
    raw_safetensors(bad, {"model.embed_tokens.weight":
                          {"dtype": "F32", "shape": [4, 4], "data_offsets": [1000, 1064]}},
                    b"\0" * 64)
    expect_error(lockstep, work, "hf: offsets beyond the data", ["--from", "hf", bad],
                 st + r": truncated: tensor 'model\.embed_tokens\.weight' needs bytes \[1000, 1064\)")
    raw_safetensors(bad, {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                          "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}, b"\0" * 24)
    expect_error(lockstep, work, "hf: overlapping tensors", ["--from", "hf", bad],
                 st + r": tensors 'a' and 'b' overlap")
    raw_safetensors(bad, {"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}},
                    b"\0" * 16)
    expect_error(lockstep, work, "hf: negative dimension", ["--from", "hf", bad],
                 st + r": tensor 'a': a dimension of 'shape' is not a non-negative integer")

    # Valid containers, wrong model.
    def drop(name):
        return lambda entries: [e for e in entries if e[0] != name]
    folder = hf_folder(work, "missing", mutate_entries=drop("model.layers.1.mlp.up_proj.weight"))
    expect_error(lockstep, work, "hf: missing tensor", ["--from", "hf", folder],
                 st + r": tensor 'model\.layers\.1\.mlp\.up_proj\.weight' is missing \(needed for "
                 r"/layers/1/ffn/w_up by .*config\.json\)")
    folder = hf_folder(work, "no_lm_head", mutate_entries=drop("lm_head.weight"))
    expect_error(lockstep, work, "hf: untied without lm_head", ["--from", "hf", folder],
                 r"tensor 'lm_head\.weight' is missing")

    def wrong_shape(entries):
        for e in entries:
            if e[0] == "model.layers.0.self_attn.k_proj.weight":
                e[2] = [e[2][0] * 2, e[2][1] // 2]
        return entries
    folder = hf_folder(work, "shape", mutate_entries=wrong_shape)
    expect_error(lockstep, work, "hf: shape mismatch with config", ["--from", "hf", folder],
                 st + r": tensor 'model\.layers\.0\.self_attn\.k_proj\.weight' has shape "
                 r"\[64, 32\], but .*config\.json implies \[32, 64\] \(for /layers/0/attn/wk\)")

    def int_dtype(entries):
        for e in entries:
            if e[0] == "model.norm.weight":
                e[1] = "I32"
        return entries
    folder = hf_folder(work, "int", dtype="F32", mutate_entries=int_dtype)
    expect_error(lockstep, work, "hf: integer tensor", ["--from", "hf", folder],
                 st + r": tensor 'model\.norm\.weight' has dtype I32; expected F32, F16 or BF16")
    folder = hf_folder(work, "scaling", mutate_config=lambda c: c.update(
        rope_scaling={"rope_type": "llama3", "factor": 8.0}))
    expect_error(lockstep, work, "hf: rope scaling field missing", ["--from", "hf", folder],
                 r"config\.json: rope_scaling\.low_freq_factor is missing \(rope_scaling\.type "
                 r"\"llama3\" needs it\)")
    folder = hf_folder(work, "scaling_type", mutate_config=lambda c: c.update(
        rope_scaling={"type": "foo", "factor": 8.0}))
    expect_error(lockstep, work, "hf: unknown rope scaling", ["--from", "hf", folder],
                 r"config\.json: rope_scaling\.type \"foo\" is not supported \(supported: "
                 r"default, linear, dynamic, yarn, llama3, longrope \(or su\)\)")
    folder = hf_folder(work, "config_lies", mutate_config=lambda c: c.update(intermediate_size=150))
    expect_error(lockstep, work, "hf: config contradicts the tensors", ["--from", "hf", folder],
                 r"tensor 'model\.layers\.0\.mlp\.gate_proj\.weight' has shape \[160, 64\], but "
                 r".*config\.json implies \[150, 64\]")
    folder = hf_folder(work, "gemma", mutate_config=lambda c: c.update(model_type="gemma"))
    expect_error(lockstep, work, "hf: other architecture", ["--from", "hf", folder],
                 r"config\.json: model_type \"gemma\" is not supported \(supported: llama, "
                 r"qwen2, mistral, phi3\)")
    folder = hf_folder(work, "qwen", mutate_config=lambda c: c.update(model_type="qwen2"))
    expect_error(lockstep, work, "hf: qwen2 config without its biases", ["--from", "hf", folder],
                 st + r": tensor 'model\.layers\.0\.self_attn\.q_proj\.bias' is missing "
                 r"\(needed for /layers/0/attn/bq by .*config\.json\)")

    # Sharded: the index names a file that is not there, or a tensor the shard lacks.
    sharded = os.path.join(work, "sharded")
    cfg = cf.Config()
    cf.write_hf(sharded, cfg, cf.random_weights(cfg, 1), "F32", shards=2)
    os.remove(os.path.join(sharded, "model-00002-of-00002.safetensors"))
    expect_error(lockstep, work, "hf: shard missing", ["--from", "hf", sharded],
                 r"model-00002-of-00002\.safetensors: file not found")
    sharded = os.path.join(work, "sharded2")
    cf.write_hf(sharded, cfg, cf.random_weights(cfg, 1), "F32", shards=2)
    index_path = os.path.join(sharded, "model.safetensors.index.json")
    with open(index_path) as f:
        index = json.load(f)
    index["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors"
    with open(index_path, "w") as f:
        json.dump(index, f)
    expect_error(lockstep, work, "hf: index points to the wrong shard", ["--from", "hf", sharded],
                 r"model-00001-of-00002\.safetensors: tensor 'model\.norm\.weight' is missing "
                 r"\(model\.safetensors\.index\.json puts it there\)")
    index["weight_map"]["model.norm.weight"] = "../etc/passwd"
    with open(index_path, "w") as f:
        json.dump(index, f)
    expect_error(lockstep, work, "hf: index escapes the folder", ["--from", "hf", sharded],
                 r"index\.json: weight_map entry 'model\.norm\.weight' names '\.\./etc/passwd'")


def llama2c_cases(lockstep, work):
    cfg = cf.Config(tied=False)
    w = cf.random_weights(cfg, 5)
    good = os.path.join(work, "good.bin")
    cf.write_llama2c(good, cfg, w, version=0)
    data = open(good, "rb").read()

    def variant(name, content):
        path = os.path.join(work, name)
        with open(path, "wb") as f:
            f.write(content)
        return path
    expect_error(lockstep, work, "llama2c: missing file",
                 ["--from", "llama2c", os.path.join(work, "nope.bin")], r"nope\.bin: file not found")
    expect_error(lockstep, work, "llama2c: truncated",
                 ["--from", "llama2c", variant("cut.bin", data[:-4])],
                 r"cut\.bin: truncated: the llama2\.c header of .* implies \d+ bytes, the file has")
    expect_error(lockstep, work, "llama2c: trailing bytes",
                 ["--from", "llama2c", variant("long.bin", data + b"\0" * 8)],
                 r"long\.bin: the file has \d+ bytes but .* implies \d+: not a llama2\.c checkpoint")
    expect_error(lockstep, work, "llama2c: header of another file",
                 ["--from", "llama2c", variant("text.bin", b"GGUF" + b"hello world, not weights" * 8)],
                 r"text\.bin: not a llama2\.c checkpoint \(no 'ak42' magic.*implausible header")
    expect_error(lockstep, work, "llama2c: shorter than a header",
                 ["--from", "llama2c", variant("tiny.bin", b"\1\0\0\0")],
                 r"tiny\.bin: truncated: 4 bytes")
    header = struct.pack("<Ii", 0x616B3432, 3) + data[:28]
    expect_error(lockstep, work, "llama2c: unknown export version",
                 ["--from", "llama2c", variant("v3.bin", header + b"\0" * (256 - len(header)))],
                 r"v3\.bin: llama2\.c export version 3 is not supported")
    v2 = os.path.join(work, "v2.bin")
    cf.write_llama2c(v2, cfg, w, version=2, group_size=64)
    raw = bytearray(open(v2, "rb").read())
    raw[37:41] = struct.pack("<i", 48)
    expect_error(lockstep, work, "llama2c: group size not dividing dim",
                 ["--from", "llama2c", variant("v2bad.bin", bytes(raw))],
                 r"v2bad\.bin: llama2\.c version 2 header has group_size 48")
    raw = bytearray(data)
    raw[0:4] = struct.pack("<i", 60)  # head size 60 / 4 = 15 is odd
    expect_error(lockstep, work, "llama2c: inconsistent header",
                 ["--from", "llama2c", variant("odd.bin", bytes(raw))],
                 r"odd\.bin: not a llama2\.c checkpoint .*dim=60")


def gguf_cases(lockstep, work):
    cfg = cf.Config()
    w = cf.random_weights(cfg, 4)
    norm_f32 = lambda n, k: "F32" if n.endswith("norm.weight") else "Q8_0"  # noqa: E731

    def gguf(name, kv_edit=None, tensor_edit=None, raw_edit=None):
        """A valid llama GGUF with its metadata, tensor list or bytes edited."""
        tensors = []
        for gname, key in cf.gguf_names(cfg):
            a = cf.lookup(w, key)
            tname = norm_f32(gname, key)
            raw, _ = cf.gguf_encode(a, tname)
            tensors.append([gname, cf.GGML_TYPES[tname], list(reversed(a.shape)), raw])
        kv = cf.gguf_llama_metadata(cfg, quantized=True)
        if kv_edit:
            kv = kv_edit(kv)
        if tensor_edit:
            tensors = tensor_edit(tensors)
        data = cf.gguf_bytes(kv, tensors)
        if raw_edit:
            data = raw_edit(data)
        path = os.path.join(work, name + ".gguf")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def set_kv(key, vtype, value):
        return lambda kv: [e for e in kv if e[0] != key] + [(key, vtype, value)]

    def drop_kv(key):
        return lambda kv: [e for e in kv if e[0] != key]

    def edit_tensor(name, fn):
        def edit(tensors):
            for t in tensors:
                if t[0] == name:
                    fn(t)
            return tensors
        return edit

    expect_error(lockstep, work, "gguf: missing file",
                 ["--from", "gguf", os.path.join(work, "nope.gguf")], r"nope\.gguf")
    expect_error(lockstep, work, "gguf: wrong magic",
                 ["--from", "gguf", gguf("magic", raw_edit=lambda d: b"GGUX" + d[4:])],
                 r"magic\.gguf: not a GGUF file")
    expect_error(lockstep, work, "gguf: truncated tensor data",
                 ["--from", "gguf", gguf("cut", raw_edit=lambda d: d[:-40])],
                 r"cut\.gguf: truncated or corrupt GGUF: tensor 'output\.weight'")
    expect_error(lockstep, work, "gguf: truncated metadata",
                 ["--from", "gguf", gguf("cut2", raw_edit=lambda d: d[:300])],
                 r"cut2\.gguf: truncated")
    expect_error(lockstep, work, "gguf: version 1",
                 ["--from", "gguf", gguf("v1", raw_edit=lambda d: d[:4] + struct.pack("<I", 1) +
                                         d[8:])],
                 r"v1\.gguf: GGUF version 1 is not supported")

    def lie_string(d):
        # The first key's length field (after the 24-byte header) claims 2^40 bytes.
        return d[:24] + struct.pack("<Q", 1 << 40) + d[32:]
    expect_error(lockstep, work, "gguf: string length lies",
                 ["--from", "gguf", gguf("lie", raw_edit=lie_string)],
                 r"lie\.gguf: truncated or corrupt GGUF: .*claims a length of 1099511627776")
    def set_offset(value):
        def edit(d):
            name = b"output.weight"
            at = d.index(struct.pack("<Q", len(name)) + name) + 8 + len(name) + 4 + 16 + 4
            return d[:at] + struct.pack("<Q", value) + d[at + 8:]
        return edit
    expect_error(lockstep, work, "gguf: offset beyond the file",
                 ["--from", "gguf", gguf("offset", raw_edit=set_offset(1 << 40))],
                 r"offset\.gguf: truncated or corrupt GGUF: tensor 'output\.weight'")
    expect_error(lockstep, work, "gguf: misaligned offset",
                 ["--from", "gguf", gguf("align", raw_edit=set_offset(33))],
                 r"align\.gguf: GGUF tensor 'output\.weight' has offset 33, not a multiple of the "
                 r"alignment 32")
    def overlap(d):
        # output.weight claims the bytes of the tensor before it.
        name = b"output.weight"
        at = d.index(struct.pack("<Q", len(name)) + name) + 8 + len(name) + 4 + 16 + 4
        return d[:at] + struct.pack("<Q", 0) + d[at + 8:]
    expect_error(lockstep, work, "gguf: overlapping tensors",
                 ["--from", "gguf", gguf("overlap", raw_edit=overlap)],
                 r"overlap\.gguf: corrupt GGUF: tensors '.*' \(data offset 0, [0-9]+ bytes\) and "
                 r"'.*' \(data offset 0\) overlap")
    expect_error(lockstep, work, "gguf: infinite freq_base",
                 ["--from", "gguf", gguf("theta", kv_edit=set_kv(
                     "llama.rope.freq_base", cf.GGUF_FLOAT32, float("inf")))],
                 r"theta\.gguf: GGUF key 'llama\.rope\.freq_base' is inf; it must be a finite "
                 r"positive number")
    expect_error(lockstep, work, "gguf: unknown tensor type",
                 ["--from", "gguf", gguf("type", tensor_edit=edit_tensor(
                     "blk.0.attn_v.weight", lambda t: t.__setitem__(1, 99)))],
                 r"type\.gguf: GGUF tensor 'blk\.0\.attn_v\.weight' has ggml type 99, unknown")
    expect_error(lockstep, work, "gguf: unsupported quantisation",
                 ["--from", "gguf", gguf("q5", tensor_edit=edit_tensor(
                     "blk.1.ffn_up.weight", lambda t: (t.__setitem__(1, 6),
                                                        t.__setitem__(3, t[3][:len(t[3]) * 22 // 34]))))],
                 r"q5\.gguf: tensor 'blk\.1\.ffn_up\.weight' has type Q5_0; only F32, F16, BF16, "
                 r"Q8_0 and Q4_0 are read")
    expect_error(lockstep, work, "gguf: missing tensor",
                 ["--from", "gguf", gguf("missing", tensor_edit=lambda ts: [
                     t for t in ts if t[0] != "blk.1.ffn_down.weight"])],
                 r"missing\.gguf: tensor 'blk\.1\.ffn_down\.weight' is missing \(needed for "
                 r"/layers/1/ffn/w_down by the GGUF metadata")
    expect_error(lockstep, work, "gguf: shape mismatch with the metadata",
                 ["--from", "gguf", gguf("shape", kv_edit=set_kv(
                     "llama.feed_forward_length", cf.GGUF_UINT32, 96))],
                 r"shape\.gguf: tensor 'blk\.0\.ffn_gate\.weight' has shape \[160, 64\], but "
                 r"the GGUF metadata of .*shape\.gguf implies \[96, 64\]")
    expect_error(lockstep, work, "gguf: other architecture",
                 ["--from", "gguf", gguf("arch", kv_edit=set_kv(
                     "general.architecture", cf.GGUF_STRING, "gpt2"))],
                 r"arch\.gguf: general\.architecture \"gpt2\" is not supported \(supported: "
                 r"llama, qwen2, phi3\)")
    expect_error(lockstep, work, "gguf: required key missing",
                 ["--from", "gguf", gguf("nokey", kv_edit=drop_kv("llama.block_count"))],
                 r"nokey\.gguf: GGUF key 'llama\.block_count' is missing")
    expect_error(lockstep, work, "gguf: key of the wrong type",
                 ["--from", "gguf", gguf("keytype", kv_edit=set_kv(
                     "llama.block_count", cf.GGUF_STRING, "two"))],
                 r"keytype\.gguf: GGUF key 'llama\.block_count' is string")
    expect_error(lockstep, work, "gguf: rope scaling",
                 ["--from", "gguf", gguf("scaling", kv_edit=set_kv(
                     "llama.rope.scaling.type", cf.GGUF_STRING, "foo"))],
                 r"scaling\.gguf: GGUF key 'llama\.rope\.scaling\.type' is \"foo\", not "
                 r"supported")
    expect_error(lockstep, work, "gguf: yarn without a factor",
                 ["--from", "gguf", gguf("yarn", kv_edit=set_kv(
                     "llama.rope.scaling.type", cf.GGUF_STRING, "yarn"))],
                 r"yarn\.gguf: GGUF key 'llama\.rope\.scaling\.factor' is missing or not "
                 r"positive")
    expect_error(lockstep, work, "gguf: rope_freqs of the wrong length",
                 ["--from", "gguf", gguf("freqs", tensor_edit=lambda ts: ts + [[
                     "rope_freqs.weight", cf.GGML_F32, [5], np.ones(5, np.float32).tobytes()]])],
                 r"freqs\.gguf: tensor 'rope_freqs\.weight' must be F32 \[8\]")
    expect_error(lockstep, work, "gguf: a bias llama has not",
                 ["--from", "gguf", gguf("bias", tensor_edit=lambda ts: ts + [[
                     "blk.0.attn_q.bias", cf.GGML_F32, [64], np.ones(64, np.float32).tobytes()]])],
                 r"bias\.gguf: tensor 'blk\.0\.attn_q\.bias' is a bias, but architecture "
                 r"'llama' has none there")
    expect_error(lockstep, work, "gguf: partial rotary",
                 ["--from", "gguf", gguf("rotary", kv_edit=set_kv(
                     "llama.rope.dimension_count", cf.GGUF_UINT32, 8))],
                 r"rotary\.gguf: GGUF key 'llama\.rope\.dimension_count' is 8 but the head size "
                 r"is 16")


def tokenizer_cases(lockstep, work):
    cfg = cf.Config(vocab=300)
    model = os.path.join(work, "model.bin")
    cf.write_llama2c(model, cfg, cf.random_weights(cfg, 6), version=0)
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [b"<0x%02X>" % i for i in range(256)]
    pieces += [b" t%d" % i for i in range(300 - len(pieces))]
    scores = [0.0] * 259 + [-float(i) for i in range(300 - 259)]
    good = os.path.join(work, "tokenizer.bin")
    cf.write_llama2c_tokenizer(good, pieces, scores)
    data = open(good, "rb").read()

    def variant(name, content):
        path = os.path.join(work, name)
        with open(path, "wb") as f:
            f.write(content)
        return path
    expect_error(lockstep, work, "tokenizer: missing file",
                 ["--from", "llama2c", model, "--tokenizer", os.path.join(work, "nope.bin")],
                 r"nope\.bin: file not found")
    expect_error(lockstep, work, "tokenizer: truncated tokenizer.bin",
                 ["--from", "llama2c", model, "--tokenizer", variant("cut.bin", data[:-3])],
                 r"cut\.bin: truncated: token 299 needs bytes")
    cf.write_llama2c_tokenizer(os.path.join(work, "big.bin"), pieces + [b" extra"], scores + [-99.0])
    expect_error(lockstep, work, "tokenizer: more tokens than the model",
                 ["--from", "llama2c", model, "--tokenizer", os.path.join(work, "big.bin")],
                 r"big\.bin: \d+ bytes follow the model's 300 tokens")
    raw = bytearray(data)
    raw[0:4] = struct.pack("<i", 3)  # max_token_length smaller than the tokens
    expect_error(lockstep, work, "tokenizer: token longer than max_token_length",
                 ["--from", "llama2c", model, "--tokenizer", variant("short.bin", bytes(raw))],
                 r"short\.bin: token 0 has length 5, outside \[0, max_token_length = 3\]")
    small = cf.Config(vocab=200)
    small_model = os.path.join(work, "small.bin")
    cf.write_llama2c(small_model, small, cf.random_weights(small, 6), version=0)
    gguf_vocab = os.path.join(work, "vocab.gguf")
    meta = [("general.architecture", cf.GGUF_STRING, "llama"),
            ("tokenizer.ggml.model", cf.GGUF_STRING, "llama"),
            ("tokenizer.ggml.tokens", cf.GGUF_ARRAY,
             (cf.GGUF_STRING, [p.decode().replace("\n", "").replace(" ", "\u2581")
                               for p in pieces])),
            ("tokenizer.ggml.scores", cf.GGUF_ARRAY, (cf.GGUF_FLOAT32, scores)),
            ("tokenizer.ggml.token_type", cf.GGUF_ARRAY,
             (cf.GGUF_INT32, [2, 3, 3] + [6] * 256 + [1] * 41))]
    with open(gguf_vocab, "wb") as f:
        f.write(cf.gguf_bytes(meta, []))
    expect_error(lockstep, work, "tokenizer: larger than the model's vocabulary",
                 ["--from", "llama2c", small_model, "--tokenizer", gguf_vocab],
                 r"vocab\.gguf.*: the tokenizer has 300 tokens but the model's vocabulary has 200")


def family_cases(lockstep, work):
    """The families' own ways to be wrong: fused tensors of the wrong size,
    biases that do not belong, configs that disagree with the tensors,
    unsupported settings -- in Hugging Face folders and GGUF files written as
    family_reference_test.py writes them."""
    import copy

    import family_reference_test as frt

    def hf(name, cfg, edit_tensors=None, edit_config=None):
        """The tensors of `cfg`, and the config edited after."""
        tensors = frt.random_tensors(cfg, 5)
        if edit_tensors:
            edit_tensors(tensors)
        cfg = copy.deepcopy(cfg)
        if edit_config:
            edit_config(cfg)
        folder = os.path.join(work, name)
        frt.write_hf(folder, cfg, tensors, "BF16")
        return ["--from", "hf", folder]

    def gguf(name, cfg, edit_tensors=None, kv_edit=None):
        tensors = frt.random_tensors(cfg, 5)
        if edit_tensors:
            edit_tensors(tensors)
        path = os.path.join(work, name + ".gguf")
        frt.write_gguf(path, cfg, tensors, "F16")
        if kv_edit:  # rewrite the file with its metadata edited
            kv = cf.read_gguf_metadata(path, typed=True)
            with open(path, "rb") as f:
                stored = read_gguf_tensors(f.read())
            with open(path, "wb") as f:
                f.write(cf.gguf_bytes(kv_edit([(k, t, v) for k, (t, v) in kv.items()]), stored))
        return ["--from", "gguf", path]

    st = r"model\.safetensors"
    qkv = "model.layers.0.self_attn.qkv_proj.weight"

    def shrink(name, rows):
        return lambda t: t.__setitem__(name, t[name][:rows])
    expect_error(lockstep, work, "phi3: fused qkv_proj of the wrong size",
                 hf("phi3_qkv", frt.PHI_3, shrink(qkv, 300)),
                 st + r": fused tensor 'model\.layers\.0\.self_attn\.qkv_proj\.weight' has shape "
                 r"\[300, 128\], but .*config\.json implies \[384, 128\] \(rows: /layers/0/attn/wq "
                 r"128 \+ /layers/0/attn/wk 128 \+ /layers/0/attn/wv 128\)")
    expect_error(lockstep, work, "phi3: fused gate_up_proj of the wrong size",
                 hf("phi3_gate_up", frt.PHI_3,
                    shrink("model.layers.2.mlp.gate_up_proj.weight", 320)),
                 r"fused tensor 'model\.layers\.2\.mlp\.gate_up_proj\.weight' has shape \[320, "
                 r"128\], but .*config\.json implies \[640, 128\] \(rows: /layers/2/ffn/w_gate 320 "
                 r"\+ /layers/2/ffn/w_up 320\)")
    expect_error(lockstep, work, "phi3: unfused tensors in a phi3 folder",
                 hf("phi3_unfused", frt.PHI_3,
                    lambda t: t.__setitem__("model.layers.0.self_attn.q_proj.weight",
                                            t.pop(qkv)[:128])),
                 st + r": tensor 'model\.layers\.0\.self_attn\.qkv_proj\.weight' is missing "
                 r"\(needed for /layers/0/attn/wq")
    expect_error(lockstep, work, "phi3: partial rotary",
                 hf("phi3_rotary", frt.PHI_3,
                    edit_config=lambda c: c.update(partial_rotary_factor=0.75)),
                 r"config\.json: partial_rotary_factor 0\.75 is not supported")
    expect_error(lockstep, work, "phi3: longrope factors of the wrong length",
                 hf("phi35_factors", frt.PHI_35, edit_config=lambda c: c["rope_scaling"].update(
                     short_factor=[1.0, 1.0, 1.0])),
                 r"config\.json: rope_scaling\.short_factor has 3 entries, expected head_dim/2 = 8")
    expect_error(lockstep, work, "qwen2: a bias of the wrong size",
                 hf("qwen_bias", frt.QWEN_25,
                    shrink("model.layers.1.self_attn.k_proj.bias", 16)),
                 st + r": tensor 'model\.layers\.1\.self_attn\.k_proj\.bias' has shape \[16\], "
                 r"but .*config\.json implies \[32\] \(for /layers/1/attn/bk\)")
    expect_error(lockstep, work, "qwen2: use_sliding_window",
                 hf("qwen_window", frt.QWEN_25,
                    edit_config=lambda c: c.update(use_sliding_window=True)),
                 r"config\.json: use_sliding_window true is not supported")
    expect_error(lockstep, work, "llama: a bias the config does not have",
                 hf("llama_bias", frt.LLAMA_31, lambda t: t.__setitem__(
                     "model.layers.0.self_attn.q_proj.bias", np.zeros(128, np.float32))),
                 st + r".*: tensor 'model\.layers\.0\.self_attn\.q_proj\.bias' is a bias, but "
                 r"architecture 'llama' \(model_type in .*config\.json\) has none there")
    expect_error(lockstep, work, "llama: attention_bias true",
                 hf("llama_attention_bias", frt.LLAMA_31,
                    edit_config=lambda c: c.update(attention_bias=True)),
                 r"config\.json: attention_bias true is not supported")
    expect_error(lockstep, work, "llama: rope_scaling llama3 without its context",
                 hf("llama3_context", frt.LLAMA_31, edit_config=lambda c: c["rope_scaling"].pop(
                     "original_max_position_embeddings")),
                 r"config\.json: rope_scaling\.original_max_position_embeddings is missing")
    expect_error(lockstep, work, "mistral: sliding_window not an integer",
                 hf("mistral_window", frt.MISTRAL_01,
                    edit_config=lambda c: c.update(sliding_window=4.5)),
                 r"config\.json: sliding_window must be a positive integer or null, got 4\.5")
    expect_error(lockstep, work, "mistral: config contradicts the tensors",
                 hf("mistral_heads", frt.MISTRAL_01,
                    edit_config=lambda c: c.update(num_key_value_heads=4)),
                 r"tensor 'model\.layers\.0\.self_attn\.k_proj\.weight' has shape \[32, 128\], "
                 r"but .*config\.json implies \[64, 128\]")

    expect_error(lockstep, work, "phi3 gguf: fused attn_qkv of the wrong size",
                 gguf("phi3_qkv", frt.PHI_3, shrink(qkv, 300)),
                 r"phi3_qkv\.gguf: fused tensor 'blk\.0\.attn_qkv\.weight' has shape \[300, "
                 r"128\], but the GGUF metadata of .* implies \[384, 128\]")
    expect_error(lockstep, work, "phi3 gguf: no sliding window key",
                 gguf("phi3_window", frt.PHI_3, kv_edit=lambda kv: [
                     e for e in kv if e[0] != "phi3.attention.sliding_window"]),
                 r"phi3_window\.gguf: GGUF key 'phi3\.attention\.sliding_window' is missing")
    expect_error(lockstep, work, "phi3 gguf: long factors without short ones",
                 drop_gguf_tensor(gguf("phi35_half", frt.PHI_35), "rope_factors_short.weight"),
                 r"phi35_half\.gguf: tensor 'rope_factors_long\.weight' without "
                 r"'rope_factors_short\.weight'")
    expect_error(lockstep, work, "qwen2 gguf: a missing bias",
                 drop_gguf_tensor(gguf("qwen_nobias", frt.QWEN_25), "blk.2.attn_v.bias"),
                 r"qwen_nobias\.gguf: tensor 'blk\.2\.attn_v\.bias' is missing \(needed for "
                 r"/layers/2/attn/bv")


def read_gguf_tensors(data):
    """The tensor list [(name, type, dims, raw)] of GGUF bytes (version 3,
    what checkpoint_formats.gguf_bytes writes), for rewriting a file."""
    pos = 4
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", data, pos)
    pos += 20

    def string():
        nonlocal pos
        (n,) = struct.unpack_from("<Q", data, pos)
        pos += 8 + n
        return data[pos - n:pos].decode()

    sizes = {cf.GGUF_UINT8: 1, cf.GGUF_INT8: 1, cf.GGUF_UINT16: 2, cf.GGUF_INT16: 2,
             cf.GGUF_UINT32: 4, cf.GGUF_INT32: 4, cf.GGUF_FLOAT32: 4, cf.GGUF_BOOL: 1,
             cf.GGUF_UINT64: 8, cf.GGUF_INT64: 8, cf.GGUF_FLOAT64: 8}

    def skip(vtype):
        nonlocal pos
        if vtype == cf.GGUF_STRING:
            string()
        elif vtype == cf.GGUF_ARRAY:
            etype, count = struct.unpack_from("<IQ", data, pos)
            pos += 12
            for _ in range(count):
                skip(etype)
        else:
            pos += sizes[vtype]

    for _ in range(n_kv):
        string()
        (vtype,) = struct.unpack_from("<I", data, pos)
        pos += 4
        skip(vtype)
    infos = []
    for _ in range(n_tensors):
        name = string()
        (n_dims,) = struct.unpack_from("<I", data, pos)
        pos += 4
        dims = list(struct.unpack_from(f"<{n_dims}Q", data, pos))
        pos += 8 * n_dims
        ttype, offset = struct.unpack_from("<IQ", data, pos)
        pos += 12
        infos.append((name, ttype, dims, offset))
    start = pos + (32 - pos % 32) % 32
    ends = [o for _, _, _, o in infos[1:]] + [len(data) - start]
    out = []
    for (name, ttype, dims, offset), end in zip(infos, ends):
        elements = int(np.prod(dims))
        size = {cf.GGML_F32: 4 * elements, cf.GGML_F16: 2 * elements, cf.GGML_BF16: 2 * elements,
                cf.GGML_Q8_0: elements // 32 * 34}[ttype]
        out.append((name, ttype, dims, data[start + offset:start + offset + size]))
    return out


def drop_gguf_tensor(args, name):
    """Rewrites the GGUF of convert args without tensor `name`."""
    path = args[-1]
    with open(path, "rb") as f:
        data = f.read()
    kv = cf.read_gguf_metadata(path, typed=True)
    tensors = [t for t in read_gguf_tensors(data) if t[0] != name]
    with open(path, "wb") as f:
        f.write(cf.gguf_bytes([(k, t, v) for k, (t, v) in kv.items()], tensors))
    return args


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lockstep", required=True)
    parser.add_argument("--format", choices=["hf", "llama2c", "gguf", "tokenizer", "families"],
                        action="append")
    args = parser.parse_args()
    formats = args.format or ["hf", "llama2c", "gguf", "tokenizer", "families"]
    with tempfile.TemporaryDirectory(prefix="convert_errors_") as work:
        for fmt in formats:
            sub = os.path.join(work, fmt)
            os.makedirs(sub)
            {"hf": hf_cases, "llama2c": llama2c_cases, "gguf": gguf_cases,
             "tokenizer": tokenizer_cases, "families": family_cases}[fmt](args.lockstep, sub)
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
