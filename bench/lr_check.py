#!/usr/bin/env python3
"""Is a ladder's learning-rate rule near the best rate? Trains the smallest and the largest size
of the quickstart's ladder (python, its largest budget, its schedule) at the rule's rate × {0.35,
0.5, 0.71, 1, 1.41, 2, 2.83} and prints, per size, the rule's rate, the best rate of the grid,
their ratio (the issue asks for within 1.5×) and the loss lost by using the rule.

    python3 bench/lr_check.py [SWEEP]     # default sweeps/quickstart.toml; after `cargo build --release`
"""
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = next((p for p in (ROOT / "target" / b / "codescale" for b in ("release", "debug")) if p.exists()), None)
MULTIPLIERS = [0.35, 0.5, 0.71, 1.0, 1.41, 2.0, 2.83]


def main():
    sweep = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "sweeps" / "quickstart.toml").read_text()
    rule = re.search(r"lr = \{ rule = \"power\", coef = ([^,]+), n_exponent = ([^ }]+)", sweep)
    coef, n_exp = float(rule.group(1)), float(rule.group(2))
    shapes = re.findall(r"\{ model = \"(d\d+-l\d+)\", n_heads = (\d+) \}", sweep.split("[targets]")[0])
    tokens = max(float(t) for t in re.search(r"tokens = \{ values = \[([^\]]+)\]", sweep).group(1).split(","))
    base = sweep.split("[base]")[1].split("[parameters]")[0]
    base = "\n".join(l for l in base.splitlines() if not l.startswith("lr ="))
    # A stable folder, so a second call reuses the corpus and the finished trials.
    work = ROOT / "target" / "lr-check"
    work.mkdir(parents=True, exist_ok=True)
    ends = (shapes[0], shapes[-1])
    n_of = n_params(work, base, tokens, ends)
    cfgs = []
    for model, heads in ends:
        n = n_of[model]
        for m in MULTIPLIERS:
            cfgs.append(f'{{ model = "{model}", n_heads = {heads}, lr = {coef * (n / 1e6) ** n_exp * m:.5g} }}')
    (work / "lr-check.toml").write_text(
        f'name = "lr-check"\ncorpus = "{ROOT / "corpora" / "local.toml"}"\njobs = 2\n[base]\nlanguage = "python"\ntokens = {tokens}\n{base}\n'
        f'[parameters]\ncfg = {{ values = [{", ".join(cfgs)}] }}\n'
    )
    subprocess.run([BIN, "sweep", "run", "lr-check.toml", "--quiet"], cwd=work, check=True, stdout=subprocess.DEVNULL)
    rows = {}
    for record in (work / "runs" / "lr-check" / "trials").glob("*/trial.json"):
        r = json.loads(record.read_text())
        rows.setdefault(r["config"]["model"], []).append((r["config"]["lr"], r["metrics"]["val_loss"], r["metrics"]["val_loss_se"]))
    print(f"rule: lr = {coef:g} · (N/1e6)^{n_exp:g}; python, {tokens:g} tokens; work folder {work}")
    print(f"{'model':<8} {'rule lr':>9} {'best lr':>9} {'best÷rule':>9} {'loss@rule':>10} {'loss@best':>10} {'gap':>7} {'eval SE':>8}")
    for model, pts in rows.items():
        pts.sort()
        at_rule = pts[MULTIPLIERS.index(1.0)]
        best = min(pts, key=lambda p: p[1])
        print(f"{model:<8} {at_rule[0]:>9.3g} {best[0]:>9.3g} {best[0] / at_rule[0]:>9.2f} {at_rule[1]:>10.4f} {best[1]:>10.4f} {100 * (at_rule[1] / best[1] - 1):>6.2f}% {100 * at_rule[2] / at_rule[1]:>7.2f}%")


def n_params(work, base, tokens, shapes):
    """N of each shape, read from `codescale sweep plan`'s table (so the rule sees the N the
    ladder's rule saw)."""
    cfgs = ", ".join(f'{{ model = "{m}", n_heads = {h} }}' for m, h in shapes)
    (work / "n.toml").write_text(f'name = "n"\ncorpus = "{ROOT / "corpora" / "local.toml"}"\n[base]\nlanguage = "python"\ntokens = {tokens}\n{base}\nlr = 1e-3\n[parameters]\ncfg = {{ values = [{cfgs}] }}\n')
    table = subprocess.run([BIN, "sweep", "plan", "n.toml"], cwd=work, check=True, capture_output=True, text=True).stdout
    # trial language arch model N D FLOPs est.
    return {cols[3]: float(cols[4]) for cols in (line.split() for line in table.splitlines()[1:]) if len(cols) == 8}


if __name__ == "__main__":
    main()
