#!/usr/bin/env python3
"""Scaling study for lockstep: real runs, simulated chips, predictions, plots.

  benchmarks/scaling/scaling.py --out DIR [--preset llama-110m] [--ranks 1,2,4,8] ...

What it runs (every figure comes from one invocation, on this machine):

  real      `mpirun -np N lockstep run --tp T --pp P` for every rank count N
            of --ranks and every tp x pp = N split the model allows, with
            three workloads: latency (1 request), strong (--batch requests,
            the same for every N) and weak (--weak-per-chip x N requests).
  local     `lockstep run --transport local --chips N`: N simulated chips as
            threads of one process (strong workload).
  predicted `lockstep plan --chip host` for each real run's split and
            workload: the partitioner's timing model of this host.
  simulated `lockstep plan` alone, far beyond this machine: --sim-chips
            chips of --sim-chip for --sim-preset (automatic tp x pp).

It checks on the way that every run of a workload produced the same tokens
and logits hashes as the 1-rank run (the determinism contract): a difference
is an error. Outputs in DIR: runs.csv, ranks.csv, simulated.csv, the gnuplot
scripts and strong_scaling.png, weak_scaling.png, predicted_vs_measured.png,
rank_breakdown.png, simulated_scaling.png. benchmarks/scaling/README.md has
the commands behind the committed plots.

Needs: python3 (standard library), mpirun (Open MPI), gnuplot (Debian
gnuplot-nox) for the plots, and the `lockstep` command: --lockstep, else
`lockstep` on PATH, else build/release/launch/lockstep of this clone.
"""
import argparse
import csv
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

def ratio(a, b):
    """a / b, or 0 when b is 0 (a run too short for the summary's ms resolution)."""
    return a / b if b else 0.0
def find_lockstep(given):
    """--lockstep, else `lockstep` on PATH, else this clone's release build."""
    if given:
        path = pathlib.Path(given)
        if not path.exists():
            raise RuntimeError(f"--lockstep {given}: no such file")
        return str(path.resolve())
    on_path = shutil.which("lockstep")
    if on_path:
        return on_path
    built = pathlib.Path(__file__).resolve().parents[2] / "build/release/launch/lockstep"
    if built.exists():
        return str(built)
    raise RuntimeError("no lockstep command: put it on PATH (export PATH=$PWD/build/release/"
                       "launch:$PATH after ./launch/setup.sh) or give --lockstep FILE")


def log(message):
    print(f"scaling: {message}", file=sys.stderr, flush=True)


def run(command, timeout, env=None):
    """Runs command; returns (stdout, stderr). Raises with the stderr tail on failure."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(map(str, command))} exited {done.returncode}:\n{tail}")
    return done.stdout, done.stderr


class Study:
    def __init__(self, args):
        self.args = args
        self.out = pathlib.Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = self.out / "work"
        self.work.mkdir(exist_ok=True)
        self.lockstep = find_lockstep(args.lockstep)
        self.mpirun = [args.mpirun, "--oversubscribe", "--allow-run-as-root", "--bind-to", "none"]
        self.reference = {}  # "workload-batch" -> (ids, tokens, hashes) of its first run
        self.runs = []
        self.ranks = []
        self.simulated = []

    # -- inputs ---------------------------------------------------------------
    def model(self):
        if self.args.model:
            return str(pathlib.Path(self.args.model).resolve())
        path = self.work / f"{self.args.preset}-bf16.h5"
        if not path.exists():
            log(f"synthesizing {self.args.preset} (bf16) into {path}")
            run([self.lockstep, "synth", "--preset", self.args.preset, "--dtype", "bf16",
                 "--seed", "1", "--output", str(path)], timeout=1800)
        return str(path)

    def requests(self, name, count):
        """count requests with mixed prompts, greedy and sampled, fixed lengths."""
        path = self.work / f"requests-{name}.jsonl"
        with open(path, "w") as f:
            for i in range(count):
                prompt = [1] + [(37 * i + 11 * k) % 1000 + 3 for k in range(self.args.prompt - 1)]
                request = {"id": f"{name}-{i}", "prompt_tokens": prompt,
                           "max_tokens": self.args.generate, "temperature": 0 if i % 2 == 0 else 0.8,
                           "seed": i}
                f.write(json.dumps(request) + "\n")
        return str(path)

    # -- one run --------------------------------------------------------------
    def lockstep_run(self, kind, n, tp, pp, workload, batch, model, requests):
        """The fastest of --repeat runs (the machine is shared: the best run is
        the one least disturbed); every repeat is checked for identical bits."""
        best = None
        for _ in range(self.args.repeat):
            mark = len(self.ranks)
            row = self.lockstep_run_once(kind, n, tp, pp, workload, batch, model, requests)
            if best is None or row["run_s"] < best[0]["run_s"]:
                if best is not None:
                    del self.ranks[best[1]:best[2]]
                    mark -= best[2] - best[1]
                best = (row, mark, len(self.ranks))
            else:
                del self.ranks[mark:]
        return best[0]

    def lockstep_run_once(self, kind, n, tp, pp, workload, batch, model, requests):
        output = self.work / f"{kind}-{workload}-n{n}-tp{tp}-pp{pp}.jsonl"
        summary_path = self.work / f"{kind}-{workload}-n{n}-tp{tp}-pp{pp}.summary.json"
        for old in (output, summary_path):
            if old.exists():
                old.unlink()
        args = ["run", "--model", model, "--input", requests, "--output", str(output),
                "--tp", str(tp), "--pp", str(pp), "--max-batch", str(batch),
                "--threads", str(self.args.threads), "--hash-logits",
                "--summary", str(summary_path)]
        if kind == "real":
            command = self.mpirun + ["-np", str(n), self.lockstep] + args
        else:
            command = [self.lockstep] + args + ["--transport", "local", "--chips", str(n)]
        env = dict(os.environ, LOCKSTEP_LOG="info")
        start = time.monotonic()
        run(command, timeout=self.args.run_timeout, env=env)
        wall = time.monotonic() - start
        if not summary_path.exists():
            raise RuntimeError(f"no --summary file from {kind} n={n} tp={tp} pp={pp}")
        summary = json.load(open(summary_path))
        tokens, seconds = summary["tokens"]["generated"], summary["run_s"]
        results = [json.loads(line) for line in open(output)]
        results.sort(key=lambda r: r["id"])
        self.check_identical(f"{workload}-{batch}", kind, n, tp, pp, results)
        decode_rates = [r["decode_tokens_per_s"] for r in results if r.get("decode_tokens_per_s")]
        ttfts = [r["ttft_ms"] for r in results if "ttft_ms" in r]
        row = {
            "kind": kind, "workload": workload, "chips": n, "tp": tp, "pp": pp, "batch": batch,
            "generated_tokens": tokens, "run_s": round(seconds, 4), "wall_s": round(wall, 3),
            "tokens_per_s": round(tokens / seconds, 3) if seconds > 0 else 0,
            "decode_ms_per_token": round(1000.0 / (sum(decode_rates) / len(decode_rates)), 4)
            if decode_rates else "",
            "ttft_ms": round(sum(ttfts) / len(ttfts), 3) if ttfts else "",
        }
        for r in summary["ranks"] if len(summary["ranks"]) > 1 else []:
            share = lambda s: round(100 * s / r["run_s"]) if r["run_s"] > 0 else 0
            self.ranks.append({"kind": kind, "workload": workload, "chips": n, "tp": tp, "pp": pp,
                               "rank": r["rank"], "stage": r["stage"], "tp_rank": r["tp_rank"],
                               "steps": r["steps"], "compute_pct": share(r["compute_s"]),
                               "collectives_pct": share(r["collective_s"]),
                               "pipeline_wait_pct": share(r["pipeline_wait_s"])})
        return row

    def check_identical(self, workload, kind, n, tp, pp, results):
        key = [(r["id"], r["tokens"], r.get("logits_sha256")) for r in results]
        if workload not in self.reference:
            self.reference[workload] = (key, f"{kind} n={n} tp={tp} pp={pp}")
            return
        expected, source = self.reference[workload]
        if key != expected:
            for a, b in zip(expected, key):
                if a != b:
                    raise RuntimeError(f"{kind} n={n} tp={tp} pp={pp}: request {b[0]} differs from "
                                       f"{source} (the determinism contract is broken)")
            raise RuntimeError(f"{kind} n={n} tp={tp} pp={pp}: results differ from {source}")

    def predict(self, model, n, tp, pp, batch):
        plan = self.work / f"plan-n{n}-tp{tp}-pp{pp}-b{batch}.json"
        run([self.lockstep, "plan", "--model", model, "--chip", "host", "--chips", str(n),
             "--threads-per-chip", str(self.args.threads),
             "--tp", str(tp), "--pp", str(pp), "--batch", str(batch),
             "--prompt-length", str(self.args.prompt), "--generate", str(self.args.generate),
             "--output", str(plan), "--quiet"], timeout=120)
        return json.load(open(plan))["prediction"]

    # -- the sweeps -----------------------------------------------------------
    def splits(self, n, heads, kv_heads, layers):
        out = []
        tp = 1
        while tp <= n:
            if n % tp == 0 and heads % tp == 0 and n // tp <= layers:
                out.append((tp, n // tp))
            tp *= 2
        return out

    def sweep(self):
        model = self.model()
        config = self.plan_config(model)
        heads, kv_heads, layers = config["heads"], config["kv_heads"], config["layers"]
        workloads = {"latency": lambda n: 1, "strong": lambda n: self.args.batch,
                     "weak": lambda n: self.args.weak_per_chip * n}
        for n in self.args.ranks:
            for tp, pp in self.splits(n, heads, kv_heads, layers):
                for workload, batch_of in workloads.items():
                    batch = batch_of(n)
                    requests = self.requests(f"{workload}-{batch}", batch)
                    log(f"real  n={n} tp={tp} pp={pp} {workload} (batch {batch})")
                    row = self.lockstep_run("real", n, tp, pp, workload, batch, model, requests)
                    prediction = self.predict(model, n, tp, pp, batch)
                    row["predicted_decode_ms_per_token"] = round(
                        prediction["decode_latency_per_token_s"] * 1000, 4)
                    row["predicted_ttft_ms"] = round(prediction["time_to_first_token_s"] * 1000, 3)
                    row["predicted_tokens_per_s"] = round(prediction["throughput_tokens_per_s"], 3)
                    self.runs.append(row)
                    for r, shares in enumerate(prediction.get("ranks", [])):
                        for entry in self.ranks:
                            if (entry["kind"], entry["workload"], entry["chips"], entry["tp"],
                                    entry["pp"], entry["rank"]) == ("real", workload, n, tp, pp, r):
                                total = sum(shares.values()) or 1.0
                                entry["predicted_compute_pct"] = round(
                                    100 * (shares["compute_s"] + shares["memory_s"]) / total, 1)
                                entry["predicted_collectives_pct"] = round(
                                    100 * shares["communication_s"] / total, 1)
                                entry["predicted_idle_pct"] = round(100 * shares["idle_s"] / total, 1)
        strong_requests = self.requests(f"strong-{self.args.batch}", self.args.batch)
        for n in self.args.local_chips:
            choices = self.splits(n, heads, kv_heads, layers)
            if not choices:
                continue
            tp, pp = max(choices)  # the widest tp: most collectives, the hardest case
            log(f"local n={n} tp={tp} pp={pp} strong (batch {self.args.batch})")
            row = self.lockstep_run("local", n, tp, pp, "strong", self.args.batch, model,
                                    strong_requests)
            self.runs.append(row)
        for preset, chip, weight, activation, chips in self.simulations(model):
            for n in chips:
                plan = self.work / f"sim-{pathlib.Path(preset).stem}-{chip}-{n}.json"
                command = [self.lockstep, "plan", "--chip", chip, "--chips", str(n), "--batch",
                           str(self.args.sim_batch), "--prompt-length", str(self.args.sim_prompt),
                           "--generate", str(self.args.sim_generate), "--output", str(plan),
                           "--quiet"]
                command += ["--model", preset] if preset.endswith(".h5") else ["--preset", preset]
                if weight:
                    command += ["--weight-type", weight, "--activation-type", activation]
                try:
                    run(command, timeout=120)
                except RuntimeError as e:
                    log(f"simulated {preset} on {n} {chip}: {str(e).splitlines()[-1]}")
                    continue
                p = json.load(open(plan))
                self.simulated.append({
                    "model": pathlib.Path(preset).stem, "chip": chip, "chips": n, "tp": p["tp"],
                    "pp": p["pp"], "micro_batches": p["micro_batches"], "batch": self.args.sim_batch,
                    "decode_ms_per_token": round(p["prediction"]["decode_latency_per_token_s"] * 1e3, 5),
                    "ttft_ms": round(p["prediction"]["time_to_first_token_s"] * 1e3, 4),
                    "tokens_per_s": round(p["prediction"]["throughput_tokens_per_s"], 3)})

    def simulations(self, model):
        sims = [(model, "host", None, None, self.args.host_sim_chips)]
        if self.args.sim_preset:
            sims.append((self.args.sim_preset, self.args.sim_chip, self.args.sim_weight_type,
                         self.args.sim_activation_type, self.args.sim_chips))
        return sims

    def plan_config(self, model):
        plan = self.work / "plan-config.json"
        run([self.lockstep, "plan", "--model", model, "--chip", "host", "--chips", "1",
             "--output", str(plan), "--quiet"], timeout=120)
        m = json.load(open(plan))["inputs"]["model"]
        return {"heads": m["num_attention_heads"], "kv_heads": m["num_key_value_heads"],
                "layers": m["num_hidden_layers"], "name": m.get("_name_or_path", "")}

    # -- outputs --------------------------------------------------------------
    def load_csv(self):
        """--replot: the rows of an earlier run's CSV files (numbers as numbers)."""
        def read(name):
            path = self.out / name
            if not path.exists():
                return []
            rows = []
            for row in csv.DictReader(open(path)):
                for k, v in row.items():
                    try:
                        row[k] = int(v)
                    except ValueError:
                        try:
                            row[k] = float(v)
                        except ValueError:
                            pass
                rows.append(row)
            return rows
        self.runs, self.ranks, self.simulated = read("runs.csv"), read("ranks.csv"), read("simulated.csv")
        if not self.runs:
            raise RuntimeError(f"--replot: no runs.csv in {self.out}")

    def write_csv(self):
        def write(name, rows):
            if not rows:
                return
            fields = []
            for row in rows:
                fields += [k for k in row if k not in fields]
            with open(self.out / name, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=fields, restval="")
                w.writeheader()
                w.writerows(rows)
        write("runs.csv", self.runs)
        write("ranks.csv", self.ranks)
        write("simulated.csv", self.simulated)
        # Derived tables the plots read (whitespace-separated, one per plot).
        best = {}
        for r in self.runs:
            if r["kind"] == "real":
                k = (r["workload"], r["chips"])
                if k not in best or r["tokens_per_s"] > best[k]["tokens_per_s"]:
                    best[k] = r
        base = {w: best.get((w, 1)) for w in ("strong", "weak", "latency")}
        with open(self.out / "strong.dat", "w") as f:
            f.write("# chips tokens_per_s efficiency predicted_tokens_per_s tp pp\n")
            for (w, n), r in sorted(best.items(), key=lambda kv: kv[0][1]):
                if w != "strong" or not base["strong"]:
                    continue
                eff = ratio(r["tokens_per_s"], n * base["strong"]["tokens_per_s"])
                f.write(f"{n} {r['tokens_per_s']} {eff:.4f} {r['predicted_tokens_per_s']} "
                        f"{r['tp']} {r['pp']}\n")
        with open(self.out / "strong_local.dat", "w") as f:
            f.write("# chips tokens_per_s efficiency\n")
            local = sorted((r for r in self.runs if r["kind"] == "local"), key=lambda r: r["chips"])
            for r in local:
                eff = ratio(r["tokens_per_s"], r["chips"] * local[0]["tokens_per_s"]) if local else 0
                f.write(f"{r['chips']} {r['tokens_per_s']} {eff:.4f}\n")
        with open(self.out / "weak.dat", "w") as f:
            f.write("# chips tokens_per_s_per_chip efficiency predicted_per_chip batch\n")
            for (w, n), r in sorted(best.items(), key=lambda kv: kv[0][1]):
                if w != "weak" or not base["weak"]:
                    continue
                per = r["tokens_per_s"] / n
                eff = ratio(per, base["weak"]["tokens_per_s"])
                f.write(f"{n} {per:.3f} {eff:.4f} {r['predicted_tokens_per_s'] / n:.3f} {r['batch']}\n")
        with open(self.out / "latency.dat", "w") as f:
            f.write("# predicted_ms measured_ms label\n")
            for r in self.runs:
                if r["kind"] == "real" and r["workload"] == "latency" and r["decode_ms_per_token"]:
                    f.write(f"{r['predicted_decode_ms_per_token']} {r['decode_ms_per_token']} "
                            f"{r['tp']}x{r['pp']}\n")
        pick = self.breakdown_config()
        with open(self.out / "breakdown.dat", "w") as f:
            f.write("# rank compute collectives pipeline_wait pred_compute pred_collectives pred_idle\n")
            for e in self.ranks:
                if pick and (e["kind"], e["workload"], e["tp"], e["pp"]) == pick:
                    f.write(f"{e['rank']} {e['compute_pct']} {e['collectives_pct']} "
                            f"{e['pipeline_wait_pct']} {e.get('predicted_compute_pct', 0)} "
                            f"{e.get('predicted_collectives_pct', 0)} {e.get('predicted_idle_pct', 0)}\n")
        with open(self.out / "simulated.dat", "w") as f:
            for model in sorted({s["model"] + "@" + s["chip"] for s in self.simulated}):
                f.write(f"# {model}\n")
                for s in self.simulated:
                    if s["model"] + "@" + s["chip"] == model:
                        f.write(f"{s['chips']} {s['tokens_per_s']} {s['decode_ms_per_token']} "
                                f"{s['tp']}x{s['pp']}\n")
                f.write("\n\n")
        self.breakdown_pick = pick

    def breakdown_config(self):
        """The real strong-workload run with both tp and pp > 1 and the most ranks."""
        candidates = [(r["chips"], r["tp"], r["pp"]) for r in self.runs
                      if r["kind"] == "real" and r["workload"] == "strong" and r["tp"] > 1 and r["pp"] > 1]
        if not candidates:
            candidates = [(r["chips"], r["tp"], r["pp"]) for r in self.runs
                          if r["kind"] == "real" and r["workload"] == "strong" and r["chips"] > 1]
        if not candidates:
            return None
        n, tp, pp = max(candidates)
        return ("real", "strong", tp, pp)

    def plot(self):
        gnuplot = shutil.which("gnuplot")
        if not gnuplot:
            raise RuntimeError("gnuplot not found (Debian: gnuplot-nox): run with --no-plots or install it")
        cores = os.cpu_count()
        host = os.uname().nodename
        note = f"{host}, {cores} cores; ranks beyond {cores} share them"
        term = "set terminal pngcairo size 720,440 font 'sans,10'\n"
        sim_names = sorted({s["model"] + "@" + s["chip"] for s in self.simulated})
        sim_plots = ", ".join(
            f"'simulated.dat' index {i} u 1:3 w lp lw 2 pt 7 t '{name.replace('@', ' on ')}', "
            f"'' index {i} u 1:3:4 w labels offset 0,1 font ',8' notitle"
            for i, name in enumerate(sim_names)) or "1/0 notitle"
        plots = {
            "strong_scaling": f"""{term}
set output 'strong_scaling.png'
set title "Strong scaling: {self.args.preset}, {self.args.batch} requests ({note})"
set xlabel 'chips (MPI ranks)'; set ylabel 'generated tokens/s'; set y2label 'parallel efficiency'
set logscale x 2; set y2range [0:1.2]; set ytics nomirror; set y2tics; set key below
set grid
plot 'strong.dat' u 1:2 w lp lw 2 pt 7 t 'measured, best tp x pp', \\
     'strong.dat' u 1:4 w lp dt 2 pt 6 t 'predicted (plan --chip host)', \\
     'strong_local.dat' u 1:2 w lp pt 5 t 'local transport (threads)', \\
     'strong.dat' u 1:3 axes x1y2 w lp dt 3 pt 4 t 'efficiency (measured)'
""",
            "weak_scaling": f"""{term}
set output 'weak_scaling.png'
set title "Weak scaling: {self.args.weak_per_chip} requests per chip ({note})"
set xlabel 'chips (MPI ranks)'; set ylabel 'tokens/s per chip'; set y2label 'efficiency'
set logscale x 2; set y2range [0:1.2]; set ytics nomirror; set y2tics; set key below; set grid
plot 'weak.dat' u 1:2 w lp lw 2 pt 7 t 'measured per chip', \\
     'weak.dat' u 1:4 w lp dt 2 pt 6 t 'predicted per chip', \\
     'weak.dat' u 1:3 axes x1y2 w lp dt 3 pt 4 t 'efficiency'
""",
            "predicted_vs_measured": f"""{term}
set output 'predicted_vs_measured.png'
set title "Decode latency per token, batch 1: measured vs predicted ({note})"
set xlabel 'predicted ms/token (plan --chip host)'; set ylabel 'measured ms/token'
set grid; set key top left; set size ratio -1
stats 'latency.dat' u 2 nooutput
hi = STATS_max * 1.15
set xrange [0:hi]; set yrange [0:hi]
plot x w l dt 2 t 'measured = predicted', \\
     'latency.dat' u 1:2 w p pt 7 ps 1.3 t 'runs (tp x pp)', \\
     'latency.dat' u 1:2:3 w labels offset 2.5,0.6 notitle
""",
            "rank_breakdown": f"""{term}
set output 'rank_breakdown.png'
set title "Per-rank time, tp {self.breakdown_pick[2] if self.breakdown_pick else '-'} x pp {self.breakdown_pick[3] if self.breakdown_pick else '-'}, {self.args.batch} requests: measured (left) / predicted (right)"
set style data histograms; set style histogram rowstacked; set style fill solid 0.8 border -1
set boxwidth 0.6; set ylabel '% of run time'; set xlabel 'rank (measured | predicted)'
set yrange [0:105]; set key below; set grid y
plot newhistogram 'measured', 'breakdown.dat' u 2:xtic(1) t 'compute' lc rgb '#4477aa', \\
     '' u 3 t 'tp collectives' lc rgb '#ee6677', '' u 4 t 'pipeline wait' lc rgb '#ccbb44', \\
     newhistogram 'predicted', '' u 5:xtic(1) notitle lc rgb '#4477aa', \\
     '' u 6 notitle lc rgb '#ee6677', '' u 7 t 'idle (predicted)' lc rgb '#bbbbbb'
""",
            "simulated_scaling": f"""{term}
set output 'simulated_scaling.png'
set title "Simulated chips (partitioner timing model), batch {self.args.sim_batch}, automatic tp x pp"
set xlabel 'chips'; set ylabel 'predicted decode ms/token'; set logscale xy 2; set grid
set key below; set offsets graph 0.04, graph 0.08, graph 0.1, graph 0.04
plot {sim_plots}
""",
        }
        for name, script in plots.items():
            path = self.out / f"{name}.gp"
            path.write_text(script)
            done = subprocess.run([gnuplot, path.name], cwd=self.out, capture_output=True,
                                  text=True, timeout=60)
            if done.returncode != 0:
                raise RuntimeError(f"gnuplot {path}: {done.stderr.strip()}")
        log(f"plots in {self.out}: " + ", ".join(f"{n}.png" for n in plots))


def int_list(text):
    return [int(x) for x in text.split(",") if x]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (CSV, .dat, .gp, .png; work/ inside)")
    p.add_argument("--lockstep", help="the lockstep command (default: `lockstep` on PATH, else "
                   "build/release/launch/lockstep of this clone)")
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--preset", default="llama-110m", help="model preset to synthesize (bf16)")
    p.add_argument("--model", help="an existing model file instead of --preset")
    p.add_argument("--ranks", type=int_list, default=[1, 2, 4, 8], help="real rank counts")
    p.add_argument("--local-chips", type=int_list, default=[1, 2, 4, 8, 16])
    p.add_argument("--host-sim-chips", type=int_list, default=[1, 2, 4, 8, 16, 32, 64])
    p.add_argument("--threads", type=int, default=1, help="compute threads per rank")
    p.add_argument("--prompt", type=int, default=16, help="prompt tokens per request")
    p.add_argument("--generate", type=int, default=32, help="generated tokens per request")
    p.add_argument("--batch", type=int, default=16, help="requests of the strong-scaling workload")
    p.add_argument("--weak-per-chip", type=int, default=4, help="requests per chip (weak scaling)")
    p.add_argument("--sim-preset", default="llama-2-7b", help="model for the simulated sweep ('' : none)")
    p.add_argument("--sim-chip", default="groq-lpu")
    p.add_argument("--sim-chips", type=int_list, default=[32, 64, 128, 256, 512, 1024])
    p.add_argument("--sim-weight-type", default="int8")
    p.add_argument("--sim-activation-type", default="f16")
    p.add_argument("--sim-batch", type=int, default=1)
    p.add_argument("--sim-prompt", type=int, default=128)
    p.add_argument("--sim-generate", type=int, default=128)
    p.add_argument("--repeat", type=int, default=1, help="runs per point; the fastest is kept")
    p.add_argument("--run-timeout", type=float, default=600, help="seconds per lockstep run")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--replot", action="store_true",
                   help="redraw the plots from the CSV files already in --out (no runs)")
    args = p.parse_args()

    start = time.monotonic()
    try:
        study = Study(args)
        if args.replot:
            study.load_csv()
        else:
            study.sweep()
        study.write_csv()
        if not args.no_plots:
            study.plot()
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"scaling: error: {e}", file=sys.stderr)
        return 1
    if args.replot:
        return 0
    real = [r for r in study.runs if r["kind"] == "real"]
    log(f"{len(real)} real runs, {len(study.runs) - len(real)} local, {len(study.simulated)} "
        f"simulated plans in {time.monotonic() - start:.0f} s; every run of a workload gave "
        f"the same bits as its 1-rank run; CSV in {study.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
