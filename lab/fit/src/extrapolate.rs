//! Extrapolation check: refit without the largest model size(s) and predict them.

use crate::approach3::{chinchilla_grid, fit_grid, Data};
use crate::forms::{self, Form};
use crate::schema::{Extrapolation, FitPoint};
use crate::Skipped;

type Triple = (f64, f64, f64);

/// Sizes held out: the largest one, or the two largest once there are eight or more sizes, so
/// that the refit keeps most of the range it has to extrapolate from.
pub fn held_out_sizes(sizes: usize) -> usize {
    if sizes >= 8 {
        2
    } else {
        1
    }
}

/// `points` are (N, D, loss). `Err` says why the check could not run. The refit uses the same
/// grid as the main fit: warm-starting it from the full-data optimum would leak the held-out
/// points into the check.
pub fn extrapolate(points: &[(f64, f64, f64)], form: Form, delta: f64) -> Result<Extrapolation, Skipped> {
    let sizes = sizes(points);
    let k = held_out_sizes(sizes.len());
    if sizes.len() < k + 2 {
        return Err(Skipped(format!(
            "{} model size(s); the check needs {} so that 2 remain after holding out {k}",
            sizes.len(),
            k + 2
        )));
    }
    refit_on_smallest(points, sizes.len() - k, form, delta)
}

/// The rolling check: for every k from 2 to one less than the number of sizes, the law fitted
/// on the k smallest sizes predicting all larger ones (each k that has enough points).
pub fn rolling(points: &[(f64, f64, f64)], form: Form, delta: f64) -> Vec<Extrapolation> {
    let count = sizes(points).len();
    (2..count).filter_map(|k| refit_on_smallest(points, k, form, delta).ok()).collect()
}

fn sizes(points: &[Triple]) -> Vec<f64> {
    crate::distinct(points.iter().map(|p| p.0))
}

/// Fits the points of the `keep` smallest sizes and predicts the others.
pub fn refit_on_smallest(points: &[Triple], keep: usize, form: Form, delta: f64) -> Result<Extrapolation, Skipped> {
    let sizes = sizes(points);
    let held_out_n: Vec<f64> = sizes[keep.min(sizes.len())..].to_vec();
    let (test, train): (Vec<Triple>, Vec<Triple>) = points.iter().copied().partition(|p| held_out_n.contains(&p.0));
    let mut train_d: Vec<f64> = train.iter().map(|p| p.1).collect();
    train_d.sort_by(f64::total_cmp);
    train_d.dedup();
    let need = form.n_params().max(5);
    if train.len() < need || train_d.len() < 2 || test.is_empty() {
        return Err(Skipped(format!(
            "{} points and {} distinct D remain after holding out the largest size(s); {need} and 2 needed",
            train.len(),
            train_d.len()
        )));
    }
    let predict: Box<dyn Fn(f64, f64) -> f64> = if form == Form::Chinchilla {
        let fit = fit_grid(&Data::new(&train), delta, &chinchilla_grid())
            .ok_or_else(|| Skipped("the refit failed from every start".into()))?;
        Box::new(move |n, d| fit.law.predict(n, d))
    } else {
        let fit = forms::fit(&forms::Points::new(&train), form, delta)
            .ok_or_else(|| Skipped("the refit failed from every start".into()))?;
        Box::new(move |n, d| form.predict(&fit.params, n, d))
    };
    let points: Vec<FitPoint> =
        test.iter().map(|&(n, d, loss)| FitPoint { n, d, loss, predicted: Some(predict(n, d)) }).collect();
    let errs: Vec<f64> = points.iter().map(|p| (p.predicted.unwrap_or(f64::NAN) / p.loss - 1.0).abs()).collect();
    if errs.iter().any(|e| !e.is_finite()) {
        return Err(Skipped("the refitted law's prediction at the held-out sizes is not a finite number".into()));
    }
    Ok(Extrapolation {
        held_out_n,
        mean_abs_rel_error: errs.iter().sum::<f64>() / errs.len() as f64,
        max_abs_rel_error: errs.iter().copied().fold(0.0, f64::max),
        points,
    })
}
