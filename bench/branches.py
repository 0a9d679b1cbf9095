#!/usr/bin/env python3
"""Cooldown branches against independent runs: one language and model size, budgets
{1e5, 3e5, 1e6, 3e6} tokens, each budget trained with two seeds

  * independently, with a cosine schedule (the classic ladder), and
  * as WSD branches of one constant-rate trunk per seed (`schedule = "wsd"`),

reporting the compute each way trains, the wall time, and each budget's final validation loss
under both, against the seed spread (the difference should be within it).

    python3 bench/branches.py [MODEL] [LANGUAGE]     # after `cargo build --release`; local corpus
"""
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The release build when there is one (`cargo build --release`): timings mean little in debug.
BIN = next((p for p in (ROOT / "target" / b / "codescale" for b in ("release", "debug")) if p.exists()), ROOT / "target" / "debug" / "codescale")
MODEL = sys.argv[1] if len(sys.argv) > 1 else "d64-l2"
LANGUAGE = sys.argv[2] if len(sys.argv) > 2 else "python"
BUDGETS = [1e5, 3e5, 1e6, 3e6]
SWEEP = """name = "{name}"
corpus = "{corpus}"
jobs = 2
replicates = 2
[base]
language = "{language}"
model = "{model}"
seq_len = 64
batch_size = 16
lr = 3e-3
warmup = 100
eval_tokens = 262144
{schedule}
[parameters]
tokens = {{ values = [{budgets}] }}
"""
SCHEDULES = {
    "cosine": 'schedule = "cosine"\nfinal_lr_ratio = 0.1',
    "wsd": 'schedule = "wsd"\ndecay_frac = 0.2\ndecay_shape = "1-sqrt"\nfinal_lr_ratio = 0.0',
}


def run(work: Path, name: str):
    sweep = work / f"{name}.toml"
    sweep.write_text(SWEEP.format(name=name, corpus=ROOT / "corpora" / "local.toml", language=LANGUAGE, model=MODEL, schedule=SCHEDULES[name], budgets=", ".join(f"{b:g}" for b in BUDGETS)))
    plan = subprocess.run([BIN, "sweep", "plan", sweep], cwd=work, check=True, capture_output=True, text=True).stdout
    start = time.perf_counter()
    # Separate runs folders: under one, the second sweep would reuse nothing anyway (other ids),
    # but its trunks would share a folder with nothing to share.
    subprocess.run([BIN, "sweep", "run", sweep, "--runs", f"runs-{name}", "--quiet"], cwd=work, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    trials = [json.loads(p.read_text()) for p in (work / f"runs-{name}" / name / "trials").glob("*/trial.json")]
    losses = {}
    for t in trials:
        losses.setdefault(t["config"]["tokens"], []).append(t["metrics"]["val_loss"])
    return plan, wall, losses


def trained_flops(plan: str) -> float:
    """FLOPs the plan trains, as `sweep plan` prints them (with branching, its own line)."""
    branched = re.search(r"cooldown branches: .*: ([0-9.e+]+) FLOPs trained instead", plan)
    if branched:
        return float(branched.group(1))
    return float(re.search(r"\d+ trials, ([0-9.e+]+) FLOPs", plan).group(1))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = {}
        for name in ["cosine", "wsd"]:
            plan, wall, losses = run(work, name)
            results[name] = (trained_flops(plan), wall, losses)
    (c_flops, c_wall, c_loss), (w_flops, w_wall, w_loss) = results["cosine"], results["wsd"]
    print(f"{LANGUAGE} {MODEL}, budgets {', '.join(f'{b:g}' for b in BUDGETS)} tokens, 2 seeds each, 2 jobs")
    print(f"{'ladder':<28} {'FLOPs trained':>14} {'wall s':>8}")
    print(f"{'independent cosine runs':<28} {c_flops:>14.3e} {c_wall:>8.1f}")
    print(f"{'WSD trunk + branches':<28} {w_flops:>14.3e} {w_wall:>8.1f}")
    print(f"{'saved':<28} {100 * (1 - w_flops / c_flops):>13.0f}% {100 * (1 - w_wall / c_wall):>7.0f}%")
    print()
    print(f"{'tokens':>10} {'cosine loss':>12} {'WSD loss':>12} {'WSD − cosine':>13} {'seed spread (sd)':>17}")
    for b in BUDGETS:
        c, w = c_loss[b], w_loss[b]
        spread = statistics.mean([statistics.stdev(c), statistics.stdev(w)])
        print(f"{b:>10.0e} {statistics.mean(c):>12.4f} {statistics.mean(w):>12.4f} {statistics.mean(w) - statistics.mean(c):>+13.4f} {spread:>17.4f}")


if __name__ == "__main__":
    main()
