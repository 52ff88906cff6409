#!/usr/bin/env python3
"""One machine's table of issue 17: every weight type beside its peaks and llama.cpp.

  benchmarks/e2e/peak_table.py --build build/release --scratch DIR \
      [--model tinyllama-1.1b] [--dtypes f32,f16,bf16,q8_0,q4_0] [--threads 1,2] \
      [--rounds 2] [--gguf-dir DIR --llama-bin DIR]

For each round (rounds alternate, so a noisy phase of a shared machine does
not fall on one program only), in this order:
  1. e2e_benchmark, every dtype (bf16 also with --compute bf16): decode at
     batch 1 and 16 (best single step), prefill of one 128-token prompt, with
     the read-bandwidth and peak anchors measured right before each row;
  2. e2e_benchmark again with a 1024-token prompt (prefill only);
  3. where --gguf-dir and --llama-bin are given: llama-bench on the GGUF of
     each dtype (pp128, pp1024, tg16, the given thread counts) and
     llama-batched-bench for 16 sequences at once (S_TG).
Each figure is the best (largest tokens/s) over the rounds. Prints the
machine (lscpu model name and flags of note, load average before and after
each step), every command, every raw table, and at the end one markdown
table on the wall clock and one on the CPU-time clock (lockstep only), each
figure also as a fraction of its anchor: decode of the read bandwidth (the
weight bytes a step streams x tokens/s), prefill of the FMA peak (float
compute and the quantized types) or of the vdpbf16ps peak (bf16 compute, where
its kernels use the instruction; else the FMA peak).

The GGUFs must hold the same weights as the lockstep files in --scratch
(named <model>-<dtype>.h5; e2e_benchmark synthesizes missing ones, which
then differ from any GGUF). One way, as in benchmarks/RESULTS.md "## quantized":
  e2e_benchmark --scratch DIR --models tinyllama-1.1b --dtypes f16 ...   (synthesizes DIR/tinyllama-1.1b-f16.h5)
  benchmarks/quant/export_gguf.py DIR/tinyllama-1.1b-f16.h5 G/tinyllama-1.1b-F16.gguf
  llama-quantize --pure G/tinyllama-1.1b-F16.gguf G/tinyllama-1.1b-T.gguf T   for T in F32 BF16 Q8_0 Q4_0
  lockstep convert --from gguf G/tinyllama-1.1b-T.gguf --output DIR/tinyllama-1.1b-t.h5 --dtype t
llama.cpp is built from source outside the repository (never vendored).
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys

GGUF_TYPE = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "q4_0": "Q4_0"}


def log(message):
    print(message, flush=True)


def machine():
    model, flags = "unknown", []
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("Flags:"):
                have = set(line.split(":", 1)[1].split())
                flags = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                                     "amx_bf16", "amx_int8") if f in have]
    except OSError:
        pass
    return model, flags


def load_average():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def run(command):
    log("$ " + " ".join(command) + f"    # load {load_average()}")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"peak_table.py: {command[0]} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return done.stdout


def markdown_tables(text):
    """The markdown tables of e2e_benchmark's output: [(title, rows as dicts)]."""
    tables, title, header = [], "", None
    for line in text.splitlines():
        if line.startswith("| model |"):
            header = [c.strip() for c in line.strip("|").split("|")]
            tables.append((title, []))
        elif line.startswith("|---"):
            continue
        elif line.startswith("|") and header:
            cells = [c.strip() for c in line.strip("|").split("|")]
            tables[-1][1].append(dict(zip(header, cells)))
        else:
            header = None
            if line.strip():
                title = line.strip()
    return tables


def column(row, prefix):
    for key, value in row.items():
        if key.startswith(prefix):
            return float(value)
    raise KeyError(prefix)


def keep_best(store, key, value, anchor=None):
    """store[key] = (value, anchor) of the largest value seen."""
    if key not in store or value > store[key][0]:
        store[key] = (value, anchor)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build/release")
    p.add_argument("--scratch", required=True)
    p.add_argument("--model", default="tinyllama-1.1b")
    p.add_argument("--dtypes", default="f32,f16,bf16,q8_0,q4_0")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--long-prompt", type=int, default=1024)
    p.add_argument("--gguf-dir", help="<model>-<TYPE>.gguf files of the same weights")
    p.add_argument("--llama-bin", help="folder with llama-bench and llama-batched-bench")
    args = p.parse_args()

    e2e = str(pathlib.Path(args.build) / "benchmarks/e2e/e2e_benchmark")
    dtypes = args.dtypes.split(",")
    threads = [int(t) for t in args.threads.split(",")]
    model, flags = machine()
    log(f"# {model}; {os.cpu_count()} CPUs; flags {' '.join(flags)}; load {load_average()}")
    log("# command: " + " ".join(sys.argv))

    # best[(clock, row, threads, figure)] = (tokens/s, fraction of the anchor)
    best = {}

    def tables(title):
        long_key = f"prefill{args.long_prompt}"
        rows = [d for d in dtypes] + (["bf16+bf16c"] if "bf16" in dtypes else [])

        def cell(clock, row, t, figure, fraction=True):
            got = best.get((clock, row, t, figure))
            if got is None:
                return ""
            value, anchor = got
            return f"{value:.2f} ({anchor:.2f})" if fraction and anchor is not None else f"{value:.2f}"

        def llama(row, t, figure):
            dtype = row.split("+")[0]
            got = best.get(("llama", dtype, t, figure))
            return f"{got[0]:.2f}" if got else ""

        def ratio(row, t, figure, clock="wall"):
            a = best.get((clock, row, t, figure))
            b = best.get(("llama", row.split("+")[0], t, figure))
            return f"{a[0] / b[0]:.2f}" if a and b and b[0] > 0 else ""

        log(f"\n### {title}: wall clock: lockstep (fraction of its anchor) | llama.cpp | lockstep / llama.cpp")
        log(f"| weights | threads | decode b1 | llama.cpp tg16 | ratio | decode b16 | llama.cpp S_TG x16 "
            f"| ratio | prefill 128 | llama.cpp pp128 | ratio | prefill {args.long_prompt} "
            f"| llama.cpp pp{args.long_prompt} | ratio |")
        log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for row in rows:
            for t in threads:
                log(f"| {row} | {t} | {cell('wall', row, t, 'decode1')} | {llama(row, t, 'decode1')} "
                    f"| {ratio(row, t, 'decode1')} | {cell('wall', row, t, 'decode16')} "
                    f"| {llama(row, t, 'decode16')} | {ratio(row, t, 'decode16')} "
                    f"| {cell('wall', row, t, 'prefill128')} | {llama(row, t, 'prefill128')} "
                    f"| {ratio(row, t, 'prefill128')} | {cell('wall', row, t, long_key)} "
                    f"| {llama(row, t, long_key)} | {ratio(row, t, long_key)} |")
        log(f"\n### {title}: CPU time per thread: lockstep (fraction of its anchor, timed alike)")
        log(f"| weights | threads | decode b1 | decode b16 | prefill 128 | prefill {args.long_prompt} |")
        log("|---|---|---|---|---|---|")
        for row in rows:
            for t in threads:
                log(f"| {row} | {t} | {cell('cpu', row, t, 'decode1')} | {cell('cpu', row, t, 'decode16')} "
                    f"| {cell('cpu', row, t, 'prefill128')} | {cell('cpu', row, t, long_key)} |")

    def run_llama():
        bench = str(pathlib.Path(args.llama_bin) / "llama-bench")
        batched = str(pathlib.Path(args.llama_bin) / "llama-batched-bench")
        for dtype in dtypes:
            gguf = pathlib.Path(args.gguf_dir) / f"{args.model}-{GGUF_TYPE[dtype]}.gguf"
            if not gguf.exists():
                log(f"# no {gguf}: llama.cpp skipped for {dtype}")
                continue
            out = run([bench, "-m", str(gguf), "-t", args.threads, "-p",
                       f"128,{args.long_prompt}", "-n", "16", "-r", "1", "-o", "jsonl"])
            for line in out.splitlines():
                if not line.startswith("{"):
                    continue
                j = json.loads(line)
                figure = f"prefill{j['n_prompt']}" if j["n_prompt"] else "decode1"
                keep_best(best, ("llama", dtype, j["n_threads"], figure), j["avg_ts"])
                log(f"llama.cpp {dtype} t{j['n_threads']} {figure}: {j['avg_ts']:.2f} tok/s")
            for t in threads:
                out = run([batched, "-m", str(gguf), "-t", str(t), "-tb", str(t), "-c", "512",
                           "-b", "512", "-ub", "512", "-npp", "8", "-ntg", "16", "-npl", "16"])
                for line in out.splitlines():
                    cells = [c.strip() for c in line.strip().strip("|").split("|")]
                    if len(cells) >= 10 and cells[0] == "8" and cells[1] == "16":
                        keep_best(best, ("llama", dtype, t, "decode16"), float(cells[7]))
                        log(f"llama.cpp {dtype} t{t} decode16 (S_TG): {cells[7]} tok/s")

    for r in range(1, args.rounds + 1):
        log(f"## round {r}")
        common = [e2e, "--scratch", args.scratch, "--models", args.model, "--dtypes", args.dtypes,
                  "--computes", "float,bf16", "--threads", args.threads, "--repeats", "1"]
        short = run(common + ["--decode-tokens", "16", "--decode-batch", "16",
                              "--prefill-tokens", "128"])
        log(short)
        long = run(common + ["--decode-tokens", "2", "--decode-batch", "1",
                             "--prefill-tokens", str(args.long_prompt)])
        log(long)
        for text, prefill_key in ((short, "prefill128"), (long, f"prefill{args.long_prompt}")):
            for title, rows in markdown_tables(text):
                clock = "cpu" if title.startswith("CPU time") else "wall"
                for row in rows:
                    key = (row["dtype"], int(row["threads"]))
                    keep_best(best, (clock, *key, prefill_key), column(row, "prefill tok/s"),
                              column(row, "prefill / peak"))
                    if prefill_key == "prefill128":
                        keep_best(best, (clock, *key, "decode1"), column(row, "decode tok/s"),
                                  column(row, "decode / read"))
                        keep_best(best, (clock, *key, "decode16"), column(row, "decode x16 tok/s"))
        if args.gguf_dir and args.llama_bin:
            run_llama()
        tables(f"after round {r}")
    log(f"# load average after: {load_average()}")
    tables("all rounds")


if __name__ == "__main__":
    main()
