"""Reading a codescale sweep's files with pandas: what the notebooks beside this file share.

Everything comes from the files codescale writes, so this needs pandas, pyarrow, numpy and
matplotlib, not codescale: `runs/<sweep>/results.parquet`, `runs/<sweep>/trials/*/curve.parquet` and
`fits/<sweep>.json`, under a root folder (the repository by default).
"""

import json
from pathlib import Path

from matplotlib import ticker
import numpy as np
import pandas as pd


def read_results(root, sweep):
    """One row per trial."""
    return pd.read_parquet(Path(root) / 'runs' / sweep / 'results.parquet')


def read_curves(root, sweep):
    """Every trial's curve in one table, each row tagged with its trial_id."""
    def one(path):
        c = pd.read_parquet(path)
        if 'trial_id' not in c:  # curves written before codescale tagged their rows
            c.insert(0, 'trial_id', path.parent.name)
        return c
    paths = sorted((Path(root) / 'runs' / sweep).glob('trials/*/curve.parquet'))
    return pd.concat([one(p) for p in paths], ignore_index=True)


def read_fit(root, sweep):
    """The groups with a fitted law, by name (`python`, `python/moe`), `pooled` left out;
    the others are named with the reason they have none."""
    fit = json.loads((Path(root) / 'fits' / f'{sweep}.json').read_text())
    for g in fit['groups']:
        if not g.get('law'):
            print(f"{sweep}/{g['group']}: no law fitted ({g.get('message')})")
    return {g['group']: g for g in fit['groups'] if g.get('law') and g['group'] != 'pooled'}


def law(p, n, d):
    """L(N, D) of one law: a mapping with `form` and `params` (the fit's own form, see
    `point_estimate`), or, as in fit files from before forms were chosen, e, a, b, alpha, beta."""
    # A bootstrap law with a steep exponent overflows far from the data: infinity is its value.
    with np.errstate(over='ignore', invalid='ignore'):
        if 'form' not in p:
            return p['e'] + p['a'] / n ** p['alpha'] + p['b'] / d ** p['beta']
        # JSON has no infinity or NaN: a fit file writes a parameter that overflowed (a degenerate
        # fit) as null, and such a law has no value anywhere.
        q = [np.nan if x is None else x for x in p['params']]
        if p['form'] == 'chinchilla':
            return q[0] + q[1] / n ** q[3] + q[2] / d ** q[4]
        if p['form'] == 'kaplan':
            return q[0] + ((q[1] / n) ** (q[3] / q[4]) + q[2] / d) ** q[4]
        if p['form'] == 'gadre':
            return q[0] + q[1] / n ** q[3] + q[2] / d ** q[3]
        if p['form'] == 'kaplan2020':
            return ((q[0] / n) ** (q[2] / q[3]) + q[1] / d) ** q[3]
        if p['form'] == 'data':
            return q[0] + q[1] / d ** q[2] + 0 * n
        raise ValueError(f"unknown law form {p['form']!r}")


def point_estimate(group):
    """The group's law at its point estimates, in its own form."""
    fitted = group['law']
    if fitted.get('params'):
        return {'form': fitted.get('form', 'chinchilla'), 'params': fitted['params']}
    return {k: fitted[k]['value'] for k in ['e', 'a', 'b', 'alpha', 'beta']}


def bootstrap_laws(group):
    """The bootstrap laws the fit file keeps, each usable with `law`."""
    fitted = group['law']
    if fitted.get('param_samples'):
        return [{'form': fitted['form'], 'params': q} for q in fitted['param_samples']]
    return fitted.get('samples', [])


def band(group, n, d, level=0.95):
    """Pointwise percentile band of L(N, D) over the bootstrap laws the fit file keeps
    (None for a fit file without them)."""
    samples = bootstrap_laws(group)
    if len(samples) < 20:
        return None
    values = np.array([law(s, n, d) for s in samples])
    tail = 100 * (1 - level) / 2
    return np.nanpercentile(values, [tail, 100 - tail], axis=0)


def loss_axis(ax, losses):
    """A log loss axis around the measured losses, with plain tick labels: a band that widens
    beyond the data must not squash the points."""
    ax.set_yscale('log')
    ax.set_ylim(losses.min() / 1.25, losses.max() * 1.25)
    ax.yaxis.set_major_formatter(ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(ticker.FormatStrFormatter('%.1f'))


def estimate(e):
    """`value [lo, hi]` of a fitted quantity ("—" for one the law's form does not have)."""
    if e['value'] is None:
        return '—'
    if e['lo'] is None or e['hi'] is None:
        return f"{e['value']:.3g} [no interval]"
    return f"{e['value']:.3g} [{e['lo']:.3g}, {e['hi']:.3g}]"


def law_table(groups):
    """The fitted parameters of each group with their 95 % intervals."""
    return pd.DataFrame([
        {'group': name, 'law': g['law'].get('form', 'chinchilla'), **{k: estimate(g['law'][k]) for k in ['alpha_n', 'alpha_d', 'l_inf', 'n_c', 'd_c']},
         'rmse_log': round(g['law']['rmse_log'], 4), 'points': g['n_points']}
        for name, g in groups.items()
    ])
