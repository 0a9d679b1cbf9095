#!/usr/bin/env python3
"""How well a sweep's laws predict: runs `codescale run SWEEP` (timed; finished trials are
reused, so a second call only refits), then prints per language

  * identifiability: the 95 % interval's width over the estimate, for α_N, α_D and L_inf
    (below 1 is identified),
  * the rolling check: the law fitted on the k smallest sizes predicting the larger ones,
  * additivity: how far the best free surface f(N) + g(D) misses the configurations, how much
    of that seed noise alone explains, one run's seed-to-seed noise (with replicates) and the
    lack-of-fit p-value,
  * each held-out target: predicted loss with its 95 % prediction interval, measured loss (the
    mean of its seeds), error, and whether the interval covers it,
  * the compute the sweep trained, ladder and targets apart.

    python3 bench/prediction.py sweeps/quickstart.toml [--runs DIR]
"""
import argparse
import json
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "codescale"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sweep")
    ap.add_argument("--runs", default="runs")
    ap.add_argument("--bin", default=str(BIN if BIN.exists() else ROOT / "target" / "debug" / "codescale"))
    args = ap.parse_args()
    name = next(line.split("=", 1)[1].strip().strip('"') for line in Path(args.sweep).read_text().splitlines() if line.startswith("name"))
    start = time.perf_counter()
    subprocess.run([args.bin, "run", args.sweep, "--runs", args.runs, "--quiet"], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    runs = Path(args.runs)
    fit = json.loads((runs.parent / "fits" / f"{name}.json").read_text())
    plan = json.loads((runs / name / "plan.json").read_text())
    target_ids = set(plan.get("targets", []))
    records = [json.loads(p.read_text()) for p in (runs / name / "trials").glob("*/trial.json")]

    print(f"{name}: `codescale run` {wall:.0f} s wall (0 s of it training when every trial was already done)")
    ladder = sum(r["metrics"]["flops"] for r in records if r["status"] == "done" and r["id"] not in target_ids)
    targets = sum(r["metrics"]["flops"] for r in records if r["status"] == "done" and r["id"] in target_ids)
    print(f"compute: ladder {ladder:.3e} FLOPs (6·N·D, each budget counted in full), targets {targets:.3e}")
    print()
    print(f"{'language':<10} {'α_N':>16} {'α_D':>16} {'L_inf':>16}   interval width ÷ estimate")
    for g in fit["groups"]:
        law = g.get("law")
        if g["group"] == "pooled" or not law:
            continue
        cells = []
        for key in ["alpha_n", "alpha_d", "l_inf"]:
            e = law[key]
            width = (e["hi"] - e["lo"]) / abs(e["value"]) if e["lo"] is not None else float("nan")
            cells.append(f"{e['value']:.3f} ({width:.2f})")
        print(f"{g['group']:<10} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16}")
    print()
    print(f"{'language':<10} {'fitted sizes':>12} {'predicting':>10} {'mean |err|':>11} {'max |err|':>10}")
    for g in fit["groups"]:
        if g["group"] == "pooled":
            continue
        sizes = len({round(p["n"]) for p in g["points"]})
        for r in g.get("rolling", []):
            print(f"{g['group']:<10} {sizes - len(r['held_out_n']):>12} {len(r['held_out_n']):>10} {100 * r['mean_abs_rel_error']:>10.2f}% {100 * r['max_abs_rel_error']:>9.2f}%")
    print()
    # The misfit is set against what seed noise alone would leave (noise_floor), not against one
    # run's seed-to-seed noise: a seed mean misses by less than one run does.
    print(f"{'language':<10} {'additive misfit':>15} {'noise explains':>14} {'one run':>8} {'lack-of-fit p':>13}")
    for g in fit["groups"]:
        a = g.get("additivity")
        if g["group"] == "pooled" or not a:
            continue
        pct = lambda key: f"{100 * a[key]:.2f}%" if a.get(key) is not None else "—"
        p = f"{a['p_value']:.2g}" if a.get("p_value") is not None else "— (no seeds)"
        print(f"{g['group']:<10} {100 * a['misfit']:>14.2f}% {pct('noise_floor'):>14} {pct('noise'):>8} {p:>13}")
    print()
    print(f"{'language':<10} {'target N':>9} {'D':>8} {'×compute':>8} {'predicted [95 % PI]':>28} {'measured':>9} {'error':>8} {'covered':>8}")
    for g in fit["groups"]:
        for t in g.get("targets", []):
            p = t["predicted"]
            print(f"{g['group']:<10} {t['n']:>9.3g} {t['d']:>8.2g} {t['compute_ratio']:>8.1f} {p['value']:>10.4f} [{p['lo']:.4f}, {p['hi']:.4f}] {t['measured']:>9.4f} {100 * t['error']:>+7.2f}% {'yes' if t['covered'] else 'NO':>8}")


if __name__ == "__main__":
    main()
