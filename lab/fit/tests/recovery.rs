//! Synthetic data from known laws: what the fitter must give back.

use codescale_fit::allocation::allocation;
use codescale_fit::approach3::{self, Law};
use codescale_fit::isoflop::{isoflop, IsoPoint};

const CHINCHILLA: Law = Law { e: 1.69337, a: 406.401, b: 410.723, alpha: 0.33917, beta: 0.28491 };
/// Shaped like the seed paper's Go fit: steep exponents, α_D > 1, a low irreducible loss.
const CODE_LIKE: Law = Law { e: 0.414, a: 2.0e4, b: 5.0e9, alpha: 0.845, beta: 1.149 };

/// 7 sizes from 1e5 to 1e8 parameters, each trained at 5 token counts.
fn grid(law: &Law, tokens: impl Fn(f64) -> Vec<f64>) -> Vec<(f64, f64, f64)> {
    let mut pts = vec![];
    for i in 0..7 {
        let n = 1e5 * 10f64.powf(i as f64 * 0.5);
        for d in tokens(n) {
            pts.push((n, d, law.predict(n, d)));
        }
    }
    pts
}

fn assert_close(name: &str, got: f64, want: f64, rel: f64) {
    assert!((got / want - 1.0).abs() <= rel, "{name}: got {got}, want {want} (±{:.1} %)", rel * 100.0);
}

fn assert_recovers(fitted: &Law, truth: &Law) {
    assert_close("E", fitted.e, truth.e, 0.005);
    assert_close("A", fitted.a, truth.a, 0.005);
    assert_close("B", fitted.b, truth.b, 0.005);
    assert_close("alpha", fitted.alpha, truth.alpha, 0.005);
    assert_close("beta", fitted.beta, truth.beta, 0.005);
}

#[test]
fn recovers_chinchilla_noise_free() {
    // Tokens per parameter from 2 to 200, as in a Chinchilla-style sweep.
    let pts = grid(&CHINCHILLA, |n| [2.0, 6.0, 20.0, 60.0, 200.0].iter().map(|k| k * n).collect());
    let fit = approach3::fit(&pts, 1e-3).expect("fit");
    assert!(fit.converged && fit.converged_starts > 0 && fit.starts == 4500);
    assert_recovers(&fit.law, &CHINCHILLA);
    assert!(fit.rmse_log < 1e-6, "rmse {}", fit.rmse_log);
}

#[test]
fn recovers_code_like_law_noise_free() {
    let pts = grid(&CODE_LIKE, |_| vec![1e8, 3e8, 1e9, 3e9, 1e10]);
    let fit = approach3::fit(&pts, 1e-3).expect("fit");
    assert!(fit.converged);
    assert_recovers(&fit.law, &CODE_LIKE);
}

#[test]
fn published_chinchilla_allocation_exponent() {
    let x = allocation(&CHINCHILLA);
    assert!((x.a - 0.46).abs() <= 0.005, "a = {}", x.a);
    assert!((x.b - 0.54).abs() <= 0.005, "b = {}", x.b);
}

#[test]
fn isoflop_agrees_with_approach3() {
    let truth = allocation(&CHINCHILLA);
    let mut iso = vec![];
    for k in 16..=20 {
        let c = 10f64.powi(k);
        // Sizes spaced by √2 around a guess that is 30 % off the true optimum, as a sweep
        // planned from an earlier law would be.
        let guess = 1.3 * truth.g * (c / 6.0).powf(truth.a);
        for j in -4..=4 {
            let n = guess * 2f64.powf(j as f64 / 2.0);
            let d = c / (6.0 * n);
            iso.push(IsoPoint { n, d, loss: CHINCHILLA.predict(n, d), flops: Some(c) });
        }
    }
    let mut notes = vec![];
    let fit2 = isoflop(&iso, 100, 1, 0.95, &mut notes).expect("isoflop");
    assert_eq!(fit2.budgets.len(), 5, "{notes:?}");
    let pts: Vec<(f64, f64, f64)> = iso.iter().map(|p| (p.n, p.d, p.loss)).collect();
    let fit3 = approach3::fit(&pts, 1e-3).expect("approach 3");
    let x3 = allocation(&fit3.law);
    assert!((fit2.a.value - x3.a).abs() < 0.02, "isoflop a {} vs approach 3 a {}", fit2.a.value, x3.a);
    assert!((fit2.b.value - x3.b).abs() < 0.02, "isoflop b {} vs approach 3 b {}", fit2.b.value, x3.b);
    assert!((x3.a - truth.a).abs() < 0.005);
    let (lo, hi) = (fit2.a.lo.unwrap(), fit2.a.hi.unwrap());
    assert!(lo <= fit2.a.value && fit2.a.value <= hi);
}
