#!/usr/bin/env python3
"""What fill-in-the-middle costs, from a finished `sweeps/fim.toml` (or any sweep that trains the
same configurations at several `fim_rate`s): per language and rate, the causal loss's change
against rate 0 (mean over configurations, and by model size), with the seeds' noise; and the
infilling loss beside the causal loss of the same trials.

    codescale run sweeps/fim.toml && .venv/bin/python bench/fim.py [runs/fim]
"""
import sys

import numpy as np
import pandas as pd

runs = sys.argv[1] if len(sys.argv) > 1 else "runs/fim"
r = pd.read_parquet(f"{runs}/results.parquet")
r = r[(r.status == "done") & (~r.target)]
cell = ["language", "n_params", "tokens"]
g = r.groupby(cell + ["fim_rate"]).val_loss.agg(["mean", "std", "count"]).reset_index()
base = g[g.fim_rate == 0].set_index(cell)
rows = []
for _, x in g[g.fim_rate > 0].iterrows():
    b = base.loc[tuple(x[c] for c in cell)]
    change = x["mean"] / b["mean"] - 1
    noise = np.sqrt(x["std"] ** 2 / x["count"] + b["std"] ** 2 / b["count"]) / b["mean"]
    rows.append({**{c: x[c] for c in cell}, "rate": x.fim_rate, "change": change, "noise": noise})
c = pd.DataFrame(rows)

print("causal-loss change against fim_rate 0 (mean over the 12 configurations, ± its standard error;")
print("seed noise of one configuration's change, median; configurations beyond twice their noise)")
print(f"{'language':<10} {'rate':>5} {'change':>9} {'± se':>7} {'noise':>7} {'beyond':>7}")
for (lang, rate), x in c.groupby(["language", "rate"]):
    se = x.change.std(ddof=1) / np.sqrt(len(x))
    beyond = (x.change.abs() > 2 * x.noise).sum()
    print(f"{lang:<10} {rate:>5} {100 * x.change.mean():>8.2f}% {100 * se:>6.2f}% {100 * x.noise.median():>6.2f}% {beyond:>4}/{len(x)}")

print("\nby model size (non-embedding N), all languages and budgets together")
print(f"{'N':>8} " + " ".join(f"{'rate ' + str(rate):>12}" for rate in sorted(c.rate.unique())))
for n, x in c.groupby("n_params"):
    cells = []
    for rate in sorted(c.rate.unique()):
        y = x[x.rate == rate].change
        cells.append(f"{100 * y.mean():>7.2f}±{100 * y.std(ddof=1) / np.sqrt(len(y)):.2f}%")
    print(f"{n:>8.0f} " + " ".join(f"{s:>12}" for s in cells))

f = r[r.fim_rate > 0].groupby(["language", "fim_rate"])[["val_loss", "val_fim_loss"]].mean()
f["infill / causal"] = f.val_fim_loss / f.val_loss
print("\ninfilling loss (middle given prefix and suffix) against the causal loss of the same FIM trials")
print(f.round(4).to_string())
