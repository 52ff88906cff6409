#!/usr/bin/env python3
"""Start-up at scale, swept over the rank count (benchmarks/RESULTS.md "## scale").

Runs benchmarks/scaling/startup_scale.sh once per point, one run at a time:
MPI ranks 1, 2, 4, ..., 256 (mpirun --oversubscribe) and local chips
1, 2, 4, ..., 1024 (threads of one process), tp = min(N, 8), pp = N / tp.
The 32-layer model allows pp <= 32; points with a larger pp run a
synthesized model of the same width with --deep-layers layers (default 128,
so up to 1024 chips at tp 8). Every run is checked against the one-rank
tokens and logits hashes of its model (startup_scale.sh does it).

From each run's JSON summary (`lockstep run --summary`, the source of the
leader's "start-up over N ranks" line) and startup_scale.sh's closing line
it writes one CSV row: start-up time, bytes received at start-up, peers and
peak RSS per rank (min / median / max over ranks; the median is the upper
middle value, as in the start-up line), the peak RSS beyond the rank's
shard, time to first token, the job's wall time and whether the bits were
the one-rank bits. Then it plots startup_scale.png (gnuplot, Debian
gnuplot-nox, as scaling.py's plots): one panel per figure against N, MPI
ranks and local chips as separate lines, the median with a min-max band.

    benchmarks/scaling/scale_sweep.py --lockstep build/release/launch/lockstep --work /tmp/sweep
    benchmarks/scaling/scale_sweep.py --plot-only        # the plot again, from the CSV

Local chips: all chips are threads of one process, so the "per rank" peak
RSS of a local point is the process's peak RSS divided by the chips, and the
RSS beyond the shards is (process peak - all shards) / chips.

A point that does not finish within --timeout seconds (default 600) is
stopped (its process group) and written as a row without figures, with a
note; so is a run that fails or whose bits differ, and then the sweep exits
with 1 after the CSV and the plot.
"""

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAX_TP = 8        # the model's 8 attention heads
BASE_LAYERS = 32  # startup_scale.sh's model

COLUMNS = [
    "mode", "n", "tp", "pp", "layers",
    "startup_s_min", "startup_s_median", "startup_s_max",
    "bytes_min", "bytes_median", "bytes_max",
    "peers_min", "peers_median", "peers_max",
    "rss_mib_min", "rss_mib_median", "rss_mib_max",
    "rss_beyond_shard_mib_min", "rss_beyond_shard_mib_median", "rss_beyond_shard_mib_max",
    "process_rss_mib_max",
    "ttft_ms_first_batch", "ttft_ms_p50", "ttft_ms_max",
    "wall_s", "same_bits", "note",
]


def log(msg):
    print(f"[scale_sweep {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def int_list(text):
    return [int(x) for x in text.split(",") if x]


def spread(values):
    """min / median / max, the median the upper middle value (as the start-up line)."""
    v = sorted(values)
    return v[0], v[len(v) // 2], v[-1]


def split_of(n):
    tp = min(n, MAX_TP)
    if n % tp:
        raise ValueError(f"{n} ranks do not split into tp {tp} x pp")
    return tp, n // tp


CLOSING = re.compile(r"^(mpi|local) (\d+) \(tp (\d+) x pp (\d+)\): wall ([0-9.]+) s, same bits as "
                     r"one rank; peak RSS per process min/median/max ([0-9.]+) / ([0-9.]+) / "
                     r"([0-9.]+) MiB", re.M)


def session_pids(sid):
    """The processes of session sid (ranks mpirun put in process groups of their own)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # /proc/PID/stat: "pid (comm) state ppid pgrp session ..."; comm may hold spaces.
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid:
                pids.append(int(entry.name))
    return pids


def stop_session(proc):
    """Stops a point past its timeout: SIGTERM to startup_scale.sh's process
    group (mpirun passes it on to its ranks), then SIGKILL to whatever of its
    session is left after 10 s. Only the processes this run started."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    for _ in range(2):
        for pid in session_pids(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
    proc.communicate()


def run_point(args, mode, n):
    tp, pp = split_of(n)
    layers = BASE_LAYERS if pp <= BASE_LAYERS else args.deep_layers
    if pp > layers:
        raise ValueError(f"{mode} {n}: pp {pp} exceeds the {layers}-layer model (--deep-layers)")
    row = {c: "" for c in COLUMNS}
    row.update(mode=mode, n=n, tp=tp, pp=pp, layers=layers, same_bits="no")
    summary = args.work / f"summary-{mode}-{n}.json"
    summary.unlink(missing_ok=True)
    env = dict(os.environ, LAYERS=str(layers), SUMMARY=str(summary))
    cmd = [str(HERE / "startup_scale.sh"), str(args.lockstep), str(args.work), mode, str(n),
           str(tp), str(pp), str(args.requests)]
    log(f"{mode} {n} (tp {tp} x pp {pp}, {layers} layers): {' '.join(cmd)}")
    # A session of its own, so that a point past the timeout is stopped with
    # everything it started (mpirun and its ranks) and nothing else.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        stop_session(proc)
        row["note"] = f"did not finish in {args.timeout} s (stopped)"
        log(f"  {row['note']}")
        return row
    sys.stdout.write("".join("  " + line + "\n" for line in out.splitlines()))
    if proc.returncode != 0:
        last = (err.strip().splitlines() or ["no output"])[-1]
        row["note"] = f"failed (exit {proc.returncode}): {last}"[:200]
        log(f"  {row['note']}")
        return row
    m = CLOSING.search(out)
    if not m:
        row["note"] = "no closing line from startup_scale.sh"
        return row
    row["wall_s"] = f"{float(m.group(5)):.2f}"
    row["process_rss_mib_max"] = f"{float(m.group(8)):.1f}"
    row["same_bits"] = "yes"  # startup_scale.sh stops before its closing line otherwise
    s = json.loads(summary.read_text())
    ranks = s["ranks"]
    if len(ranks) != n:
        raise RuntimeError(f"{summary}: {len(ranks)} ranks, expected {n}")
    mib = 1024.0 * 1024.0
    for key, col, fmt in (("startup_s", "startup_s", "{:.3f}"),
                          ("startup_bytes_received", "bytes", "{:.0f}"),
                          ("startup_peers", "peers", "{:.0f}")):
        lo, med, hi = spread(r[key] for r in ranks)
        row[f"{col}_min"], row[f"{col}_median"], row[f"{col}_max"] = (
            fmt.format(lo), fmt.format(med), fmt.format(hi))
    if mode == "mpi":
        rss = [r["peak_rss_bytes"] / mib for r in ranks]
        beyond = [(r["peak_rss_bytes"] - r["plan_weight_bytes"]) / mib for r in ranks]
    else:  # one process: its peak shared by the chips
        process = max(r["peak_rss_bytes"] for r in ranks)
        shards = sum(r["plan_weight_bytes"] for r in ranks)
        rss = [process / n / mib]
        beyond = [(process - shards) / n / mib]
    for col, values in (("rss_mib", rss), ("rss_beyond_shard_mib", beyond)):
        lo, med, hi = spread(values)
        row[f"{col}_min"], row[f"{col}_median"], row[f"{col}_max"] = (
            f"{lo:.2f}", f"{med:.2f}", f"{hi:.2f}")
    row["ttft_ms_first_batch"] = f"{s['measured']['ttft_ms']:.1f}"
    row["ttft_ms_p50"] = f"{s['ttft_ms']['p50']:.1f}"
    row["ttft_ms_max"] = f"{s['ttft_ms']['max']:.1f}"
    return row


def write_csv(path, rows):
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def plot(csv_path, png_path):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        raise RuntimeError("gnuplot not found (Debian: gnuplot-nox)")
    with open(csv_path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["same_bits"] == "yes"]
    if not rows:
        raise RuntimeError(f"{csv_path}: no finished run to plot")
    # Panels: (title, y label, CSV column stem or (median, lo, hi), log y, divisor)
    panels = [
        ("Start-up time (leader's start-up line)", "s", ("startup_s_median", "startup_s_min",
                                                        "startup_s_max"), True, 1),
        ("Bytes received per rank at start-up", "kB", ("bytes_median", "bytes_min", "bytes_max"),
         True, 1000),
        ("Peers per rank at start-up", "peers", ("peers_median", "peers_min", "peers_max"), True, 1),
        ("Peak RSS per rank (local: process / chips)", "MiB",
         ("rss_mib_median", "rss_mib_min", "rss_mib_max"), True, 1),
        ("Peak RSS per rank beyond its shard", "MiB",
         ("rss_beyond_shard_mib_median", "rss_beyond_shard_mib_min", "rss_beyond_shard_mib_max"),
         True, 1),
        ("Time to first token (p50 of the requests, band to the max)", "ms",
         ("ttft_ms_p50", "ttft_ms_p50", "ttft_ms_max"), True, 1),
    ]
    # MPI and local give the same bytes and peers: local dashed with open
    # points over MPI's solid line, so that both stay visible.
    modes = [("mpi", "MPI ranks", "#4477aa", "lw 3 pt 7"),
             ("local", "local chips (threads)", "#ee6677", "lw 2 dt 2 pt 6 ps 1.2")]
    with tempfile.TemporaryDirectory(prefix="scale_sweep_") as tmp:
        tmp = Path(tmp)
        for mode, _, _, _ in modes:
            lines = []
            for r in sorted((r for r in rows if r["mode"] == mode), key=lambda r: int(r["n"])):
                vals = []
                for _, _, (med, lo, hi), _, div in panels:
                    vals += [float(r[c]) / div for c in (med, lo, hi)]
                lines.append(" ".join([r["n"]] + [f"{v:.6g}" for v in vals]))
            (tmp / f"{mode}.dat").write_text("\n".join(lines) + "\n")
        cores = os.cpu_count()
        script = [
            "set terminal pngcairo size 1200,1150 font 'sans,10'",
            f"set output '{png_path.resolve()}'",
            f"set multiplot layout 3,2 title \"Start-up at scale: 32-layer hidden-128 model "
            f"(128 layers beyond pp 32), tp = min(N, 8), pp = N / tp; "
            f"{cores} cores, shared beyond {cores} ranks or chips\" font ',11'",
            "set logscale x 2; set grid; set xlabel 'N (MPI ranks or local chips)'",
            "set style fill transparent solid 0.18 noborder",
        ]
        for i, (title, ylabel, (cmed, clo, chi), logy, _) in enumerate(panels):
            med, lo, hi = 2 + 3 * i, 3 + 3 * i, 4 + 3 * i
            # A log axis needs a positive value (1 rank receives 0 bytes from 0 peers).
            logy = logy and any(float(r[c]) > 0 for r in rows for c in (cmed, clo, chi))
            script.append(f"set title \"{title}\"; set ylabel '{ylabel}'")
            script.append("set logscale y" if logy else "unset logscale y")
            # One key, in the first panel, whose upper left is empty.
            script.append("set key top left opaque box" if i == 0 else "unset key")
            pos = "(column({c}) > 0 ? column({c}) : NaN)" if logy else "{c}"
            parts = []
            deep = [r for r in rows if int(r["layers"]) != BASE_LAYERS]
            if deep:  # where the deeper model starts
                first = min(int(r["n"]) for r in deep)
                script.append(f"set arrow 1 from {first}, graph 0 to {first}, graph 1 nohead dt 3")
                script.append(f"set label 1 ' {deep[0]['layers']} layers' at {first}, graph 0.95 "
                              f"font ',8'")
            for mode, label, color, style in modes:
                f = tmp / f"{mode}.dat"
                if not any(r["mode"] == mode for r in rows):
                    continue
                parts.append(f"'{f}' u 1:{pos.format(c=lo)}:{pos.format(c=hi)} w filledcurves "
                             f"lc rgb '{color}' notitle")
                parts.append(f"'{f}' u 1:{pos.format(c=med)} w lp {style} lc rgb '{color}' "
                             f"t '{label}'")
            script.append("plot " + ", ".join(parts))
        script.append("unset multiplot")
        gp = tmp / "scale.gp"
        gp.write_text("\n".join(script) + "\n")
        done = subprocess.run([gnuplot, str(gp)], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"gnuplot: {done.stderr.strip()}")
    log(f"plot: {png_path}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lockstep", type=Path, help="the lockstep command (required unless --plot-only)")
    p.add_argument("--work", type=Path, default=Path("/tmp/scale_sweep"),
                   help="working directory: models, requests, outputs, logs, summaries")
    p.add_argument("--mpi", type=int_list, default=[2 ** k for k in range(9)],
                   help="MPI rank counts (default 1,2,4,...,256)")
    p.add_argument("--local", type=int_list, default=[2 ** k for k in range(11)],
                   help="local chip counts (default 1,2,4,...,1024)")
    p.add_argument("--requests", type=int, default=64, help="requests per job (default 64)")
    p.add_argument("--deep-layers", type=int, default=128,
                   help="layers of the deeper model used beyond pp 32 (default 128)")
    p.add_argument("--timeout", type=int, default=600, help="seconds per point (default 600)")
    p.add_argument("--csv", type=Path, default=HERE / "scale.csv")
    p.add_argument("--png", type=Path, default=HERE / "startup_scale.png")
    p.add_argument("--plot-only", action="store_true", help="only plot --csv into --png")
    args = p.parse_args()
    try:
        if not args.plot_only:
            if args.lockstep is None:
                p.error("--lockstep is required unless --plot-only")
            args.lockstep = args.lockstep.resolve()
            if not os.access(args.lockstep, os.X_OK):
                p.error(f"--lockstep {args.lockstep}: not an executable")
            args.work = args.work.resolve()
            args.work.mkdir(parents=True, exist_ok=True)
            points = [("mpi", n) for n in args.mpi] + [("local", n) for n in args.local]
            for mode, n in points:  # every split checked before the first run
                tp, pp = split_of(n)
                if pp > BASE_LAYERS and pp > args.deep_layers:
                    p.error(f"{mode} {n}: pp {pp} exceeds --deep-layers {args.deep_layers}")
            rows = []
            for mode, n in points:
                rows.append(run_point(args, mode, n))
                write_csv(args.csv, rows)  # a point at a time: a stopped sweep keeps its rows
            log(f"csv: {args.csv}")
        plot(args.csv, args.png)
        if not args.plot_only:
            for r in rows:
                if r["note"]:
                    log(f"left out: {r['mode']} {r['n']}: {r['note']}")
            # A run that failed or gave other bits is an error; one that did
            # not finish in time is a point left out.
            if any(r["note"] and not r["note"].startswith("did not finish") for r in rows):
                return 1
    except (RuntimeError, ValueError, OSError, KeyError, json.JSONDecodeError) as e:
        print(f"scale_sweep.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
