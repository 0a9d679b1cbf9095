//! What the figures and the summary need, pulled out of the inputs once: groups with their
//! points and law, stable colours per language, and "levels" (the distinct N or D values a
//! grid sweep trains at, which become the series of a plot).

use std::collections::BTreeMap;

use codescale_core::{ResultRow, Status};
use codescale_fit::{GroupFit, HyperPoint, LawFit};

use crate::ReportInput;

#[derive(Debug, Clone, Copy)]
pub struct Pt {
    pub n: f64,
    pub d: f64,
    pub loss: f64,
    pub predicted: Option<f64>,
}

pub struct Group<'a> {
    pub name: String,
    pub color: usize,
    pub points: Vec<Pt>,
    pub fit: Option<&'a GroupFit>,
}

impl<'a> Group<'a> {
    pub fn law(&self) -> Option<&'a LawFit> {
        self.fit.and_then(|g| g.law.as_ref())
    }
}

/// The group a results row belongs to, by the fitter's rule.
pub fn group_of(row: &ResultRow) -> String {
    codescale_fit::results::group_of(row)
}

pub use codescale_fit::results::language_of;

pub fn is_done(row: &ResultRow) -> bool {
    row.status == Status::Done && row.val_loss.is_some_and(|l| l.is_finite() && l > 0.0)
}

/// A fine-tuning trial (`init_from`, `sft`): not a point of the pretraining figures (laws,
/// hyperparameters, dense vs MoE), which relate runs from scratch.
pub fn is_fine_tuning(row: &ResultRow) -> bool {
    !row.init_from.is_empty() || !row.sft.is_empty()
}

/// Colour index per language, fixed for the whole report.
pub struct Colors(BTreeMap<String, usize>);

impl Colors {
    pub fn new(input: &ReportInput) -> Colors {
        let mut langs: Vec<String> = input.results.iter().map(|r| r.language.clone()).collect();
        if let Some(fit) = &input.fit {
            langs.extend(fit.groups.iter().map(|g| language_of(&g.group).to_string()));
        }
        langs.sort();
        langs.dedup();
        Colors(langs.into_iter().enumerate().map(|(i, l)| (l, i)).collect())
    }

    pub fn of(&self, group: &str) -> usize {
        self.0.get(language_of(group)).copied().unwrap_or(self.0.len())
    }
}

/// Groups for the law figures: the fitted points when the fit has them, otherwise the finished
/// trials of that group, so an unfitted sweep still shows its data.
pub fn groups<'a>(input: &'a ReportInput, colors: &Colors) -> Vec<Group<'a>> {
    let mut out = of_fit(input.fit.as_ref(), colors);
    let from_results = |name: &str| -> Vec<Pt> {
        input
            .results
            .iter()
            .filter(|r| is_done(r) && group_of(r) == name)
            .map(|r| Pt { n: r.n_params, d: r.tokens, loss: r.val_loss.unwrap_or(f64::NAN), predicted: None })
            .collect()
    };
    for g in out.iter_mut().filter(|g| g.points.is_empty()) {
        g.points = from_results(&g.name);
    }
    let mut names: Vec<String> = input.results.iter().filter(|r| is_done(r)).map(group_of).collect();
    names.sort();
    names.dedup();
    for name in names {
        if out.iter().all(|g| g.name != name) {
            let points = from_results(&name);
            out.push(Group { color: colors.of(&name), name, points, fit: None });
        }
    }
    keep_valid(out)
}

/// The groups of a fit alone, with its fitted points (the infilling-loss law's figures).
pub fn fitted_groups<'a>(fit: Option<&'a codescale_fit::FitFile>, colors: &Colors) -> Vec<Group<'a>> {
    keep_valid(of_fit(fit, colors))
}

fn of_fit<'a>(fit: Option<&'a codescale_fit::FitFile>, colors: &Colors) -> Vec<Group<'a>> {
    let groups = fit.map(|f| f.groups.as_slice()).unwrap_or_default();
    groups
        .iter()
        .map(|g| Group {
            name: g.group.clone(),
            color: colors.of(&g.group),
            points: g.points.iter().map(|p| Pt { n: p.n, d: p.d, loss: p.loss, predicted: p.predicted }).collect(),
            fit: Some(g),
        })
        .collect()
}

fn keep_valid(mut groups: Vec<Group>) -> Vec<Group> {
    groups.retain(|g| g.points.iter().any(valid));
    for g in &mut groups {
        g.points.retain(valid);
    }
    groups
}

fn valid(p: &Pt) -> bool {
    p.n > 0.0 && p.d > 0.0 && p.loss > 0.0 && p.n.is_finite() && p.d.is_finite() && p.loss.is_finite()
}

/// Distinct values up to 3 % apart merged (actual token counts wobble around the budget);
/// more than `max` clusters are thinned to `max` evenly spaced (in log) representatives.
pub fn levels(values: impl IntoIterator<Item = f64>, max: usize) -> Vec<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| *x > 0.0 && x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let mut clusters: Vec<Vec<f64>> = Vec::new();
    for x in v {
        match clusters.last_mut() {
            Some(c) if x <= c[0] * 1.03 => c.push(x),
            _ => clusters.push(vec![x]),
        }
    }
    // An actual value, not a mean, so labels read 8192 rather than 8191.99.
    let reps: Vec<f64> = clusters.iter().map(|c| c[c.len() / 2]).collect();
    if reps.len() <= max || max < 2 {
        return reps;
    }
    (0..max).map(|i| reps[i * (reps.len() - 1) / (max - 1)]).collect()
}

/// Index of the level nearest to `x` in log space.
pub fn level_of(x: f64, levels: &[f64]) -> usize {
    let mut best = 0;
    let mut dist = f64::INFINITY;
    for (i, l) in levels.iter().enumerate() {
        let d = (x.ln() - l.ln()).abs();
        if d < dist {
            dist = d;
            best = i;
        }
    }
    best
}

/// L(N, D) = E + A/N^α + B/D^β at the point estimates.
pub fn law_loss(law: &LawFit, n: f64, d: f64) -> f64 {
    law.predict(n, d)
}

/// The compute-optimal (N, D) at `c` FLOPs, from the law itself, for groups whose fit carries
/// no allocation.
pub fn optimal(law: &LawFit, c: f64) -> (f64, f64) {
    let plan = codescale_fit::allocation::plan(&law.law(), c);
    (plan.n_opt, plan.d_opt)
}

/// One hyperparameter slice: every configuration trained at one budget of one group.
pub struct HyperSlice {
    pub title: String,
    pub points: Vec<HyperPoint>,
    /// (lr, batch tokens) of runs that diverged at this budget.
    pub diverged: Vec<(f64, f64)>,
}

impl HyperSlice {
    pub fn lrs(&self) -> Vec<f64> {
        levels(self.points.iter().map(|p| p.lr).chain(self.diverged.iter().map(|d| d.0)), usize::MAX)
    }
    pub fn batches(&self) -> Vec<f64> {
        levels(self.points.iter().map(|p| p.batch_tokens).chain(self.diverged.iter().map(|d| d.1)), usize::MAX)
    }
    pub fn warmups(&self) -> Vec<f64> {
        let mut w: Vec<f64> = self.points.iter().map(|p| p.warmup_steps).collect();
        w.sort_by(f64::total_cmp);
        w.dedup();
        w
    }
}

/// Slices from the fit's hyperparameter laws when present; otherwise from finished trials
/// that share group, N and D but differ in learning rate or batch size.
pub fn hyper_slices(input: &ReportInput) -> Vec<HyperSlice> {
    let mut out = Vec::new();
    if let Some(fit) = &input.fit {
        for g in &fit.groups {
            let Some(h) = &g.hyper else { continue };
            for b in &h.budgets {
                // A diverged trial stops early, so its recorded compute is below the budget;
                // it belongs here when its model size is one trained at this budget.
                let sizes: Vec<f64> = input
                    .results
                    .iter()
                    .filter(|r| is_done(r) && group_of(r) == g.group && near(r.flops, b.flops, 0.1))
                    .map(|r| r.n_params)
                    .collect();
                let diverged = input
                    .results
                    .iter()
                    .filter(|r| r.status == Status::Diverged && group_of(r) == g.group && r.flops <= b.flops * 1.1)
                    .filter(|r| sizes.iter().any(|n| near(*n, r.n_params, 0.01)))
                    .map(|r| (r.lr, (r.batch_size * r.seq_len) as f64))
                    .collect();
                out.push(HyperSlice {
                    title: format!("{} · C = {}", g.group, crate::axes::fmt_pow10(b.flops)),
                    points: b.all.clone(),
                    diverged,
                });
            }
        }
        if !out.is_empty() {
            return out;
        }
    }
    hyper_from_results(&input.results)
}

fn near(a: f64, b: f64, tol: f64) -> bool {
    a > 0.0 && b > 0.0 && (a.ln() - b.ln()).abs() <= tol
}

fn hyper_from_results(results: &[ResultRow]) -> Vec<HyperSlice> {
    let mut buckets: BTreeMap<(String, i64, i64), Vec<&ResultRow>> = BTreeMap::new();
    for r in results.iter().filter(|r| (r.status == Status::Done || r.status == Status::Diverged) && !is_fine_tuning(r))
    {
        if r.n_params <= 0.0 || r.tokens <= 0.0 {
            continue;
        }
        // 1 % bins in log space: the same N and D up to rounding.
        let key = (group_of(r), (r.n_params.ln() * 100.0).round() as i64, (r.tokens.ln() * 100.0).round() as i64);
        buckets.entry(key).or_default().push(r);
    }
    let mut out = Vec::new();
    for ((group, _, _), rows) in buckets {
        let done: Vec<&&ResultRow> = rows.iter().filter(|r| is_done(r)).collect();
        let lrs = levels(rows.iter().map(|r| r.lr), usize::MAX);
        let bs = levels(rows.iter().map(|r| (r.batch_size * r.seq_len) as f64), usize::MAX);
        if done.len() < 2 || (lrs.len() < 2 && bs.len() < 2) {
            continue;
        }
        let (n, d) = (rows[0].n_params, rows[0].tokens);
        out.push(HyperSlice {
            title: format!("{group} · N = {}, D = {}", crate::axes::fmt_si(n), crate::axes::fmt_si(d)),
            points: done
                .iter()
                .map(|r| HyperPoint {
                    lr: r.lr,
                    batch_tokens: (r.batch_size * r.seq_len) as f64,
                    warmup_steps: r.warmup_steps as f64,
                    loss: r.val_loss.unwrap_or(f64::NAN),
                })
                .collect(),
            diverged: rows
                .iter()
                .filter(|r| r.status == Status::Diverged)
                .map(|r| (r.lr, (r.batch_size * r.seq_len) as f64))
                .collect(),
        });
    }
    out
}

/// Losses of one configuration's seeds, with their evaluations' standard errors.
#[derive(Default)]
pub struct Seeds {
    pub losses: Vec<f64>,
    pub ses: Vec<f64>,
}

impl Seeds {
    pub fn mean(&self) -> f64 {
        self.losses.iter().sum::<f64>() / self.losses.len() as f64
    }

    /// Variance of the mean: the seeds' spread over their number with two or more seeds, the
    /// evaluation's standard error (which misses seed noise) with one.
    pub fn var_of_mean(&self) -> f64 {
        let k = self.losses.len() as f64;
        if k >= 2.0 {
            let m = self.mean();
            self.losses.iter().map(|l| (l - m).powi(2)).sum::<f64>() / (k - 1.0) / k
        } else {
            self.ses.iter().map(|s| s * s).sum::<f64>() / (k * k)
        }
    }
}
