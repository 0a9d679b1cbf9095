//! Prediction intervals for held-out targets, on data drawn from a known law with noise: the
//! 95 % interval must cover a new measurement at the target about 95 % of the time.

use codescale_core::Status;
use codescale_fit::approach3::Law;
use codescale_fit::{fit_points, FitOptions, Point};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TRUE: Law = Law { e: 1.1, a: 60.0, b: 120.0, alpha: 0.35, beta: 0.32 };

/// Multiplicative noise with standard deviation `sd` in log space (Box–Muller).
fn noise(rng: &mut ChaCha8Rng, sd: f64) -> f64 {
    let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
    (sd * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()).exp()
}

/// A 4 × 4 ladder with two seeds per point, and a target at 4× the largest N and the largest D.
fn sweep(seed: u64) -> Vec<Point> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pts = vec![];
    for (i, n) in [1e4, 3e4, 1e5, 3e5].into_iter().enumerate() {
        for (j, d) in [1e5, 3e5, 1e6, 3e6].into_iter().enumerate() {
            for s in 0..2 {
                pts.push(Point {
                    id: format!("{i}-{j}-{s}"),
                    group: "g".into(),
                    status: Status::Done,
                    n,
                    d,
                    loss: TRUE.predict(n, d) * noise(&mut rng, 0.006),
                    config: Some(format!("{i}-{j}")),
                    ..Default::default()
                });
            }
        }
    }
    let (n, d) = (1.2e6, 3e6);
    pts.push(Point {
        id: "target".into(),
        group: "g".into(),
        status: Status::Done,
        n,
        d,
        loss: TRUE.predict(n, d) * noise(&mut rng, 0.006),
        target: true,
        ..Default::default()
    });
    pts
}

#[test]
fn the_prediction_interval_covers_held_out_targets_about_95_percent_of_the_time() {
    let replicates = 80;
    // The extrapolation checks refit from the whole grid; they are not what is tested here.
    let opts = FitOptions { bootstrap: 300, checks: false, ..Default::default() };
    let mut covered = 0;
    let mut errors = vec![];
    for seed in 0..replicates {
        let fit = fit_points("synthetic", "test", &sweep(seed), &opts);
        let g = &fit.groups[0];
        assert_eq!(g.n_points, 32, "the target is never fitted");
        let t = &g.targets[0];
        assert_eq!(t.id, "target");
        covered += t.covered as usize;
        errors.push(t.error.abs());
    }
    let rate = covered as f64 / replicates as f64;
    errors.sort_by(f64::total_cmp);
    eprintln!("coverage {rate:.3}, median |error| {:.3} %", 100.0 * errors[errors.len() / 2]);
    assert!(
        (0.90..=0.98).contains(&rate),
        "coverage {rate:.2} (median |error| {:.3} %)",
        100.0 * errors[errors.len() / 2]
    );
}

#[test]
fn a_targets_seeds_are_checked_once_on_their_mean() {
    let mut pts: Vec<Point> = sweep(0).into_iter().filter(|p| !p.target).collect();
    for (id, loss) in [("t0", 1.60), ("t1", 1.64)] {
        pts.push(Point {
            id: id.into(),
            group: "g".into(),
            status: Status::Done,
            n: 1.2e6,
            d: 3e6,
            loss,
            target: true,
            config: Some("t".into()),
            ..Default::default()
        });
    }
    let opts = FitOptions { bootstrap: 50, checks: false, ..Default::default() };
    let fit = fit_points("synthetic", "test", &pts, &opts);
    let t = &fit.groups[0].targets;
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!((t[0].id.as_str(), t[0].runs), ("t0", 2));
    assert!(
        (t[0].measured - 1.62).abs() < 1e-12 && (t[0].error - (1.62 / t[0].predicted.value - 1.0)).abs() < 1e-12,
        "{:?}",
        t[0]
    );
}
