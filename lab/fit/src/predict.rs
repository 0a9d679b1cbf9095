//! "What loss will N parameters on D tokens reach?": a law's prediction with a 95 % prediction
//! interval, whatever its form, for held-out targets and for `codescale predict`.

use crate::{BadQuestion, Skipped};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::bootstrap::{derive_seed, estimate, rng};
use crate::forms::Form;
use crate::schema::{Estimate, FitFile, GroupFit};

/// The prediction interval for a new measurement at (N, D): each bootstrap law's prediction
/// times the exponential of a log residual drawn from the fit's (inflated by √(K/(K − p)) for the
/// p fitted parameters), as AI2's OLMo ladder does.
pub fn interval(
    value: f64,
    sample_predictions: &[f64],
    residuals: &[f64],
    params: usize,
    confidence: f64,
    seed: u64,
) -> Estimate {
    let k = residuals.len() as f64;
    let inflation = if k > params as f64 { (k / (k - params as f64)).sqrt() } else { 1.0 };
    let samples: Vec<f64> = sample_predictions
        .iter()
        .enumerate()
        .map(|(i, pred)| {
            let mut rng = rng(seed, i as u64);
            let noise =
                if residuals.is_empty() { 0.0 } else { residuals[rng.random_range(0..residuals.len())] * inflation };
            pred * noise.exp()
        })
        .collect();
    estimate(value, &samples, confidence)
}

/// One answer of `codescale predict`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub group: String,
    pub law: Form,
    pub n: f64,
    pub d: f64,
    pub loss: f64,
    /// 95 % prediction interval (a new run's loss, not only the law's).
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    /// (N, D) lies outside the fitted sizes or budgets: the answer is an extrapolation.
    pub extrapolated: bool,
    /// 6·N·D over the largest fitted trial's compute.
    pub compute_ratio: f64,
    /// Beyond the fit's trust range: more than `trust_factor` × the largest fitted compute.
    pub beyond_trust: bool,
    /// Bootstrap laws the interval is drawn from (those stored in the fit file).
    pub samples: usize,
    /// What the choice of form does here: the range of the law's and its tied candidates'
    /// predictions, where two forms or more are tied ([`crate::select::form_spread`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_spread: Option<crate::select::FormSpread>,
}

/// The prediction of one group's law at (N, D), or why there is none.
pub fn predict_group(g: &GroupFit, n: f64, d: f64, confidence: f64, trust_factor: f64) -> Result<Prediction, Skipped> {
    let law = g
        .law
        .as_ref()
        .ok_or_else(|| Skipped(format!("group `{}` has no law: {}", g.group, g.message.clone().unwrap_or_default())))?;
    let params = law.form_params();
    let loss = law.form.predict(&params, n, d);
    let preds: Vec<f64> =
        law.form_samples().iter().map(|p| law.form.predict(p, n, d)).filter(|x| x.is_finite()).collect();
    let est = interval(
        loss,
        &preds,
        &g.log_residuals(),
        law.form.n_params(),
        confidence,
        derive_seed(0, &format!("{}|{n}|{d}", g.group)),
    );
    let range = |f: fn(&crate::schema::FitPoint) -> f64| {
        let v: Vec<f64> = g.points.iter().map(f).collect();
        (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(f64::NEG_INFINITY, f64::max))
    };
    let ((n_lo, n_hi), (d_lo, d_hi)) = (range(|p| p.n), range(|p| p.d));
    // A little slack: a point at the edge of the ladder, written with rounding, is inside it.
    let outside = |x: f64, lo: f64, hi: f64| x < lo * (1.0 - 1e-9) || x > hi * (1.0 + 1e-9);
    let compute_ratio = 6.0 * n * d / g.max_flops;
    Ok(Prediction {
        group: g.group.clone(),
        law: law.form,
        n,
        d,
        loss,
        lo: est.lo,
        hi: est.hi,
        extrapolated: outside(n, n_lo, n_hi) || outside(d, d_lo, d_hi),
        compute_ratio,
        beyond_trust: compute_ratio > trust_factor,
        samples: preds.len(),
        form_spread: crate::select::form_spread(&g.candidates, n, d, loss),
    })
}

/// Predictions of every group of `fit` with a law (or only `group`). `Err` names what is wrong
/// with the question: N or D not a positive finite number, or no such group.
pub fn predict(
    fit: &FitFile,
    n: f64,
    d: f64,
    group: Option<&str>,
    trust_factor: f64,
) -> Result<Vec<Result<Prediction, Skipped>>, BadQuestion> {
    for (name, x) in [("--n", n), ("--d", d)] {
        if !(x.is_finite() && x > 0.0) {
            return Err(BadQuestion(format!("{name} {x}: must be a positive finite number")));
        }
    }
    let groups: Vec<&GroupFit> = match group {
        Some(name) => {
            let g = fit.groups.iter().find(|g| g.group == name).ok_or_else(|| {
                BadQuestion(format!(
                    "no group `{name}` in the fit (groups: {})",
                    fit.groups.iter().map(|g| g.group.as_str()).collect::<Vec<_>>().join(", ")
                ))
            })?;
            vec![g]
        }
        None => fit.groups.iter().collect(),
    };
    Ok(groups.into_iter().map(|g| predict_group(g, n, d, 0.95, trust_factor)).collect())
}

/// Predictions as a table for the terminal.
pub fn render(preds: &[Result<Prediction, Skipped>]) -> String {
    let mut out = String::new();
    for p in preds {
        match p {
            Ok(p) => {
                let interval = match (p.lo, p.hi) {
                    (Some(lo), Some(hi)) => format!(" [{lo:.4}, {hi:.4}]"),
                    _ => " (no interval: the fit has no bootstrap laws)".into(),
                };
                let mark = match (p.extrapolated, p.beyond_trust) {
                    (_, true) => format!(
                        "  EXTRAPOLATED: {}× the largest fitted compute, beyond the trust range",
                        crate::table::num(p.compute_ratio)
                    ),
                    (true, false) => format!(
                        "  extrapolated: outside the fitted sizes or budgets ({}× the largest fitted compute)",
                        crate::table::num(p.compute_ratio)
                    ),
                    _ => String::new(),
                };
                out.push_str(&format!(
                    "{}: loss {:.4}{interval} (95 % prediction interval; law {}){mark}\n",
                    p.group,
                    p.loss,
                    p.law.name()
                ));
                if let Some(spread) = &p.form_spread {
                    out.push_str(&format!("  {}\n", spread.describe()));
                }
            }
            Err(why) => out.push_str(&format!("{why}\n")),
        }
    }
    out
}
