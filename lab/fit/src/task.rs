//! From loss to a task metric, the second of two steps (AI2's OLMo ladder, Bhagia et al. 2024:
//! compute → task loss → accuracy): the metric as a sigmoid of the loss,
//!
//!   metric(L) = top · σ(k · (L_mid − L)),
//!
//! rising from 0 (exact match by chance) towards `top` as the loss falls, fitted by least
//! squares to a group's finished trials. A held-out target's metric is then predicted from the
//! loss its law predicts (both steps), and from its measured loss (the second step alone), with
//! 95 % prediction intervals that carry the bootstrap of the sigmoid, the loss's own prediction
//! interval and the metric's residual noise. Where the two-step prediction misses, the
//! second-step prediction says which step failed.

use argmin::core::{CostFunction, Executor};
use argmin::solver::neldermead::NelderMead;
use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::bootstrap::{interval, resample_counts, rng};
use crate::schema::{f64_or_nan, Estimate, TargetCheck};
use crate::{Point, Skipped};

/// The results column the metric comes from.
pub const METRIC: &str = "task_exact_match";

/// Points needed to fit the sigmoid's three parameters with a residual left to measure noise by.
const MIN_POINTS: usize = 5;

/// The sigmoid from loss to metric, with what it predicts for the held-out targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskLaw {
    pub metric: String,
    pub top: Estimate,
    /// Steepness per nat of loss.
    pub k: Estimate,
    /// The loss at which the metric is half of `top`.
    pub l_mid: Estimate,
    pub n_points: usize,
    /// Root mean square residual, in metric units (exact-match rate).
    #[serde(deserialize_with = "f64_or_nan")]
    pub rmse: f64,
    pub targets: Vec<TaskTarget>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTarget {
    pub id: String,
    #[serde(deserialize_with = "f64_or_nan")]
    pub n: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub d: f64,
    /// Both steps: the metric at the loss the law predicts.
    pub predicted: Estimate,
    /// The second step alone: the metric at the loss the target measured.
    pub from_measured_loss: Estimate,
    /// The metric the target measured (the mean of its runs).
    #[serde(deserialize_with = "f64_or_nan")]
    pub measured: f64,
    pub covered: bool,
    /// When not covered, the step that failed: `loss` (the law's prediction of the loss) when
    /// the second step alone covers the measurement, `loss → metric` otherwise.
    pub failed_step: Option<String>,
}

impl TaskLaw {
    pub fn at(&self, loss: f64) -> f64 {
        sigmoid(self.top.value, self.k.value, self.l_mid.value, loss)
    }
}

fn sigmoid(top: f64, k: f64, mid: f64, loss: f64) -> f64 {
    top / (1.0 + (-k * (mid - loss)).exp())
}

/// Fits the metric of `pts` against their loss and predicts it for `targets` (their points,
/// and the law's checks of their loss). `Skipped` when the points cannot pin a sigmoid down.
pub fn fit(
    pts: &[&Point],
    targets: &[&Point],
    checks: &[TargetCheck],
    bootstrap: usize,
    seed: u64,
    confidence: f64,
) -> Result<TaskLaw, Skipped> {
    let data: Vec<(f64, f64)> = pts.iter().filter_map(|p| Some((p.loss, p.task.filter(|m| m.is_finite())?))).collect();
    if data.len() < MIN_POINTS {
        return Err(Skipped(format!("{} trials with a task metric, {MIN_POINTS} needed", data.len())));
    }
    let best = data.iter().map(|d| d.1).fold(0.0, f64::max);
    if best == 0.0 {
        return Err(Skipped("the task metric is 0 at every size: nothing rises to fit a sigmoid to".into()));
    }
    let weights = vec![1.0; data.len()];
    let q = fit_sigmoid(&data, &weights).ok_or_else(|| Skipped("the sigmoid fit did not converge".into()))?;
    let residual = |q: &[f64; 3]| -> f64 {
        let ss: f64 = data.iter().map(|&(l, m)| (m - sigmoid(q[0], q[1], q[2], l)).powi(2)).sum();
        (ss / (data.len() as f64 - 3.0).max(1.0)).sqrt()
    };
    let rmse = residual(&q);
    let samples: Vec<[f64; 3]> = (0..bootstrap)
        .filter_map(|b| fit_sigmoid(&data, &resample_counts(data.len(), &mut rng(seed, b as u64))))
        .collect();
    let estimate = |i: usize| {
        let xs: Vec<f64> = samples.iter().map(|s| s[i]).collect();
        let ci = interval(&xs, confidence);
        Estimate { value: q[i], lo: ci.map(|c| c.0), hi: ci.map(|c| c.1) }
    };
    let law = TaskLaw {
        metric: METRIC.into(),
        top: estimate(0),
        k: estimate(1),
        l_mid: estimate(2),
        n_points: data.len(),
        rmse,
        targets: vec![],
    };
    let mut draws = rng(seed, u64::MAX);
    let noise = Normal::new(0.0, rmse.max(1e-12)).expect("a positive spread");
    // The metric at a loss drawn from `loss` (a point, or a normal matching a 95 % interval),
    // for every bootstrap sigmoid, with residual noise: the prediction interval.
    let mut predict = |loss: &Estimate| -> Estimate {
        let spread = match (loss.lo, loss.hi) {
            (Some(lo), Some(hi)) => (hi - lo) / (2.0 * 1.959_964),
            _ => 0.0,
        };
        let xs: Vec<f64> = samples
            .iter()
            .map(|s| {
                let l = loss.value + spread * draws.sample::<f64, _>(rand_distr::StandardNormal);
                (sigmoid(s[0], s[1], s[2], l) + noise.sample(&mut draws)).clamp(0.0, 1.0)
            })
            .collect();
        let ci = interval(&xs, confidence);
        Estimate { value: law.at(loss.value), lo: ci.map(|c| c.0), hi: ci.map(|c| c.1) }
    };
    let mut out_targets = vec![];
    for check in checks {
        let runs: Vec<f64> = targets
            .iter()
            .filter(|p| p.n == check.n && p.d == check.d)
            .filter_map(|p| p.task.filter(|m| m.is_finite()))
            .collect();
        if runs.is_empty() {
            continue;
        }
        let measured = runs.iter().sum::<f64>() / runs.len() as f64;
        let predicted = predict(&check.predicted);
        let from_measured_loss = predict(&Estimate { value: check.measured, lo: None, hi: None });
        let covered = predicted.covers(measured);
        let failed_step =
            (!covered).then(|| if from_measured_loss.covers(measured) { "loss" } else { "loss → metric" }.to_string());
        out_targets.push(TaskTarget {
            id: check.id.clone(),
            n: check.n,
            d: check.d,
            predicted,
            from_measured_loss,
            measured,
            covered,
            failed_step,
        });
    }
    Ok(TaskLaw { targets: out_targets, ..law })
}

/// Weighted least squares of the sigmoid, from three starting midpoints (the losses' quartiles);
/// `None` when no start converges to finite parameters. Parameters: [top, k, L_mid].
fn fit_sigmoid(data: &[(f64, f64)], weights: &[f64]) -> Option<[f64; 3]> {
    let mut losses: Vec<f64> = data.iter().map(|d| d.0).collect();
    losses.sort_by(f64::total_cmp);
    let spread = (losses[losses.len() - 1] - losses[0]).max(1e-3);
    let best = data.iter().map(|d| d.1).fold(0.0, f64::max).clamp(0.02, 0.9);
    let problem = Sse { data, weights };
    [0.25, 0.5, 0.75]
        .into_iter()
        .filter_map(|q| {
            let mid = losses[((losses.len() - 1) as f64 * q) as usize];
            // Unconstrained: top = σ(u) in (0, 1), k = e^v > 0.
            let start = vec![logit(best * 1.2), (4.0 / spread).ln(), mid];
            let simplex = (0..4)
                .map(|i| {
                    let mut p = start.clone();
                    if i > 0 {
                        p[i - 1] += if i == 3 { 0.2 * spread } else { 0.5 };
                    }
                    p
                })
                .collect();
            let solver = NelderMead::new(simplex).with_sd_tolerance(1e-12).ok()?;
            let res =
                Executor::new(problem.clone(), solver).configure(|s| s.max_iters(2000)).timer(false).run().ok()?;
            let p = res.state.best_param?;
            let cost = res.state.best_cost;
            cost.is_finite().then(|| ([logistic(p[0]), p[1].exp(), p[2]], cost))
        })
        .filter(|(q, _)| q.iter().all(|x| x.is_finite()))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(q, _)| q)
}

fn logistic(u: f64) -> f64 {
    1.0 / (1.0 + (-u).exp())
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

#[derive(Clone)]
struct Sse<'a> {
    data: &'a [(f64, f64)],
    weights: &'a [f64],
}

impl CostFunction for Sse<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, p: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        let (top, k, mid) = (logistic(p[0]), p[1].clamp(-30.0, 30.0).exp(), p[2]);
        Ok(self.data.iter().zip(self.weights).map(|(&(l, m), w)| w * (m - sigmoid(top, k, mid, l)).powi(2)).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(loss: f64, task: f64, target: bool) -> Point {
        Point { id: format!("{loss}"), n: 1e5 / loss, d: 1e6, loss, task: Some(task), target, ..Default::default() }
    }

    /// Metrics drawn around a known sigmoid: the fit finds its midpoint and steepness, and a
    /// target predicted from a good loss prediction is covered.
    #[test]
    fn recovers_a_sigmoid_and_predicts_a_target() {
        let truth = |l: f64| sigmoid(0.8, 5.0, 1.6, l);
        let pts: Vec<Point> = (0..16)
            .map(|i| {
                let l = 1.1 + 0.08 * i as f64;
                point(l, (truth(l) + 0.01 * ((i * 7 % 5) as f64 - 2.0) / 2.0).max(0.0), false)
            })
            .collect();
        let target = point(1.0, truth(1.0), true);
        let check = TargetCheck {
            id: target.id.clone(),
            n: target.n,
            d: target.d,
            compute_ratio: 4.0,
            measured: 1.0,
            runs: 1,
            predicted: Estimate { value: 1.01, lo: Some(0.98), hi: Some(1.04) },
            error: -0.01,
            covered: true,
            form_spread: None,
        };
        let refs: Vec<&Point> = pts.iter().collect();
        let law = fit(&refs, &[&target], &[check], 200, 1, 0.95).unwrap();
        assert!((law.l_mid.value - 1.6).abs() < 0.05, "L_mid {}", law.l_mid.value);
        assert!((law.k.value - 5.0).abs() < 1.0, "k {}", law.k.value);
        assert!((law.top.value - 0.8).abs() < 0.05, "top {}", law.top.value);
        let t = &law.targets[0];
        assert!(t.covered && t.failed_step.is_none(), "{t:?}");
        assert!((t.measured - truth(1.0)).abs() < 1e-12);
    }

    #[test]
    fn a_flat_zero_metric_is_skipped_with_its_reason() {
        let pts: Vec<Point> = (0..8).map(|i| point(1.0 + 0.1 * i as f64, 0.0, false)).collect();
        let refs: Vec<&Point> = pts.iter().collect();
        let e = fit(&refs, &[], &[], 50, 1, 0.95).unwrap_err();
        assert!(e.0.contains("0 at every size"), "{e}");
        assert!(fit(&refs[..3], &[], &[], 50, 1, 0.95).unwrap_err().0.contains("3 trials"));
    }
}
