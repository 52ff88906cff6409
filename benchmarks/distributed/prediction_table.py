#!/usr/bin/env python3
"""Predicted against measured, for every plan runnable on this machine.

  benchmarks/distributed/prediction_table.py --build build/release \
      [--model M.h5 | --preset tinyllama-1.1b] [--configs 1x1,2x1,1x2,2x2,4x2] \
      [--rounds 3] [--decode-tokens 32] [--threads 0] [--host-spec FILE]

For each tp x pp split it runs distributed_bench (the code `lockstep run`
runs, under mpirun) with the scenarios decode1 (one request, prompt 16) and
decode16 (16 such requests at once), and takes from each row the decode time
per token and the time to first token of the last request (the prefill: 16 tokens at batch 1,
16 x 16 = 256 tokens in one step at batch 16), measured and as the job's
plan predicts them. The splits run in alternating rounds (round 1: every
split, round 2: every split, ...) so that a noisy phase of a shared machine
does not fall on one split only; a cell's measured figure is the best
(smallest) of its rounds -- noise only adds time. Prints the machine
(lscpu model name, load average before and after), the command, every
round's raw rows, and a markdown table: predicted, best measured and their
ratio for decode and prefill at batch 1 and 16, marked when outside +-15%.

The host spec is $LOCKSTEP_HOST_SPEC (or --host-spec): calibrate first
(`mpirun -np 2 lockstep calibrate`), or the predictions are the uncalibrated
preset's.
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys
import time

ROW = re.compile(
    r"^(\d+)\s+(\d+)\s+(decode1|decode16)\s+(\S+)\s+([\d.]+)\s+([\d.]+)\s+\S+\s+([\d.]+)\s+\S+\s+"
    r"([\d.]+)\s+([\d.]+)\s")


def log(message):
    print(message, flush=True)


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def load_average():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build/release")
    p.add_argument("--model", help="model file (default: --preset synthesized into --scratch)")
    p.add_argument("--preset", default="tinyllama-1.1b")
    p.add_argument("--scratch", default="/tmp/lockstep_bench")
    p.add_argument("--configs", default="1x1,2x1,1x2,2x2,4x2")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--decode-tokens", type=int, default=32)
    p.add_argument("--threads", type=int, default=0, help="per rank; 0: the cores available")
    p.add_argument("--host-spec", help="default: $LOCKSTEP_HOST_SPEC")
    p.add_argument("--mpirun", default="mpirun")
    args = p.parse_args()

    build = pathlib.Path(args.build).resolve()
    bench = build / "benchmarks/distributed/distributed_bench"
    lockstep = build / "launch/lockstep"
    scratch = pathlib.Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    model = args.model or str(scratch / f"{args.preset}-bf16.h5")
    if not pathlib.Path(model).exists():
        log(f"# synthesizing {args.preset} (bf16) into {model}")
        subprocess.run([str(lockstep), "synth", "--preset", args.preset, "--dtype", "bf16",
                        "--seed", "1", "--output", model], check=True)
    env = dict(os.environ)
    if args.host_spec:
        env["LOCKSTEP_HOST_SPEC"] = args.host_spec
    spec = env.get("LOCKSTEP_HOST_SPEC", "~/.config/lockstep/host.json")
    mpirun = [args.mpirun, "--oversubscribe", "--bind-to", "none"]
    if os.geteuid() == 0:
        mpirun.append("--allow-run-as-root")
    configs = [tuple(int(x) for x in c.split("x")) for c in args.configs.split(",")]

    log(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_model()}, "
        f"{os.cpu_count()} CPUs, load average {load_average()}")
    log(f"# command: {' '.join(sys.argv)}")
    log(f"# model {model}; host spec {spec}; threads per rank "
        f"{args.threads or 'auto'}; {args.rounds} alternating rounds, best of them per cell")
    best = {}  # (tp, pp, scenario) -> dict of best measured and the prediction
    for round_index in range(args.rounds):
        for tp, pp in configs:
            command = mpirun + ["-np", str(tp * pp), str(bench), "--model", model, "--tp", str(tp),
                                "--pp", str(pp), "--scenarios", "decode1,decode16",
                                "--decode-tokens", str(args.decode_tokens),
                                "--threads", str(args.threads)]
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                log(f"# round {round_index + 1} tp {tp} pp {pp}: exit {done.returncode}: "
                    f"{done.stderr.strip()[-500:]}")
                return 1
            for line in done.stdout.splitlines():
                m = ROW.match(line)
                if not m:
                    continue
                log(f"round {round_index + 1}: {line}")
                key = (tp, pp, m.group(3))
                decode, pred_decode = float(m.group(5)), float(m.group(6))
                ttft, pred_ttft = float(m.group(8)), float(m.group(9))
                cell = best.setdefault(key, {"decode": decode, "ttft": ttft,
                                             "pred_decode": pred_decode, "pred_ttft": pred_ttft})
                cell["decode"] = min(cell["decode"], decode)
                cell["ttft"] = min(cell["ttft"], ttft)
    log(f"# load average after: {load_average()}")
    log("")
    log("| tp x pp | ranks | batch | decode ms/token predicted | measured | meas/pred | "
        "prefill (TTFT) ms predicted | measured | meas/pred |")
    log("|---|---|---|---|---|---|---|---|---|")
    outside = 0
    for tp, pp in configs:
        for scenario, batch in (("decode1", 1), ("decode16", 16)):
            c = best.get((tp, pp, scenario))
            if c is None:
                continue
            cells = []
            for what in ("decode", "ttft"):
                ratio = c[what] / c[f"pred_{what}"] if c[f"pred_{what}"] > 0 else 0
                mark = "" if 0.85 <= ratio <= 1.15 else " **"
                outside += mark != ""
                cells += [f"{c[f'pred_{what}']:.1f}", f"{c[what]:.1f}", f"{ratio:.2f}{mark}"]
            log(f"| {tp} x {pp} | {tp * pp} | {batch} | " + " | ".join(cells) + " |")
    log("")
    log(f"# {outside} of {2 * len(best)} figures outside +-15% (marked **)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
