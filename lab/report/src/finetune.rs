//! Fine-tuning sweeps (trials with `init_from` and `sft`): for each base, each single-parameter
//! sweep around its centre configuration, scored by the completion loss on held-out pairs and by
//! the code task, with the seeds' spread; which base is more sensitive to each hyperparameter;
//! and where a larger global batch starts to cost, beside the seed paper's finding (accuracy
//! drops once the global batch exceeds 256).
//!
//! A sweep of key k is the trials of a base that agree with the base's centre on every other
//! key; the centre is each key's most common value among the base's trials (every
//! single-parameter sweep passes through it, so it is the mode).

use std::collections::BTreeMap;

use codescale_core::ResultRow;
use serde::Serialize;

use crate::axes::{fmt_num, fmt_si};
use crate::data::Seeds;

/// The keys a fine-tuning study varies, in the order the report shows them.
pub const KEYS: [&str; 5] = ["batch size", "schedule", "warmup", "learning rate", "tokens"];

/// One fine-tuning trial's value of each key: its label, and a number that orders the levels.
fn settings(r: &ResultRow) -> [(String, f64); 5] {
    let schedules = ["constant", "wsd", "linear", "cosine"];
    let schedule = r.schedule.as_str();
    // As configured: a ratio of the steps (below 1) or steps, not the steps it came to, which
    // move with the batch size at a fixed budget.
    let warmup = if r.warmup < 1.0 { fmt_num(r.warmup) } else { format!("{} steps", r.warmup) };
    [
        (r.batch_size.to_string(), r.batch_size as f64),
        (schedule.to_string(), schedules.iter().position(|s| *s == schedule).unwrap_or(schedules.len()) as f64),
        (warmup, r.warmup),
        (fmt_num(r.lr), r.lr),
        (fmt_si(r.tokens), r.tokens),
    ]
}

/// A base model the study fine-tunes.
#[derive(Debug, Clone)]
pub struct Base {
    pub id: String,
    /// `dense d96-l2`, `moe d96-l2 (4 experts, top-1)`.
    pub label: String,
}

/// One level of one sweep: its value, and per base (in [`Analysis::bases`] order) the seeds'
/// completion losses and task scores, when that base was fine-tuned at it.
#[derive(Default)]
pub struct Level {
    pub label: String,
    pub order: f64,
    pub centre: bool,
    pub per_base: Vec<Option<(Seeds, Seeds)>>,
}

pub struct KeySweep {
    pub key: &'static str,
    pub levels: Vec<Level>,
}

pub struct Analysis {
    pub bases: Vec<Base>,
    /// Sweeps with at least two levels, in [`KEYS`] order.
    pub sweeps: Vec<KeySweep>,
}

/// `None` when no finished trial fine-tunes a base on pairs.
pub fn analyse(results: &[ResultRow]) -> Option<Analysis> {
    let tuned: Vec<&ResultRow> = results
        .iter()
        .filter(|r| crate::data::is_done(r) && !r.init_from.is_empty() && r.val_completion_loss.is_some())
        .collect();
    let mut bases: Vec<Base> = Vec::new();
    for r in &tuned {
        if !bases.iter().any(|b| b.id == r.init_from) {
            let of = results.iter().find(|b| b.trial_id == r.init_from).unwrap_or(r);
            let moe = match of.arch.as_str() {
                "moe" => format!(" ({} experts, top-{})", of.n_experts, of.top_k),
                _ => String::new(),
            };
            bases.push(Base { id: r.init_from.clone(), label: format!("{} {}{moe}", of.arch.as_str(), of.model) });
        }
    }
    if bases.is_empty() {
        return None;
    }
    bases.sort_by(|a, b| a.label.cmp(&b.label));
    // Per base: each key's centre (the most common label), then each trial's levels.
    let mut sweeps: Vec<KeySweep> = KEYS.iter().map(|&key| KeySweep { key, levels: Vec::new() }).collect();
    for (b, base) in bases.iter().enumerate() {
        let rows: Vec<&&ResultRow> = tuned.iter().filter(|r| r.init_from == base.id).collect();
        let all: Vec<[(String, f64); 5]> = rows.iter().map(|r| settings(r)).collect();
        let centre: Vec<String> = (0..KEYS.len())
            .map(|k| {
                let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                all.iter().for_each(|s| *counts.entry(s[k].0.as_str()).or_default() += 1);
                counts.into_iter().max_by_key(|&(_, n)| n).map(|(l, _)| l.to_string()).unwrap_or_default()
            })
            .collect();
        for (r, s) in rows.iter().zip(&all) {
            let off: Vec<usize> = (0..KEYS.len()).filter(|&k| s[k].0 != centre[k]).collect();
            // The centre belongs to every sweep; a trial one key away to that key's.
            let keys: Vec<usize> = match off.as_slice() {
                [] => (0..KEYS.len()).collect(),
                [k] => vec![*k],
                _ => continue,
            };
            for k in keys {
                let levels = &mut sweeps[k].levels;
                let at = match levels.iter().position(|l| l.label == s[k].0) {
                    Some(at) => at,
                    None => {
                        levels.push(Level {
                            label: s[k].0.clone(),
                            order: s[k].1,
                            centre: s[k].0 == centre[k],
                            per_base: (0..bases.len()).map(|_| None).collect(),
                        });
                        levels.len() - 1
                    }
                };
                let (loss, task) = levels[at].per_base[b].get_or_insert_with(Default::default);
                loss.losses.push(r.val_completion_loss.expect("filtered on it"));
                loss.ses.push(r.val_completion_loss_se.unwrap_or(0.0));
                if let Some(t) = r.task_exact_match {
                    task.losses.push(t);
                    task.ses.push(r.task_exact_match_se.unwrap_or(0.0));
                }
            }
        }
    }
    for s in &mut sweeps {
        s.levels.sort_by(|a, b| a.order.total_cmp(&b.order));
    }
    sweeps.retain(|s| s.levels.len() >= 2);
    Some(Analysis { bases, sweeps })
}

/// How far one base's completion loss moves over one sweep: the spread of its levels' means
/// relative to its centre, with the noise of that spread.
fn spread(levels: &[Level], base: usize) -> Option<(f64, f64, &Level, &Level)> {
    let measured: Vec<(&Level, &Seeds)> =
        levels.iter().filter_map(|l| l.per_base[base].as_ref().map(|(loss, _)| (l, loss))).collect();
    let centre = measured.iter().find(|(l, _)| l.centre)?.1.mean();
    let lo = measured.iter().min_by(|a, b| a.1.mean().total_cmp(&b.1.mean()))?;
    let hi = measured.iter().max_by(|a, b| a.1.mean().total_cmp(&b.1.mean()))?;
    let range = (hi.1.mean() - lo.1.mean()) / centre;
    let noise = (hi.1.var_of_mean() + lo.1.var_of_mean()).sqrt() / centre;
    Some((range, noise, lo.0, hi.0))
}

#[derive(Debug, Serialize)]
pub struct Cell {
    pub loss: String,
    pub task: String,
    pub seeds: usize,
}

#[derive(Debug, Serialize)]
pub struct LevelRow {
    pub value: String,
    pub centre: bool,
    /// One per base; `None` where that base was not fine-tuned at this level.
    pub cells: Vec<Option<Cell>>,
}

#[derive(Debug, Serialize)]
pub struct SweepTable {
    pub key: String,
    pub rows: Vec<LevelRow>,
}

#[derive(Debug, Serialize)]
pub struct SensitivityRow {
    pub key: String,
    /// Per base: the spread of its completion loss over the sweep, best and worst level.
    pub spreads: Vec<String>,
    pub verdict: String,
}

#[derive(Debug, Serialize)]
pub struct FineTuning {
    pub bases: Vec<String>,
    pub sweeps: Vec<SweepTable>,
    pub sensitivity: Vec<SensitivityRow>,
    /// Where a larger global batch starts to cost, per base, beside the seed paper's finding.
    pub batch: Vec<String>,
}

fn mean_se(s: &Seeds, fmt: impl Fn(f64) -> String) -> String {
    if s.losses.is_empty() {
        return "–".into();
    }
    format!("{} ± {}", fmt(s.mean()), fmt(s.var_of_mean().sqrt()))
}

pub fn section(results: &[ResultRow]) -> Option<FineTuning> {
    let a = analyse(results)?;
    let pct = |x: f64| format!("{:.1} %", 100.0 * x);
    let sweeps = a
        .sweeps
        .iter()
        .map(|s| SweepTable {
            key: s.key.to_string(),
            rows: s
                .levels
                .iter()
                .map(|l| LevelRow {
                    value: l.label.clone(),
                    centre: l.centre,
                    cells: l
                        .per_base
                        .iter()
                        .map(|c| {
                            c.as_ref().map(|(loss, task)| Cell {
                                loss: mean_se(loss, |v| format!("{v:.4}")),
                                task: mean_se(task, pct),
                                seeds: loss.losses.len(),
                            })
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    let mut sensitivity = Vec::new();
    for s in &a.sweeps {
        let per: Vec<Option<(f64, f64, &Level, &Level)>> = (0..a.bases.len()).map(|b| spread(&s.levels, b)).collect();
        let spreads = per
            .iter()
            .map(|p| match p {
                Some((range, noise, lo, hi)) => {
                    format!("{:.2} % ± {:.2} % (best {}, worst {})", 100.0 * range, 100.0 * noise, lo.label, hi.label)
                }
                None => "–".into(),
            })
            .collect();
        sensitivity.push(SensitivityRow { key: s.key.to_string(), spreads, verdict: compare(&a.bases, &per) });
    }
    let batch =
        a.sweeps.iter().find(|s| s.key == "batch size").map(|s| batch_finding(&a.bases, &s.levels)).unwrap_or_default();
    Some(FineTuning { bases: a.bases.iter().map(|b| b.label.clone()).collect(), sweeps, sensitivity, batch })
}

/// Which base's loss moves more over a sweep, if the difference exceeds twice its noise.
fn compare(bases: &[Base], per: &[Option<(f64, f64, &Level, &Level)>]) -> String {
    let mut measured: Vec<(usize, f64, f64)> =
        per.iter().enumerate().filter_map(|(b, p)| p.map(|(r, n, _, _)| (b, r, n))).collect();
    if measured.len() < 2 {
        return "one base only".into();
    }
    measured.sort_by(|x, y| y.1.total_cmp(&x.1));
    let ((most, r1, n1), (next, r2, n2)) = (measured[0], measured[1]);
    let noise = (n1 * n1 + n2 * n2).sqrt();
    if r1 - r2 > 2.0 * noise {
        format!(
            "{} is more sensitive (by {:.2} points, noise ± {:.2})",
            bases[most].label,
            100.0 * (r1 - r2),
            100.0 * noise
        )
    } else {
        format!(
            "no difference beyond seed noise ({} {:.2} % vs {} {:.2} %, noise ± {:.2})",
            bases[most].label,
            100.0 * r1,
            bases[next].label,
            100.0 * r2,
            100.0 * noise
        )
    }
}

/// Per base: the batch with the lowest completion loss, and what the largest batch costs in
/// loss and in task score against it.
fn batch_finding(bases: &[Base], levels: &[Level]) -> Vec<String> {
    let mut out = Vec::new();
    for (b, base) in bases.iter().enumerate() {
        let measured: Vec<(&Level, &(Seeds, Seeds))> =
            levels.iter().filter_map(|l| l.per_base[b].as_ref().map(|s| (l, s))).collect();
        let (Some(best), Some(largest)) = (
            measured.iter().min_by(|x, y| x.1 .0.mean().total_cmp(&y.1 .0.mean())),
            measured.iter().max_by(|x, y| x.0.order.total_cmp(&y.0.order)),
        ) else {
            continue;
        };
        let (bl, ll) = (&best.1 .0, &largest.1 .0);
        let change = ll.mean() / bl.mean() - 1.0;
        let noise = (ll.var_of_mean() + bl.var_of_mean()).sqrt() / bl.mean();
        let task = match (best.1 .1.losses.is_empty(), largest.1 .1.losses.is_empty()) {
            (false, false) => format!(
                "; task exact match {:.1} % at the best batch, {:.1} % at the largest",
                100.0 * best.1 .1.mean(),
                100.0 * largest.1 .1.mean()
            ),
            _ => String::new(),
        };
        let verdict = if best.0.label == largest.0.label {
            "the largest batch is the best: no drop within the range swept".to_string()
        } else if change > 2.0 * noise {
            format!(
                "the largest batch ({}) costs {:+.2} % ± {:.2} % of completion loss against the best ({}): a drop beyond seed noise",
                largest.0.label,
                100.0 * change,
                100.0 * noise,
                best.0.label
            )
        } else {
            format!(
                "the largest batch ({}) is within seed noise of the best ({}): {:+.2} % ± {:.2} %",
                largest.0.label,
                best.0.label,
                100.0 * change,
                100.0 * noise
            )
        };
        out.push(format!("{}: {verdict}{task}.", base.label));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::row;

    /// Two bases swept over batch size and learning rate around one centre: the sweeps are
    /// told apart by the key that moves, the centre sits in both, and the base whose loss moves
    /// more (beyond its seeds' spread) is named.
    #[test]
    fn sweeps_are_read_around_the_centre_and_the_more_sensitive_base_is_named() {
        let mut rows = vec![];
        for (base, arch, slope) in [("B1", "dense", 0.01), ("B2", "moe", 0.05)] {
            let mut b = row("s", "done", "python", arch, 2e5, 2e6, 3e-3, 16, 50, Some(3.0));
            b.trial_id = base.into();
            rows.push(b);
            for seed in 0..2 {
                let noise = 0.001 * seed as f64;
                for (batch, lr) in [(16, 1e-3), (4, 1e-3), (64, 1e-3), (16, 3e-4), (16, 3e-3)] {
                    let far = ((batch as f64 / 16.0).log2().abs() + (lr / 1e-3f64).log10().abs()) * slope;
                    let mut r = row("s", "done", "python", arch, 2e5, 262144.0, lr, batch, 2, Some(3.0));
                    r.trial_id = format!("{base}-{batch}-{lr}-{seed}");
                    (r.init_from, r.sft, r.steps) = (base.into(), "functions".into(), 64);
                    r.val_completion_loss = Some(2.0 + far + noise);
                    r.task_exact_match = Some(0.3 - far);
                    rows.push(r);
                }
            }
        }
        let a = analyse(&rows).unwrap();
        assert_eq!(
            a.bases.iter().map(|b| b.label.as_str()).collect::<Vec<_>>(),
            ["dense d128-l4", "moe d128-l4 (8 experts, top-2)"]
        );
        let keys: Vec<&str> = a.sweeps.iter().map(|s| s.key).collect();
        assert_eq!(keys, ["batch size", "learning rate"]);
        let batch = &a.sweeps[0];
        assert_eq!(batch.levels.iter().map(|l| l.label.as_str()).collect::<Vec<_>>(), ["4", "16", "64"]);
        assert!(batch.levels[1].centre && batch.levels[1].per_base[0].as_ref().unwrap().0.losses.len() == 2);
        let s = section(&rows).unwrap();
        assert!(
            s.sensitivity[0].verdict.starts_with("moe d128-l4 (8 experts, top-2) is more sensitive"),
            "{:?}",
            s.sensitivity
        );
        assert!(s.batch[0].contains("costs +") && s.batch[0].contains("beyond seed noise"), "{:?}", s.batch);
        assert!(analyse(&rows.iter().filter(|r| r.init_from.is_empty()).cloned().collect::<Vec<_>>()).is_none());
    }
}
