#!/usr/bin/python3
"""Peak memory of `lockstep quantize` against the size of the largest tensor
(ctest label: unit).

Synthesizes an f32 model whose embedding dominates (32768 x 1024, 128 MiB),
quantizes it to q8_0 and q4_0, and compares the peak resident memory that
`lockstep quantize` reports for itself (VmHWM) with the same command on a
small model (the baseline: the binary, its libraries, HDF5 and TBB). The
quantizer streams blocks of rows (quantize.h), so the growth must stay under
half of the largest tensor; the figures are printed for docs/converting.md.

  quantize_memory_test.py --lockstep path/to/lockstep [--vocab N --dim N]
"""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_memory_test import peak_rss_of  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lockstep", required=True)
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--dim", type=int, default=1024)
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="quantize_memory_") as work:
        def synth(name, vocab, dim):
            config = os.path.join(work, name + ".json")
            with open(config, "w") as f:
                json.dump({"hidden_size": dim, "intermediate_size": 2 * dim,
                           "num_hidden_layers": 1, "num_attention_heads": 8,
                           "num_key_value_heads": 8, "vocab_size": vocab,
                           "max_position_embeddings": 128, "tie_word_embeddings": True}, f)
            path = os.path.join(work, name + ".h5")
            os.system(f"'{args.lockstep}' synth --config {config} --dtype f32 --output {path}")
            return path
        models = {"small": synth("small", 256, 64), "big": synth("big", args.vocab, args.dim)}
        largest = args.vocab * args.dim * 4  # the embedding, as f32
        for dtype in ("q8_0", "q4_0"):
            rss = {}
            for name, model in models.items():
                out = os.path.join(work, f"{name}-{dtype}.h5")
                rss[name] = peak_rss_of([args.lockstep, "quantize", "--model", model, "--type",
                                         dtype, "--output", out, "--no-progress"])
                os.remove(out)
            growth = rss["big"] - rss["small"]
            print(f"f32 -> {dtype}: peak RSS {rss['big'] / 2**20:.1f} MiB (baseline "
                  f"{rss['small'] / 2**20:.1f} MiB, growth {growth / 2**20:.1f} MiB) for a "
                  f"largest tensor of {largest / 2**20:.0f} MiB as f32: growth = "
                  f"{growth / largest:.2f} x largest")
            if growth > largest // 2:
                print(f"FAIL: f32 -> {dtype}: streaming should keep growth under half the "
                      f"largest tensor", file=sys.stderr)
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
