#!/usr/bin/env python3
"""Sweep scheduler benchmark: a 16-trial learning-rate × batch sweep run with --jobs 1 and
--jobs 2 (wall time, and CPU utilisation = Σ CPU seconds ÷ (wall × cores)), then with
asynchronous successive halving, against the full grid (compute spent, best trial found).

    python3 bench/sweep_parallel.py              # builds codescale; uses the local corpus
    python3 bench/sweep_parallel.py jobs2        # only the named runs (jobs1, jobs2, asha)
    CODESCALE_BIN=/path/to/codescale python3 bench/sweep_parallel.py jobs2   # another build, side by side
"""
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("CODESCALE_BIN", ROOT / "target" / "debug" / "codescale"))
SWEEP = """name = "bench"
corpus = "{corpus}"
[base]
language = "python"
model = "d64-l2"
seq_len = 64
tokens = 400000
eval_tokens = 8192
warmup = 0.05
[parameters]
lr = {{ values = [3e-3, 1e-2, 1e-3, 3e-2, 3e-4, 1e-1, 1e-4, 3e-1] }}
batch_size = {{ values = [16, 32] }}
{early_stop}"""
ASHA = "[early_stop]\nmin_tokens = 50000\nreduction = 2\n"


def run(work: Path, runs: str, jobs: int, asha: bool):
    sweep = work / f"{runs}.toml"
    sweep.write_text(SWEEP.format(corpus=ROOT / "corpora" / "local.toml", early_stop=ASHA if asha else ""))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([BIN, "sweep", "run", sweep, "--runs", runs, "--jobs", str(jobs), "--quiet"], cwd=work, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    trials = [json.loads(p.read_text()) for p in (work / runs / "bench" / "trials").glob("*/trial.json")]
    compute = sum(t["metrics"]["flops"] for t in trials)
    done = [t for t in trials if t["status"] == "done" and t["metrics"]["val_loss"] is not None]
    best = min(done, key=lambda t: t["metrics"]["val_loss"])
    statuses = {}
    for t in trials:
        statuses[t["status"]] = statuses.get(t["status"], 0) + 1
    return wall, cpu, compute, best, statuses


def main():
    if "CODESCALE_BIN" not in os.environ:
        subprocess.run(["cargo", "build", "-q", "--workspace", "--bin", "codescale"], cwd=ROOT, check=True)
    wanted = set(sys.argv[1:]) or {"jobs1", "jobs2", "asha"}
    cores = os.cpu_count()
    work = Path(tempfile.mkdtemp())
    try:
        # Build the corpus once, outside the timings.
        subprocess.run([BIN, "corpus", "build", ROOT / "corpora" / "local.toml", "--quiet"], cwd=work, check=True, stdout=subprocess.DEVNULL)
        rows = []
        for name, jobs, asha in [("jobs1", 1, False), ("jobs2", 2, False), ("asha", 2, True)]:
            if name in wanted:
                rows.append((name, jobs, asha) + run(work, name, jobs, asha))
        # ASHA's saving is against the full grid's compute (any run without early stopping).
        full_compute = next((r[5] for r in rows if not r[2]), None)
        print(f"{'run':<8} {'jobs':>4} {'wall s':>8} {'CPU s':>8} {'util':>6} {'compute':>10} {'saved':>6}  best trial (lr, batch, val loss)  statuses")
        for name, jobs, asha, wall, cpu, compute, best, statuses in rows:
            c = best["config"]
            print(
                f"{name:<8} {jobs:>4} {wall:>8.1f} {cpu:>8.1f} {cpu / (wall * cores):>6.2f} {compute:>10.3e} {(1 - compute / full_compute) if full_compute else float('nan'):>6.1%}  "
                f"{c['lr']:.0e}, {c['batch_size']:>3}, {best['metrics']['val_loss']:.4f}          {statuses}"
            )
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    sys.exit(main())
