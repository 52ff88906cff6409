#!/usr/bin/python3
"""The engine against the independent PyTorch reference (llama_reference.py).

For each model config below, in its weight dtype: synthesize the model
(`lockstep synth`), run greedy requests through `lockstep run --dump-logits`,
run the same prompts through llama_reference.py (float64, imported), and check

  - the greedy tokens are identical for every step (64 by default);
  - at every step, max |engine logit - reference logit| <= 1e-4 * max |reference logit|.

The configs together cover grouped-query attention (and one KV head),
multi-head attention, tied and untied lm_head, head_dim 16, 32, 64 and 128,
rope_theta 10000, 500000 and 1000000, vocabularies that are not multiples of
64, and f32, f16 and bf16 weights. Requests have prompts on both sides of a
KV page boundary (64 positions) and run two at a time, so chunked batching is
exercised too.

  compare_engine.py --lockstep build/release/launch/lockstep [--steps 64] [--keep DIR]

Exit status 0 when everything matches; otherwise every mismatch is printed
with the config, request and step.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_reference  # noqa: E402  (beside this file)
TOLERANCE = 1e-4  # relative to the largest |logit| of the step

# name, dtype, seed, Hugging Face style config
CONFIGS = [
    ("gqa_untied_hd16_f32", "f32", 11, dict(
        hidden_size=128, intermediate_size=352, num_hidden_layers=4, num_attention_heads=8,
        num_key_value_heads=2, head_dim=16, vocab_size=500, rope_theta=10000.0,
        tie_word_embeddings=False, max_position_embeddings=256)),
    ("mha_tied_hd32_theta5e5_f16", "f16", 12, dict(
        hidden_size=96, intermediate_size=200, num_hidden_layers=3, num_attention_heads=3,
        num_key_value_heads=3, head_dim=32, vocab_size=301, rope_theta=500000.0,
        tie_word_embeddings=True, max_position_embeddings=256)),
    ("mqa_untied_hd128_theta1e6_bf16", "bf16", 13, dict(
        hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, head_dim=128, vocab_size=1000, rope_theta=1000000.0,
        tie_word_embeddings=False, max_position_embeddings=512)),
    ("gqa_hd64_qdim_ne_hidden_f32", "f32", 14, dict(
        hidden_size=192, intermediate_size=320, num_hidden_layers=2, num_attention_heads=6,
        num_key_value_heads=2, head_dim=64, vocab_size=777, rope_theta=10000.0,
        tie_word_embeddings=False, max_position_embeddings=256)),
]

PROMPT_LENGTHS = [5, 70]


def prompt(length, vocab, salt):
    rng = np.random.default_rng(1000 + salt)
    return [int(t) for t in rng.integers(0, vocab, size=length)]


def run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError("command failed ({}): {}\n{}".format(
            result.returncode, " ".join(command), result.stderr))
    return result


def read_dump(path):
    """{id: (tokens [N], logits [N, vocab] float32)} from --dump-logits output."""
    steps = {}
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            steps.setdefault(row["id"], []).append(row)
    out = {}
    for rid, rows in steps.items():
        rows.sort(key=lambda r: r["step"])
        assert [r["step"] for r in rows] == list(range(len(rows))), rid
        out[rid] = (np.array([r["token"] for r in rows], dtype=np.int64),
                    np.array([r["logits"] for r in rows], dtype=np.float32))
    return out


def compare_config(lockstep, name, dtype, seed, hf, steps, workdir):
    failures = []
    hf = dict(hf, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2)
    config_path = os.path.join(workdir, name + ".json")
    model_path = os.path.join(workdir, name + ".h5")
    with open(config_path, "w") as f:
        json.dump(hf, f)
    run([lockstep, "synth", "--config", config_path, "--dtype", dtype, "--seed", str(seed),
         "--output", model_path])

    requests = [{"id": "{}-p{}".format(name, n),
                 "prompt_tokens": prompt(n, hf["vocab_size"], i + seed)}
                for i, n in enumerate(PROMPT_LENGTHS)]
    requests_path = os.path.join(workdir, name + "-requests.jsonl")
    with open(requests_path, "w") as f:
        for r in requests:
            f.write(json.dumps(dict(r, max_tokens=steps, temperature=0, ignore_eos=True)) + "\n")
    dump_path = os.path.join(workdir, name + "-logits.jsonl")
    run([lockstep, "run", "--model", model_path, "--input", requests_path,
         "--output", os.path.join(workdir, name + "-results.jsonl"), "--dump-logits", dump_path,
         "--max-batch", "2", "--max-step-tokens", "32", "--no-progress"])
    engine = read_dump(dump_path)

    # The reference, in this process (one torch start-up for all configs).
    reference = llama_reference.run_requests(llama_reference.load_model(model_path),
                                             [dict(r, steps=steps) for r in requests])

    worst = 0.0
    for i, r in enumerate(requests):
        rid = r["id"]
        ref_tokens = reference["tokens_{}".format(i)]
        ref_logits = reference["logits_{}".format(i)].astype(np.float64)
        margins = reference["margins_{}".format(i)]
        tokens, logits = engine[rid]
        if len(tokens) != steps:
            failures.append("{}: engine produced {} steps, expected {}".format(rid, len(tokens), steps))
            continue
        for s in range(steps):
            scale = np.max(np.abs(ref_logits[s]))
            diff = np.max(np.abs(logits[s].astype(np.float64) - ref_logits[s]))
            worst = max(worst, diff / scale)
            if diff > TOLERANCE * scale:
                failures.append("{} step {}: max |logit difference| {:.3e} > {:.0e} * {:.3f}".format(
                    rid, s, diff, TOLERANCE, scale))
                break
            if tokens[s] != ref_tokens[s]:
                failures.append("{} step {}: engine token {} != reference {} (reference top-2 "
                                "margin {:.3e})".format(rid, s, tokens[s], ref_tokens[s], margins[s]))
                break
    print("{:<34} {:>4}: {} requests x {} steps, max |diff| / max |logit| = {:.2e}{}".format(
        name, dtype, len(requests), steps, worst, "" if not failures else "  FAILED"))
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lockstep", required=True, help="the lockstep binary")
    parser.add_argument("--steps", type=int, default=64, help="greedy steps per request")
    parser.add_argument("--keep", help="work in this folder and keep the files")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as llama_reference.py: polite on a shared machine

    failures = []
    with tempfile.TemporaryDirectory(prefix="lockstep_reference_") as tmp:
        workdir = args.keep or tmp
        os.makedirs(workdir, exist_ok=True)
        for name, dtype, seed, hf in CONFIGS:
            failures += compare_config(args.lockstep, name, dtype, seed, hf, args.steps, workdir)
    for f in failures:
        print("MISMATCH " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
