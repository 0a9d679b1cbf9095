//! `fit_points` end to end: groups, pooled fit, exclusions, degenerate inputs, JSON, table.

use codescale_core::Status;
use codescale_fit::approach3::Law;
use codescale_fit::{fit_points, fit_points_at, render_table, FitFile, FitOptions, Point};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn point(id: usize, group: &str, n: f64, d: f64, loss: f64) -> Point {
    Point {
        id: format!("t{id:03}"),
        group: group.into(),
        status: Status::Done,
        n,
        d,
        loss,
        flops: None,
        lr: None,
        batch_tokens: None,
        warmup_steps: None,
        ..Default::default()
    }
}

/// A 6 × 5 (N, D) sweep from `law` with multiplicative noise of relative size `noise`.
fn sweep(group: &str, law: &Law, noise: f64, seed: u64) -> Vec<Point> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pts = vec![];
    for i in 0..6 {
        let n = 1e5 * 10f64.powf(i as f64 * 0.6);
        for k in [2.0, 5.0, 20.0, 50.0, 200.0] {
            let loss = law.predict(n, k * n) * (1.0 + noise * (rng.random::<f64>() - 0.5) * 2.0);
            pts.push(point(pts.len(), group, n, k * n, loss));
        }
    }
    pts
}

fn opts(bootstrap: usize) -> FitOptions {
    FitOptions { bootstrap, seed: 3, ..FitOptions::default() }
}

const PY: Law = Law { e: 0.566, a: 60.0, b: 900.0, alpha: 0.30, beta: 0.36 };
const GO: Law = Law { e: 0.414, a: 300.0, b: 2000.0, alpha: 0.40, beta: 0.42 };

#[test]
fn groups_pooled_exclusions_json_and_table() {
    let mut pts = sweep("python", &PY, 0.005, 1);
    pts.extend(sweep("go", &GO, 0.005, 2));
    let k = pts.len();
    pts.push(Point { status: Status::Failed, ..point(k, "go", 1e6, 1e8, 3.0) });
    pts.push(point(k + 1, "go", 1e6, 1e8, f64::NAN));
    pts.push(point(k + 2, "python", 1e6, 0.0, 3.0));
    // Chinchilla's fit as such (its 4500-start grid, its closed-form allocation), pooled.
    let chinchilla = FitOptions {
        pool: true,
        law: codescale_fit::select::LawChoice::Fixed(codescale_fit::forms::Form::Chinchilla),
        ..opts(40)
    };
    let fit = fit_points_at("demo", "results.parquet", &pts, &chinchilla, "2026-01-01T00:00:00Z");

    let names: Vec<&str> = fit.groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(names, ["go", "python", "pooled"]);
    assert_eq!(fit.excluded.len(), 3);
    assert!(fit.excluded.iter().any(|e| e.reason.contains("failed")));
    assert!(fit.excluded.iter().any(|e| e.reason == "loss is NaN"));
    assert!(fit.excluded.iter().any(|e| e.group == "python" && e.reason.contains("D = 0")));

    for (g, truth) in [(&fit.groups[0], GO), (&fit.groups[1], PY)] {
        assert_eq!(g.n_points, 30);
        assert!(g.message.is_none(), "{:?}", g.message);
        let law = g.law.as_ref().expect("law");
        assert!((law.alpha.value / truth.alpha - 1.0).abs() < 0.1, "{}: α {}", g.group, law.alpha.value);
        assert!((law.l_inf.value / truth.e - 1.0).abs() < 0.1, "{}: E {}", g.group, law.e.value);
        assert_eq!(law.starts, 4500);
        assert_eq!(law.bootstrap_resamples, 40);
        for e in [law.e, law.a, law.b, law.alpha, law.beta, law.n_c, law.d_c] {
            let (lo, hi) = (e.lo.unwrap(), e.hi.unwrap());
            assert!(lo <= hi && lo.is_finite() && hi.is_finite());
        }
        assert_eq!(law.alpha_n, law.alpha);
        assert!((law.n_c.value - law.a.value.powf(1.0 / law.alpha.value)).abs() <= 1e-9 * law.n_c.value);
        let alloc = g.allocation.as_ref().unwrap();
        assert_eq!(alloc.budgets.len(), 10);
        assert!((alloc.a.value - truth.beta / (truth.alpha + truth.beta)).abs() < 0.05);
        assert!(g.points.iter().all(|p| p.predicted.is_some()));
        let x = g.extrapolation.as_ref().expect("extrapolation");
        assert_eq!(x.held_out_n.len(), 1);
        assert!(x.max_abs_rel_error < 0.05, "{x:?}");
    }
    assert_eq!(fit.groups[2].n_points, 60);
    assert!(fit.groups[2].law.is_some());

    let json = serde_json::to_string(&fit).unwrap();
    // serde_json's default float parser may be off in the last bit: compare within 1e-14.
    let back: FitFile = serde_json::from_str(&json).unwrap();
    assert!(
        same_json(&serde_json::to_value(&back).unwrap(), &serde_json::to_value(&fit).unwrap()),
        "JSON does not round-trip"
    );

    let table = render_table(&fit);
    for needle in ["python", "go", "pooled", "α_N", "L_inf", "excluded (3)", "loss is NaN", "extrapolation to N"] {
        assert!(table.contains(needle), "table lacks {needle:?}:\n{table}");
    }
}

fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 1e-14 * x.abs().max(y.abs())
        }
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (Object(x), Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn same_seed_same_file() {
    let pts = sweep("python", &PY, 0.01, 5);
    let a = fit_points_at("x", "s", &pts, &opts(20), "t");
    let b = fit_points_at("x", "s", &pts, &FitOptions { threads: Some(1), ..opts(20) }, "t");
    assert_eq!(a, b);
}

#[test]
fn too_few_points_gives_a_message() {
    let pts: Vec<Point> = sweep("go", &GO, 0.0, 1).into_iter().step_by(10).collect();
    assert_eq!(pts.len(), 3);
    let fit = fit_points("x", "s", &pts, &opts(10));
    assert_eq!(fit.groups.len(), 1);
    let g = &fit.groups[0];
    assert_eq!(g.message.as_deref(), Some("go: 3 points, 5 needed"));
    assert!(g.law.is_none() && g.allocation.is_none() && g.extrapolation.is_none());
    assert!(render_table(&fit).contains("go: 3 points, 5 needed"));
    assert_eq!(fit.created.len(), "2026-01-01T00:00:00Z".len());
}

#[test]
fn nan_losses_are_excluded_and_counted() {
    let mut pts = sweep("go", &GO, 0.0, 1);
    for p in pts.iter_mut().take(27) {
        p.loss = f64::NAN;
    }
    let fit = fit_points("x", "s", &pts, &opts(10));
    assert_eq!(fit.excluded.len(), 27);
    assert_eq!(fit.groups[0].message.as_deref(), Some("go: 3 points, 5 needed"));
}

#[test]
fn single_model_size_or_data_size() {
    let pts: Vec<Point> = (0..6).map(|i| point(i, "rust", 1e7, 1e8 * (i + 1) as f64, 3.0 - 0.1 * i as f64)).collect();
    // One size on six budgets: only the D-only form can be identified, and it is the one fitted.
    let fit = fit_points("x", "s", &pts, &opts(10));
    let law = fit.groups[0].law.as_ref().expect("a D-only law");
    assert_eq!(law.form, codescale_fit::forms::Form::Data);
    assert!(law.alpha_n.value.is_nan() && law.alpha_d.value > 0.0);
    let pts: Vec<Point> = (0..2).map(|i| point(i, "rust", 1e7, 1e8 * (i + 1) as f64, 3.0 - 0.1 * i as f64)).collect();
    let fit = fit_points("x", "s", &pts, &opts(10));
    assert!(fit.groups[0].law.is_none(), "two points identify no form");

    let pts: Vec<Point> = (0..6).map(|i| point(i, "rust", 1e6 * (i + 1) as f64, 1e9, 3.0 - 0.1 * i as f64)).collect();
    let fit = fit_points("x", "s", &pts, &opts(10));
    assert!(fit.groups[0].message.as_deref().unwrap().starts_with("rust: a single data size"));
}

#[test]
fn empty_and_all_excluded_inputs() {
    let fit = fit_points("x", "s", &[], &opts(10));
    assert!(fit.groups.is_empty() && fit.excluded.is_empty());
    let pts = vec![Point { status: Status::Running, ..point(0, "c#", 1e6, 1e8, 3.0) }];
    let fit = fit_points("x", "s", &pts, &opts(10));
    assert_eq!(fit.groups[0].message.as_deref(), Some("c#: 0 points, 5 needed"));
    assert_eq!(fit.excluded.len(), 1);
    let _ = render_table(&fit);
}

#[test]
fn collinear_n_and_d_is_flagged() {
    // D = 20·N at every size: the two power terms cannot be told apart.
    let pts: Vec<Point> = (0..8)
        .map(|i| {
            let n = 1e5 * 3f64.powi(i);
            point(i as usize, "ts", n, 20.0 * n, GO.predict(n, 20.0 * n))
        })
        .collect();
    let fit = fit_points("x", "s", &pts, &opts(20));
    let g = &fit.groups[0];
    assert!(g.law.is_some());
    assert!(g.warnings.iter().any(|w| w.contains("confounded")), "{:?}", g.warnings);
    assert!(g.warnings.iter().any(|w| w.contains("single D")), "{:?}", g.warnings);
}

#[test]
fn isoflop_and_hyper_sweeps_through_fit_points() {
    let mut pts = vec![];
    for c in [1e15, 1e16, 1e17] {
        let (lr_opt, b_opt) = (0.3118 * f64::powf(c, -0.125), 0.2920 * f64::powf(c, 0.3271));
        for j in -3..=3 {
            let n = 0.1 * (c / 6.0).sqrt() * 2f64.powf(j as f64 / 2.0);
            let base = GO.predict(n, c / (6.0 * n));
            for (lr_f, b_f) in [(1.0, 1.0), (2.0, 1.0), (0.5, 1.0), (1.0, 2.0), (1.0, 0.5)] {
                let loss = base * (1.0 + 0.01 * f64::ln(lr_f).powi(2) + 0.005 * f64::ln(b_f).powi(2));
                let mut p = point(pts.len(), "java", n, c / (6.0 * n), loss);
                (p.flops, p.lr, p.batch_tokens, p.warmup_steps) =
                    (Some(c), Some(lr_opt * lr_f), Some(b_opt * b_f), Some(100.0));
                pts.push(p);
            }
        }
    }
    let fit = fit_points("x", "s", &pts, &opts(30));
    let g = &fit.groups[0];
    let iso = g.isoflop.as_ref().expect("isoflop");
    assert_eq!(iso.budgets.len(), 3);
    let h = g.hyper.as_ref().expect("hyper");
    assert_eq!(h.budgets.len(), 3);
    let lr = h.lr_law.as_ref().unwrap();
    assert!((lr.p.value + 0.125).abs() < 1e-6, "{lr:?}");
    assert!((h.batch_law.as_ref().unwrap().p.value - 0.3271).abs() < 1e-6);
    let table = render_table(&fit);
    assert!(table.contains("IsoFLOP over 3 budgets") && table.contains("η_opt(C)"), "{table}");
}

/// A sweep that trains three learning rates at every (N, D), one of them (not always the same)
/// on the law and the others worse, with two seeds each: the law is the best configuration's,
/// every replicate of it kept, and the rest are left to the hyperparameter laws.
#[test]
fn law_is_fitted_at_the_best_configuration_of_each_size_and_budget() {
    let mut pts = vec![];
    for (cell, p) in sweep("python", &PY, 0.0, 1).into_iter().enumerate() {
        let best = cell % 3;
        for (i, lr) in [1e-3, 3e-3, 1e-2].into_iter().enumerate() {
            let worse = 1.0 + 0.04 * ((i + 3 - best) % 3) as f64;
            for seed in 0..2 {
                pts.push(Point {
                    id: format!("c{cell}-lr{i}-s{seed}"),
                    config: Some(format!("c{cell}-lr{i}")),
                    lr: Some(lr),
                    batch_tokens: Some(2048.0),
                    loss: p.loss * worse * (1.0 + 0.001 * seed as f64),
                    ..p.clone()
                });
            }
        }
    }
    let g = &fit_points_at("tuned", "t", &pts, &opts(0), "2026-01-01T00:00:00Z").groups[0];
    assert_eq!((g.n_points, g.tuned_out), (60, 120));
    assert_eq!(g.replicates.len(), 30, "both seeds of each best configuration are fitted");
    let law = g.law.as_ref().expect("law");
    assert!((law.alpha.value / PY.alpha - 1.0).abs() < 0.02, "α {} against {}", law.alpha.value, PY.alpha);
    assert!(law.rmse_log < 0.002, "only on-law points were fitted: RMSE {}", law.rmse_log);
    assert!(
        render_table(&fit_points_at("tuned", "t", &pts, &opts(0), "x")).contains("120 points of other configurations")
    );
}

/// Languages are pooled per architecture: dense and MoE points never share a pooled law.
#[test]
fn pooled_fits_never_mix_architectures() {
    let mut pts = sweep("python", &PY, 0.0, 1);
    pts.extend(sweep("go", &GO, 0.0, 2));
    pts.extend(sweep("python/moe", &GO, 0.0, 3));
    let pooled = FitOptions { pool: true, ..opts(0) };
    let names = |pts: &[Point]| {
        fit_points_at("p", "t", pts, &pooled, "x").groups.into_iter().map(|g| (g.group, g.n_points)).collect::<Vec<_>>()
    };
    assert_eq!(
        names(&pts),
        [("go".into(), 30), ("python".into(), 30), ("python/moe".into(), 30), ("pooled".into(), 60)]
    );
    let unpooled = fit_points_at("p", "t", &pts, &opts(0), "x").groups.into_iter().map(|g| g.group).collect::<Vec<_>>();
    assert_eq!(unpooled, ["go", "python", "python/moe"], "groups are pooled only when asked");
    pts.extend(sweep("go/moe", &PY, 0.0, 4));
    assert_eq!(names(&pts).last(), Some(&("pooled/moe".to_string(), 60)));
}
