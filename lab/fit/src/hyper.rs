//! Hyperparameter laws (DeepSeek LLM §3.1): per compute budget the best and near-best (learning
//! rate, batch size) configurations, then η_opt(C) = k·C^p and B_opt(C) = k·C^q by log-log least
//! squares through the near-best configurations of every budget.

use crate::bootstrap::{estimate, resample_strata, rng};
use crate::distinct;
use crate::isoflop::{bins, budgets_of, geomean, line};
use crate::schema::{HyperBudget, HyperLaws, HyperPoint, PowerLaw};

/// Near-best: loss within this fraction of the budget's best loss.
pub const NEAR_BEST: f64 = 0.0025;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HyperInput {
    pub n: f64,
    pub d: f64,
    pub flops: Option<f64>,
    pub lr: f64,
    pub batch_tokens: f64,
    /// 0 when the trial did not record it.
    pub warmup_steps: f64,
    pub loss: f64,
}

/// Whether some (N, D) of the bin was trained at two or more values of the hyperparameter. Only
/// then was it swept: a ladder whose rate follows a rule of N has a different rate at each size
/// of a compute bin, but those rates come with the sizes, and the best of them says nothing about
/// the best rate at that compute.
fn varied_within_a_run_shape(points: &[HyperInput], bin: &[usize], value: fn(&HyperInput) -> f64) -> bool {
    bin.iter().any(|&i| {
        let (n, d) = (points[i].n, points[i].d);
        distinct(bin.iter().map(|&j| &points[j]).filter(|p| p.n == n && p.d == d).map(value)).len() >= 2
    })
}

/// k·C^p through (C, value) pairs, with percentile intervals from resampling within budgets.
fn power_law(
    budgets: &[HyperBudget],
    value: fn(&HyperPoint) -> f64,
    resamples: usize,
    seed: u64,
    confidence: f64,
) -> Option<PowerLaw> {
    let fit = |sets: &[Vec<HyperPoint>]| {
        let (mut x, mut y) = (vec![], vec![]);
        for (b, set) in budgets.iter().zip(sets) {
            for p in set {
                x.push(b.flops.ln());
                y.push(value(p).ln());
            }
        }
        line(&x, &y).map(|(c, s)| (c.exp(), s))
    };
    let sets: Vec<Vec<HyperPoint>> = budgets.iter().map(|b| b.near_best.clone()).collect();
    let (k, p) = fit(&sets)?;
    let strata: Vec<Vec<usize>> = sets.iter().map(|s| (0..s.len()).collect()).collect();
    let (mut sk, mut sp) = (vec![], vec![]);
    for r in 0..resamples {
        let drawn = resample_strata(&strata, &mut rng(seed, r as u64));
        let resampled: Vec<Vec<HyperPoint>> =
            drawn.iter().zip(&sets).map(|(idx, s)| idx.iter().map(|&i| s[i]).collect()).collect();
        if let Some((k, p)) = fit(&resampled) {
            sk.push(k);
            sp.push(p);
        }
    }
    Some(PowerLaw { k: estimate(k, &sk, confidence), p: estimate(p, &sp, confidence) })
}

/// `None` when no budget compares two or more configurations. A law needs two budgets that each
/// vary that hyperparameter; notes say why a law is missing.
pub fn hyper_laws(
    points: &[HyperInput],
    resamples: usize,
    seed: u64,
    confidence: f64,
    notes: &mut Vec<String>,
) -> Option<HyperLaws> {
    if points.is_empty() {
        return None;
    }
    let flops: Vec<Option<f64>> = points.iter().map(|p| p.flops).collect();
    let n: Vec<f64> = points.iter().map(|p| p.n).collect();
    let d: Vec<f64> = points.iter().map(|p| p.d).collect();
    let (c, factor) = budgets_of(&flops, &n, &d);
    let mut budgets = vec![];
    let (mut lr_swept, mut batch_swept) = (vec![], vec![]);
    for b in bins(&c, factor) {
        let all: Vec<HyperPoint> = b
            .iter()
            .map(|&i| {
                let p = &points[i];
                HyperPoint { lr: p.lr, batch_tokens: p.batch_tokens, warmup_steps: p.warmup_steps, loss: p.loss }
            })
            .collect();
        let (lr_varied, batch_varied) = (
            varied_within_a_run_shape(points, &b, |p| p.lr),
            varied_within_a_run_shape(points, &b, |p| p.batch_tokens),
        );
        if !lr_varied && !batch_varied {
            continue;
        }
        let best = *all.iter().min_by(|x, y| x.loss.total_cmp(&y.loss)).expect("bins are never empty");
        let near_best: Vec<HyperPoint> =
            all.iter().copied().filter(|p| p.loss <= best.loss * (1.0 + NEAR_BEST)).collect();
        let flops = geomean(b.iter().map(|&i| c[i]));
        lr_swept.push(lr_varied);
        batch_swept.push(batch_varied);
        budgets.push(HyperBudget { flops, best, near_best, all });
    }
    if budgets.is_empty() {
        return None;
    }
    let law = |swept: &[bool], value: fn(&HyperPoint) -> f64, what: &str, seed: u64, notes: &mut Vec<String>| {
        let used: Vec<HyperBudget> = budgets.iter().zip(swept).filter(|(_, &s)| s).map(|(b, _)| b.clone()).collect();
        if used.len() < 2 {
            notes.push(format!("hyper: {what} varied at {} budget(s), 2 needed for a law", used.len()));
            return None;
        }
        if used.iter().all(|b| b.near_best.len() == 1) {
            notes.push(format!(
                "hyper: a single near-best configuration per budget, so the {what} law has a zero-width interval"
            ));
        }
        power_law(&used, value, resamples, seed, confidence)
    };
    let lr_law = law(&lr_swept, |p| p.lr, "learning rate", seed, notes);
    let batch_law = law(&batch_swept, |p| p.batch_tokens, "batch size", seed ^ 0x9e37_79b9_7f4a_7c15, notes);
    Some(HyperLaws { budgets, lr_law, batch_law })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sweep whose loss bowl in (ln η, ln B) is centred on DeepSeek's laws must give them back.
    #[test]
    fn recovers_deepseek_laws() {
        let mut pts = vec![];
        for c in [1e17, 1e18, 1e19, 1e20] {
            let (lr_opt, b_opt) = (0.3118 * f64::powf(c, -0.125), 0.2920 * f64::powf(c, 0.3271));
            for i in -3..=3 {
                for j in -3..=3 {
                    let (lr, b) = (lr_opt * 2f64.powf(i as f64 / 2.0), b_opt * 2f64.powf(j as f64 / 2.0));
                    let loss = 2.0 + 0.02 * (lr / lr_opt).ln().powi(2) + 0.01 * (b / b_opt).ln().powi(2);
                    let n = (c / 6.0).sqrt();
                    pts.push(HyperInput {
                        n,
                        d: c / (6.0 * n),
                        flops: Some(c),
                        lr,
                        batch_tokens: b,
                        warmup_steps: 100.0,
                        loss,
                    });
                }
            }
        }
        let mut notes = vec![];
        let h = hyper_laws(&pts, 200, 1, 0.95, &mut notes).unwrap();
        assert_eq!(h.budgets.len(), 4);
        assert!(h.budgets.iter().all(|b| b.all.len() == 49 && b.near_best.contains(&b.best)));
        let lr = h.lr_law.unwrap();
        let bt = h.batch_law.unwrap();
        assert!((lr.p.value + 0.125).abs() < 1e-9 && (lr.k.value / 0.3118 - 1.0).abs() < 1e-6, "{lr:?}");
        assert!((bt.p.value - 0.3271).abs() < 1e-9 && (bt.k.value / 0.2920 - 1.0).abs() < 1e-6, "{bt:?}");
    }

    #[test]
    fn no_sweep_no_law() {
        let pts: Vec<HyperInput> = (0..5)
            .map(|i| {
                let n = 1e6 * (i + 1) as f64;
                HyperInput {
                    n,
                    d: 20.0 * n,
                    flops: None,
                    lr: 1e-3,
                    batch_tokens: 65536.0,
                    warmup_steps: 0.0,
                    loss: 3.0 - 0.1 * i as f64,
                }
            })
            .collect();
        assert!(hyper_laws(&pts, 10, 1, 0.95, &mut vec![]).is_none());
    }

    /// A ladder whose rate follows a rule of N: several sizes share each compute bin, each at its
    /// own rate, yet no rate was swept, so there is no law to print.
    #[test]
    fn rates_set_by_a_size_rule_are_not_a_sweep() {
        let mut pts = vec![];
        for n in [1e4, 2e4, 4e4, 8e4] {
            for d in [2.5e5, 5e5, 1e6] {
                pts.push(HyperInput {
                    n,
                    d,
                    flops: Some(6.0 * n * d),
                    lr: 1e-2 * (n / 1e4).powf(-0.3),
                    batch_tokens: 1024.0,
                    warmup_steps: 50.0,
                    loss: 1.0 + 50.0 / n.powf(0.3) + 100.0 / d.powf(0.3),
                });
            }
        }
        let mut notes = vec![];
        assert!(hyper_laws(&pts, 10, 1, 0.95, &mut notes).is_none(), "{notes:?}");
    }
}
