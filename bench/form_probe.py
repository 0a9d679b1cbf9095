#!/usr/bin/env python3
# Prototype behind docs/findings/ladders.md ("What no selection on the ladder can see"): fits law
# forms outside the fitter to a ladder's final points (mean of seeds) per language, predicts the
# sizes above it at the largest budget, and scores each form the two ways a selection rule could:
# rolling splits over N (fit the smaller sizes, predict the larger ones, as `auto` does) and over
# D (fit the smaller budgets, predict the larger ones). Forms: Chinchilla's, Kaplan's with E and
# without (kaplan2020), and a p-norm form that runs between them,
#   E + ((A/N^α)^(1/p) + (B/D^β)^(1/p))^p   (p = 1: Chinchilla's; p = β: Kaplan's).
# Needs numpy, scipy and pandas (with pyarrow). 15 minutes on one core:
#   python3 bench/form_probe.py runs/ladder-break/results.parquet 64
import sys

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

FORMS = {
    "chinchilla": lambda p, N, D: np.exp(p[0]) + np.exp(p[1]) / N ** p[3] + np.exp(p[2]) / D ** p[4],
    "kaplan": lambda p, N, D: np.exp(p[0]) + ((np.exp(p[1]) / N) ** (p[3] / p[4]) + np.exp(p[2]) / D) ** p[4],
    "kaplan2020": lambda p, N, D: ((np.exp(p[0]) / N) ** (p[2] / p[3]) + np.exp(p[1]) / D) ** p[3],
    "pnorm": lambda p, N, D: np.exp(p[0])
    + ((np.exp(p[1]) / N ** p[3]) ** (1 / np.exp(p[5])) + (np.exp(p[2]) / D ** p[4]) ** (1 / np.exp(p[5])))
    ** np.exp(p[5]),
}


def starts(form):
    ln = np.log
    if form == "chinchilla":
        return [[ln(E), ln(A), ln(B), a, b] for E in [0.3, 1, 1.5] for A in [0.3, 3] for B in [0.3, 3] for a in [0.3, 0.8] for b in [0.3, 0.8]]
    if form == "kaplan":
        return [[ln(E), ln(nc), ln(dc), a, b] for E in [0.3, 1, 1.5] for nc in [0.01, 1] for dc in [0.01, 1] for a in [0.1, 0.3, 0.6] for b in [0.2, 0.5]]
    if form == "kaplan2020":
        return [[ln(nc), ln(dc), a, b] for nc in [1e-3, 0.1, 1] for dc in [1e-3, 0.1, 1] for a in [0.05, 0.2, 0.5] for b in [0.05, 0.2, 0.5]]
    return [[ln(E), ln(A), ln(B), a, b, ln(p)] for E in [0.5, 1.2] for A in [0.3, 3] for B in [0.3, 3] for a in [0.3, 0.8] for b in [0.2, 0.5] for p in [0.3, 0.6, 1.0]]


def fit(form, N, D, L):
    """Huber at 1e-3 in log loss (as the fitter's Chinchilla threshold), best of a grid of starts."""
    n0, d0 = np.exp(np.mean(np.log(N))), np.exp(np.mean(np.log(D)))
    f = FORMS[form]
    best = None
    for x0 in starts(form):
        def res(q):
            with np.errstate(all="ignore"):
                r = np.log(f(q, N / n0, D / d0)) - np.log(L)
            return np.where(np.isfinite(r), r, 10.0)
        try:
            r = least_squares(res, x0, loss="huber", f_scale=1e-3, max_nfev=3000)
        except Exception:
            continue
        if best is None or r.cost < best[0]:
            best = (r.cost, r.x)
    q = best[1]
    return (lambda n, d: f(q, n / n0, d / d0)), q


def rolling(form, N, D, L, key, first):
    """Mean |log error| at the held-out levels of `key` (N or D), one split per level from `first`."""
    out = []
    for cut in sorted(set(key))[first:]:
        k = key < cut
        pred, _ = fit(form, N[k], D[k], L[k])
        out.append(np.mean(np.abs(np.log(L[~k]) - np.log(pred(N[~k], D[~k])))))
    return out


results, largest = sys.argv[1], int(sys.argv[2])
a = pd.read_parquet(results, columns=["language", "n_params", "tokens", "val_loss", "d_model"])
print("| language | form | p | " + "target error at the largest budget (N) | N-splits | D-splits | in-sample |")
print("|---|---|---|---|---|---|---|")
for lang in sorted(a.language.unique()):
    g = a[a.language == lang].groupby(["d_model", "n_params", "tokens"]).val_loss.mean().reset_index()
    fitted, above = g[g.d_model <= largest], g[(g.d_model > largest) & (g.tokens == g.tokens.max())]
    N, D, L = fitted.n_params.values, fitted.tokens.values, fitted.val_loss.values
    for form in FORMS:
        pred, q = fit(form, N, D, L)
        targets = " ".join(f"{n:.3g}: {100 * (m / pred(n, d) - 1):+.2f} %" for n, d, m in zip(above.n_params, above.tokens, above.val_loss))
        by_n = rolling(form, N, D, L, N, 3)
        by_d = rolling(form, N, D, L, D, 2)
        p = f"{np.exp(q[5]):.3f}" if form == "pnorm" else ""
        ins = 100 * np.sqrt(np.mean((np.log(pred(N, D)) - np.log(L)) ** 2))
        print(f"| {lang} | {form} | {p} | {targets} | {100 * np.mean(by_n):.2f} % | {100 * np.mean(by_d):.2f} % | {ins:.2f} % |")
