//! The whole-curve law: every evaluation along every run, not only each run's last, fitted under
//! the run's known learning-rate schedule (Tissue et al. 2024, "Scaling law with learning rate
//! annealing"), extended with N:
//!
//!   L(N, s) = E + A/N^α + B/S₁(s)^β − C·S₂(s)
//!
//! S₁ is the forward area of the schedule, Σ η_i/η_peak over the steps so far, in tokens (a run
//! at its peak rate throughout has S₁ = D); S₂ is the annealing area, Σ m_i in tokens with the
//! momentum m_i = λ·m_{i−1} + (η_{i−1} − η_i)/η_peak, which credits a cooldown with the loss it
//! removes and saturates as the cooldown lengthens (λ = 0.999, Tissue et al.'s value). One law
//! then covers a trunk's constant-rate stretch, each cooldown branch and the final points, and a
//! final point of any schedule is predicted from its config alone.
//!
//! Evaluations along the way read a fixed subset of the evaluation windows (`CURVE_EVAL_TOKENS`
//! in the trainer) while a run's last one reads them all; the subset's loss differs from the
//! whole set's by a near-constant factor, measured here from each run's last two evaluations
//! when almost no learning-rate area lies between them.

use crate::Skipped;
use codescale_core::{Status, TrialConfig};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bootstrap::{clusters, derive_seed, estimate, resample_clusters, rng};
use crate::forms::{lse, matched_delta, minimize, End};
use crate::schema::{Estimate, TargetCheck};
use crate::{FitOptions, Point};

/// Tissue et al.'s decay factor of the annealing momentum, per optimizer step.
pub const LAMBDA: f64 = 0.999;
/// Evaluations before this fraction of a run's budget are left out: the loss there still falls
/// from its initial value on a path no power law of the area describes.
pub const MIN_FRACTION: f64 = 0.1;
/// The subset factor is measured only where the last two evaluations are this close in
/// learning-rate area (as a fraction of the run's).
const PAIR_AREA: f64 = 0.02;
/// The bootstrap refits at most this many resamples: each refit is over every evaluation.
const MAX_RESAMPLES: usize = 200;

pub const FORMULA: &str = "E + A/N^α + B/S₁^β − C·S₂";
pub const PARAM_NAMES: [&str; 6] = ["E", "A", "B", "α", "β", "C"];

/// One run of the group: its fit point (N, the final loss, target or not, its trunk), its config
/// (the schedule) and its curve's evaluations as (step, loss).
#[derive(Debug, Clone)]
pub struct CurveTrial {
    pub point: Point,
    pub config: TrialConfig,
    pub evals: Vec<(usize, f64)>,
}

/// The schedule's areas after each number of completed steps: `(S₁, S₂)` in tokens, index k for
/// the loss measured after k steps.
pub fn areas(config: &TrialConfig) -> Vec<(f64, f64)> {
    let total = config.total_steps();
    let tokens = config.tokens_per_step() as f64;
    let warmup = config.warmup_steps();
    let rate = |i: usize| config.lr_at(i) / config.optimizer.lr;
    let mut out = Vec::with_capacity(total + 1);
    let (mut s1, mut s2, mut m) = (0.0, 0.0, 0.0);
    out.push((0.0, 0.0));
    for i in 0..total {
        // The warmup's rise is not annealing.
        if i > warmup {
            m = LAMBDA * m + (rate(i - 1) - rate(i));
        }
        s1 += rate(i) * tokens;
        s2 += m * tokens;
        out.push((s1, s2));
    }
    out
}

/// The loss the law predicts from natural parameters (see [`PARAM_NAMES`]).
pub fn predict(p: &[f64], n: f64, s1: f64, s2: f64) -> f64 {
    p[0] + p[1] / n.powf(p[3]) + p[2] / s1.powf(p[4]) - p[5] * s2
}

/// The whole-curve law of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurveLawFit {
    pub formula: String,
    /// Natural parameters, in the order of [`PARAM_NAMES`]; S₁ and S₂ in tokens.
    #[serde(deserialize_with = "crate::schema::f64s_or_nan")]
    pub params: Vec<f64>,
    pub alpha_n: Estimate,
    /// β, the exponent of the schedule's area (D's, for a run at its peak rate).
    pub alpha_d: Estimate,
    pub l_inf: Estimate,
    pub lambda: f64,
    /// Evaluations along the way were multiplied by this to put them on the whole evaluation
    /// set's scale, measured from `subset_pairs` runs' last two evaluations.
    pub subset_scale: f64,
    pub subset_pairs: usize,
    /// Runs and evaluations fitted (shared trunk evaluations counted once).
    pub runs: usize,
    pub evaluations: usize,
    pub huber: f64,
    /// Whether the optimizer converged (else the best point it reached, often with E at 0).
    pub converged: bool,
    /// RMS log residual of the runs' final points.
    pub rmse_log_final: f64,
    /// Mean |log error| at the held-out larger sizes' final points over the rolling splits that
    /// the final-point forms are scored on (fitted on the smaller sizes' whole curves).
    pub out_of_sample: Option<f64>,
    pub splits: usize,
    pub bootstrap_samples: usize,
    /// Held-out targets, predicted from their configs (schedule) alone.
    #[serde(default)]
    pub targets: Vec<TargetCheck>,
}

impl CurveLawFit {
    /// E driven to its bound of 0: its tiny interval surrounds nothing, so it is not identified.
    pub fn l_inf_at_bound(&self) -> bool {
        self.l_inf.value < 1e-6
    }
}

/// Prepared evaluations: centred ln N, ln S₁, S₂ over the S₁ scale, log loss, weight.
#[derive(Debug, Clone)]
struct Evals {
    x: Vec<f64>,
    y: Vec<f64>,
    z: Vec<f64>,
    ln_loss: Vec<f64>,
    weight: Vec<f64>,
    /// Index of the run (for the final-point residuals) and whether it is its final point.
    last: Vec<bool>,
    family: Vec<String>,
    m_n: f64,
    m_d: f64,
    mean_loss: f64,
    min_loss: f64,
}

/// One evaluation as the law fits it: (N, S₁, S₂, loss, whether it is the run's final point,
/// the run's family: its trunk, or itself).
type Evaluation = (f64, f64, f64, f64, bool, String);

/// The evaluations of `trials` (fitted ones only), with the subset factor and how many pairs
/// measured it.
fn prepare(trials: &[&CurveTrial]) -> (Vec<Evaluation>, f64, usize) {
    let mut pairs = vec![];
    let mut rows = vec![];
    let mut seen = std::collections::HashSet::new();
    for t in trials {
        let a = areas(&t.config);
        let total = t.config.total_steps();
        let family = t.point.trunk.clone().unwrap_or_else(|| t.point.id.clone());
        if let ([.., (prev, lp), (last, ll)], Some(&(s_total, _))) = (t.evals.as_slice(), a.last()) {
            if *last == total && *prev < total && (s_total - a[*prev].0) < PAIR_AREA * s_total {
                pairs.push((ll / lp).ln());
            }
        }
        for &(step, loss) in &t.evals {
            if step > total
                || step <= t.config.warmup_steps()
                || (step as f64) < MIN_FRACTION * total as f64
                || loss.is_nan()
                || loss <= 0.0
            {
                continue;
            }
            let last = step == total;
            // A trunk's evaluations appear in each of its branches' curves: count them once.
            if !last && !seen.insert((family.clone(), step, loss.to_bits())) {
                continue;
            }
            rows.push((t.point.n, a[step].0, a[step].1, loss, last, family.clone()));
        }
    }
    pairs.sort_by(f64::total_cmp);
    let scale = if pairs.is_empty() { 1.0 } else { pairs[pairs.len() / 2].exp() };
    for r in &mut rows {
        if !r.4 {
            r.3 *= scale;
        }
    }
    (rows, scale, pairs.len())
}

impl Evals {
    fn new(rows: &[(f64, f64, f64, f64, bool, String)]) -> Evals {
        let k = rows.len().max(1) as f64;
        let m_n = rows.iter().map(|r| r.0.ln()).sum::<f64>() / k;
        let m_d = rows.iter().map(|r| r.1.ln()).sum::<f64>() / k;
        let scale = m_d.exp();
        Evals {
            x: rows.iter().map(|r| r.0.ln() - m_n).collect(),
            y: rows.iter().map(|r| r.1.ln() - m_d).collect(),
            z: rows.iter().map(|r| r.2 / scale).collect(),
            ln_loss: rows.iter().map(|r| r.3.ln()).collect(),
            weight: vec![1.0; rows.len()],
            last: rows.iter().map(|r| r.4).collect(),
            family: rows.iter().map(|r| r.5.clone()).collect(),
            m_n,
            m_d,
            mean_loss: rows.iter().map(|r| r.3).sum::<f64>() / k,
            min_loss: rows.iter().map(|r| r.3).fold(f64::INFINITY, f64::min),
        }
    }

    /// log L and its gradient in internal parameters q = (a, b, e, α, β, c):
    /// L = exp(LSE(a − α·x, b − β·y, e)) − exp(c)·z.
    fn log_predict(q: &[f64], x: f64, y: f64, z: f64, grad: &mut [f64]) -> f64 {
        let (u, w) = lse(&[q[0] - q[3] * x, q[1] - q[4] * y, q[2]]);
        let p = u.exp();
        let k = q[5].exp() * z;
        let l = p - k;
        if l.is_nan() || l <= 0.0 {
            grad.iter_mut().for_each(|g| *g = 0.0);
            return f64::NAN;
        }
        let r = p / l;
        grad.copy_from_slice(&[r * w[0], r * w[1], r * w[2], -r * w[0] * x, -r * w[1] * y, -k / l]);
        l.ln()
    }

    fn objective(&self, delta: f64, q: &[f64], grad: &mut [f64]) -> f64 {
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut g = [0.0; 6];
        let mut cost = 0.0;
        for i in 0..self.x.len() {
            if self.weight[i] == 0.0 {
                continue;
            }
            let pred = Self::log_predict(q, self.x[i], self.y[i], self.z[i], &mut g);
            let (h, psi) = crate::forms::huber(self.ln_loss[i] - pred, delta);
            cost += self.weight[i] * h;
            for (gk, dk) in grad.iter_mut().zip(&g) {
                *gk -= self.weight[i] * psi * dk;
            }
        }
        cost
    }

    fn residuals(&self, q: &[f64]) -> Vec<f64> {
        let mut g = [0.0; 6];
        (0..self.x.len())
            .map(|i| self.ln_loss[i] - Self::log_predict(q, self.x[i], self.y[i], self.z[i], &mut g))
            .collect()
    }

    fn natural(&self, q: &[f64]) -> Vec<f64> {
        vec![
            q[2].exp(),
            (q[0] + q[3] * self.m_n).exp(),
            (q[1] + q[4] * self.m_d).exp(),
            q[3],
            q[4],
            q[5].exp() / self.m_d.exp(),
        ]
    }

    /// Starting points: E spread below the lowest loss, each term a share of the mean loss, two
    /// exponents each, and an annealing term of a few per cent of the loss at the largest S₂.
    fn grid(&self) -> Vec<Vec<f64>> {
        let z_max = self.z.iter().copied().fold(1e-12, f64::max);
        let c = (0.05 * self.mean_loss / z_max).ln();
        let mut out = vec![];
        for e in [0.3, 0.7, 0.95] {
            for ta in [0.1, 0.4] {
                for tb in [0.1, 0.4] {
                    for al in [0.2, 0.6] {
                        for be in [0.2, 0.6] {
                            out.push(vec![
                                (ta * self.mean_loss).ln(),
                                (tb * self.mean_loss).ln(),
                                (e * self.min_loss).ln(),
                                al,
                                be,
                                c,
                            ]);
                        }
                    }
                }
            }
        }
        out
    }
}

struct Solved {
    q: Vec<f64>,
    delta: f64,
    converged: bool,
    /// Internal starts of the best distinct end points, for the bootstrap.
    starts: Vec<Vec<f64>>,
}

/// The lowest end point (converged ones first: one that stopped at a cap or on a failed line
/// search is taken only when none converged, as where E runs off towards 0) and the best three
/// distinct ends for restarts; whether the chosen one converged.
fn best(ends: Vec<End>) -> Option<(Vec<f64>, Vec<Vec<f64>>, bool)> {
    let mut ok: Vec<End> = ends.into_iter().filter(|e| e.cost.is_finite()).collect();
    ok.sort_by(|a, b| b.converged.cmp(&a.converged).then(a.cost.total_cmp(&b.cost)));
    let first = ok.first()?;
    let (q, converged) = (first.q.clone(), first.converged);
    let starts = ok.iter().take(3).map(|e| e.q.clone()).collect();
    Some((q, starts, converged))
}

/// Multi-start fit at Chinchilla's threshold, then refitted at the threshold matched to its
/// residuals (as the final-point forms are).
fn solve(ev: &Evals) -> Option<Solved> {
    let run = |delta: f64, starts: Vec<Vec<f64>>| -> Vec<End> {
        starts.into_par_iter().map(|q0| minimize(&|q: &[f64], g: &mut [f64]| ev.objective(delta, q, g), q0)).collect()
    };
    let first = crate::approach3::CHINCHILLA_DELTA;
    let (q, starts, converged) = best(run(first, ev.grid()))?;
    let delta = matched_delta(&ev.residuals(&q));
    if delta == first {
        return Some(Solved { q, delta, converged, starts });
    }
    let mut again = vec![q];
    again.extend(starts);
    let (q, starts, converged) = best(run(delta, again))?;
    Some(Solved { q, delta, converged, starts })
}

/// The final loss of `config`'s schedule at N, from natural parameters.
fn predict_config(p: &[f64], n: f64, config: &TrialConfig) -> f64 {
    let (s1, s2) = areas(config).last().copied().unwrap_or((0.0, 0.0));
    predict(p, n, s1, s2)
}

/// The law fitted on `fitted` runs alone, or `None`.
fn fit_runs(fitted: &[&CurveTrial]) -> Option<(Vec<f64>, Evals, Solved)> {
    let (rows, _, _) = prepare(fitted);
    if crate::distinct(rows.iter().map(|r| r.0)).len() < 2 || rows.len() <= PARAM_NAMES.len() {
        return None;
    }
    let ev = Evals::new(&rows);
    let solved = solve(&ev)?;
    Some((ev.natural(&solved.q), ev, solved))
}

/// The rolling out-of-sample error, on the splits the final-point forms use
/// ([`crate::select::splits`]): the smaller sizes' whole curves fitted, the larger sizes' final
/// points predicted from their configs.
fn out_of_sample(fitted: &[&CurveTrial]) -> (Option<f64>, usize) {
    let finals: Vec<(f64, f64, f64)> = fitted.iter().map(|t| (t.point.n, t.point.d, t.point.loss)).collect();
    let splits = crate::select::splits(&finals, crate::forms::Form::Chinchilla.n_params());
    let mut scores = vec![];
    for (_, test) in &splits {
        let cut = test.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let train: Vec<&CurveTrial> = fitted.iter().copied().filter(|t| t.point.n < cut).collect();
        let held: Vec<&CurveTrial> = fitted.iter().copied().filter(|t| t.point.n >= cut).collect();
        let Some((p, _, _)) = fit_runs(&train) else {
            return (Some(f64::INFINITY), splits.len());
        };
        let errs: Vec<f64> =
            held.iter().map(|t| (t.point.loss / predict_config(&p, t.point.n, &t.config)).ln().abs()).collect();
        scores
            .push(errs.iter().map(|e| if e.is_finite() { *e } else { f64::INFINITY }).sum::<f64>() / errs.len() as f64);
    }
    ((!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64), splits.len())
}

/// The whole-curve law of one group's runs (`trials` may hold targets, which are predicted and
/// never fitted). `Err` says why there is none.
pub fn fit_group(trials: &[CurveTrial], opts: &FitOptions, seed: u64) -> Result<CurveLawFit, Skipped> {
    let mut fitted: Vec<&CurveTrial> =
        trials.iter().filter(|t| !t.point.target && t.point.status == Status::Done && !t.evals.is_empty()).collect();
    fitted.sort_by(|a, b| a.point.id.cmp(&b.point.id));
    let sizes = crate::distinct(fitted.iter().map(|t| t.point.n)).len();
    if sizes < 2 {
        return Err(Skipped(format!(
            "the whole-curve law needs runs of two model sizes or more ({sizes} with curves)"
        )));
    }
    let (rows, subset_scale, subset_pairs) = prepare(&fitted);
    if rows.len() <= PARAM_NAMES.len() {
        return Err(Skipped(format!(
            "{} evaluations past {:.0} % of their runs, more than {} needed",
            rows.len(),
            MIN_FRACTION * 100.0,
            PARAM_NAMES.len()
        )));
    }
    let ev = Evals::new(&rows);
    let solved = solve(&ev).ok_or_else(|| Skipped("every start of the whole-curve fit failed".into()))?;
    let p = ev.natural(&solved.q);
    let residuals = ev.residuals(&solved.q);
    let final_residuals: Vec<f64> = residuals.iter().zip(&ev.last).filter(|(_, l)| **l).map(|(r, _)| *r).collect();
    let rmse_log_final =
        (final_residuals.iter().map(|r| r * r).sum::<f64>() / final_residuals.len().max(1) as f64).sqrt();

    // Bootstrap over run families (a trunk and its branches share their seed's noise).
    let families = clusters(&ev.family);
    let resamples = opts.bootstrap.min(MAX_RESAMPLES);
    let mut starts = vec![solved.q.clone()];
    starts.extend(solved.starts.iter().cloned());
    let samples: Vec<Vec<f64>> = (0..resamples)
        .into_par_iter()
        .filter_map(|i| {
            let w = resample_clusters(&families, ev.x.len(), &mut rng(seed, i as u64));
            let boot = Evals { weight: w, ..ev.clone() };
            let ends = starts
                .iter()
                .map(|q0| minimize(&|q: &[f64], g: &mut [f64]| boot.objective(solved.delta, q, g), q0.clone()))
                .collect();
            best(ends).filter(|b| b.2).map(|(q, _, _)| ev.natural(&q))
        })
        .collect();
    let c = opts.confidence;
    let column = |k: usize| samples.iter().map(|s| s[k]).collect::<Vec<f64>>();

    let targets: Vec<&CurveTrial> =
        trials.iter().filter(|t| t.point.target && t.point.status == Status::Done).collect();
    let points: Vec<&Point> = targets.iter().map(|t| &t.point).collect();
    let max_flops = fitted.iter().map(|t| crate::group::compute(&t.point)).fold(0.0, f64::max);
    let target_checks = crate::group::check_targets(&points, max_flops, |point| {
        let config = &targets.iter().find(|t| std::ptr::eq(&t.point, point)).expect("a target's own point").config;
        let preds: Vec<f64> =
            samples.iter().map(|s| predict_config(s, point.n, config)).filter(|x| x.is_finite()).collect();
        crate::predict::interval(
            predict_config(&p, point.n, config),
            &preds,
            &final_residuals,
            PARAM_NAMES.len(),
            c,
            derive_seed(seed, &point.id),
        )
    });
    let (out_of_sample, splits) = if opts.checks { out_of_sample(&fitted) } else { (None, 0) };
    Ok(CurveLawFit {
        formula: FORMULA.into(),
        alpha_n: estimate(p[3], &column(3), c),
        alpha_d: estimate(p[4], &column(4), c),
        l_inf: estimate(p[0], &column(0), c),
        params: p,
        lambda: LAMBDA,
        subset_scale,
        subset_pairs,
        runs: fitted.len(),
        evaluations: rows.len(),
        huber: solved.delta,
        converged: solved.converged,
        rmse_log_final,
        out_of_sample,
        splits,
        bootstrap_samples: samples.len(),
        targets: target_checks,
    })
}

/// Fits the whole-curve law of every group of `fit` (not a pooled one) from its runs among
/// `trials`, recording it or why there is none.
pub fn add_to(fit: &mut crate::FitFile, trials: &[CurveTrial], opts: &FitOptions) {
    let laws: Vec<Result<CurveLawFit, Skipped>> = fit
        .groups
        .par_iter()
        .map(|g| {
            if crate::results::language_of(&g.group) == crate::group::POOLED {
                return Err(Skipped("not fitted for a pooled group".into()));
            }
            let runs: Vec<CurveTrial> = trials.iter().filter(|t| t.point.group == g.group).cloned().collect();
            fit_group(&runs, opts, derive_seed(opts.seed, &format!("curve|{}", g.group)))
        })
        .collect();
    for (g, law) in fit.groups.iter_mut().zip(laws) {
        match law {
            Ok(law) => g.curve_law = Some(law),
            Err(why) => g.curve_law_skipped = Some(why.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use codescale_core::{DataSpec, ModelSpec, OptimizerSpec, Schedule, ScheduleSpec, TrialSpec};

    fn config(tokens: f64, schedule: Schedule) -> TrialConfig {
        let spec = TrialSpec {
            data: DataSpec { language: Some("go".into()), seq_len: Some(64), ..Default::default() },
            model: ModelSpec { name: Some("d16-l2".into()), ..Default::default() },
            optimizer: OptimizerSpec {
                batch_size: Some(16),
                lr: Some(codescale_core::Lr::Value(1e-3)),
                ..Default::default()
            },
            schedule: ScheduleSpec {
                tokens: Some(tokens),
                kind: Some(schedule),
                warmup: Some(20.0),
                ..Default::default()
            },
            ..Default::default()
        };
        spec.resolve().expect("a valid config")
    }

    #[test]
    fn areas_of_constant_and_wsd_schedules() {
        let constant = config(1024.0 * 200.0, Schedule::Constant);
        let a = areas(&constant);
        let tps = constant.tokens_per_step() as f64;
        let (s1, s2) = *a.last().unwrap();
        // Warmup's triangle is half its area; the rest runs at the peak; nothing anneals.
        let warm = constant.warmup_steps() as f64;
        assert!((s1 - tps * (200.0 - warm + (warm + 1.0) / 2.0)).abs() < 1e-6 * s1, "{s1}");
        assert_eq!(s2, 0.0);
        let wsd = config(1024.0 * 200.0, Schedule::Wsd);
        let (w1, w2) = *areas(&wsd).last().unwrap();
        assert!(w1 < s1, "a cooldown has less forward area");
        assert!(w2 > 0.0, "and some annealing area");
    }

    #[test]
    fn gradients_match_finite_differences() {
        let q = [0.3, -0.5, 0.4, 0.3, 0.25, -2.0];
        let (x, y, z) = (0.7, -1.3, 0.2);
        let mut g = [0.0; 6];
        Evals::log_predict(&q, x, y, z, &mut g);
        for k in 0..6 {
            let h = 1e-6;
            let (mut hi, mut lo) = (q, q);
            hi[k] += h;
            lo[k] -= h;
            let mut t = [0.0; 6];
            let fd = (Evals::log_predict(&hi, x, y, z, &mut t) - Evals::log_predict(&lo, x, y, z, &mut t)) / (2.0 * h);
            assert!((fd - g[k]).abs() < 1e-6 * (1.0 + fd.abs()), "k={k} fd={fd} g={}", g[k]);
        }
    }

    /// Curves drawn from a known law, with a subset evaluation 2 % off the whole set's, give
    /// back the law, the subset factor, and a target's final loss.
    #[test]
    fn recovers_its_law_from_curves() {
        let truth = [1.2, 40.0, 300.0, 0.35, 0.45, 2e-8];
        let mut trials = vec![];
        for (i, n) in [1e4, 2e4, 4e4, 8e4].into_iter().enumerate() {
            for (j, d) in [2e5, 4e5].into_iter().enumerate() {
                let c = config(d, Schedule::Wsd);
                let a = areas(&c);
                let total = c.total_steps();
                let evals: Vec<(usize, f64)> = (1..=10)
                    .map(|k| k * total / 10)
                    .map(|s| (s, predict(&truth, n, a[s].0, a[s].1) * if s == total { 1.0 } else { 1.0 / 1.02 }))
                    .collect();
                let mut evals = evals;
                evals.insert(9, (total - 1, predict(&truth, n, a[total - 1].0, a[total - 1].1) / 1.02));
                let point = Point {
                    id: format!("t{i}{j}"),
                    group: "g".into(),
                    status: Status::Done,
                    n,
                    d,
                    loss: evals.last().unwrap().1,
                    ..Point::default()
                };
                trials.push(CurveTrial { point, config: c, evals });
            }
        }
        let target_config = config(4e5, Schedule::Wsd);
        let (s1, s2) = *areas(&target_config).last().unwrap();
        let loss = predict(&truth, 6.4e5, s1, s2);
        trials.push(CurveTrial {
            point: Point {
                id: "target".into(),
                group: "g".into(),
                status: Status::Done,
                n: 6.4e5,
                d: 4e5,
                loss,
                target: true,
                ..Point::default()
            },
            config: target_config,
            evals: vec![],
        });
        let opts = FitOptions { bootstrap: 20, ..Default::default() };
        let fit = fit_group(&trials, &opts, 1).expect("fits");
        assert!((fit.subset_scale - 1.02).abs() < 1e-3, "{}", fit.subset_scale);
        assert!((fit.alpha_n.value - 0.35).abs() < 0.01, "{:?}", fit.params);
        assert!(fit.targets[0].error.abs() < 1e-3, "{:?}", fit.targets[0]);
        assert!(fit.out_of_sample.unwrap() < 1e-3);
    }
}
