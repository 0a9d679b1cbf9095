#!/usr/bin/env python3
"""The fine-tuning sweeps' table, from a finished `sweeps/finetune.toml` (or any sweep of
single-parameter fine-tuning sweeps around a centre): per base and swept key, each level's
completion loss on held-out pairs and task exact match (mean ± standard error over seeds), how
far each base's completion loss moves over each sweep against the seeds' noise, and what the
global batch does at a fixed token budget.

    codescale run sweeps/finetune.toml && .venv/bin/python bench/finetune.py [runs/finetune]
"""
import sys

import numpy as np
import pandas as pd

runs = sys.argv[1] if len(sys.argv) > 1 else "runs/finetune"
r = pd.read_parquet(f"{runs}/results.parquet")
bases = r[r.init_from == ""].set_index("trial_id")
r = r[(r.status == "done") & (r.init_from != "") & r.val_completion_loss.notna()].copy()
r["base"] = [f"{bases.loc[b].arch} {bases.loc[b].model}" if b in bases.index else b[:8] for b in r.init_from]
r["pretrained loss"] = [bases.loc[b].val_loss if b in bases.index else np.nan for b in r.init_from]
# The warmup as configured (a ratio of the steps), not the steps it came to, which move with the
# batch size at a fixed budget.
keys = {"batch_size": "batch size", "schedule": "schedule", "warmup": "warmup ratio", "lr": "learning rate"}


def mean_se(x):
    return x.mean(), (x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else np.nan)


for b, x in bases.iterrows():
    print(f"base {b}: {x.arch} {x.model}, {x.n_params_active:.3g} active parameters, "
          f"{x.tokens:.3g} tokens, val_loss {x.val_loss:.4f}")
print()
sens = []
for base, x in r.groupby("base"):
    centre = {k: x[k].mode().iloc[0] for k in keys}
    for k, name in keys.items():
        others = [o for o in keys if o != k]
        s = x[np.logical_and.reduce([x[o] == centre[o] for o in others])]
        if s[k].nunique() < 2:
            continue
        print(f"{base}: {name} (centre {centre[k]})")
        print(f"  {'value':>8} {'seeds':>5} {'completion loss':>18} {'task exact match':>18} {'val_loss':>8}")
        levels = []
        for v, y in s.groupby(k):
            m, se = mean_se(y.val_completion_loss)
            t, tse = mean_se(y.task_exact_match)
            levels.append((v, m, se))
            mark = " *" if v == centre[k] else ""
            print(f"  {str(v):>8} {len(y):>5} {m:>10.4f} ± {se:.4f} {100 * t:>10.1f} % ± {100 * tse:.1f} {y.val_loss.mean():>8.4f}{mark}")
        c = [l for l in levels if l[0] == centre[k]][0][1]
        lo, hi = min(levels, key=lambda l: l[1]), max(levels, key=lambda l: l[1])
        spread, noise = (hi[1] - lo[1]) / c, np.hypot(lo[2], hi[2]) / c
        sens.append((name, base, spread, noise, lo[0], hi[0]))
        print()

print("spread of the completion loss over each sweep (best − worst, relative to the centre), ± its seed noise")
print(f"{'sweep':<14} {'base':<14} {'spread':>8} {'± noise':>8}  best → worst")
for name, base, spread, noise, lo, hi in sens:
    print(f"{name:<14} {base:<14} {100 * spread:>7.2f}% {100 * noise:>7.2f}%  {lo} → {hi}")
