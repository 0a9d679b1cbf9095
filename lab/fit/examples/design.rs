//! What a ladder design can pin down, before any of it is trained: ladders are drawn around a
//! known law with the noise measured on real runs, fitted as the lab fits them (noise-matched
//! Huber threshold, bootstrap over configurations), and the table row says how often each
//! parameter comes out identified and how far the held-out target's prediction lands.
//!
//!   design LAW SIZES BUDGETS SEEDS TRUNK_NOISE RUN_NOISE TARGET_N [DATASETS] [BOOTSTRAP]
//!
//! LAW is `additive:E,A,B,α,β` (the law's own form) or `kaplan:E,N_c,D_c,α_N,α_D`, the form
//! E + ((N_c/N)^(α_N/α_D) + D_c/D)^α_D whose N × D interaction no additive law can fit. SIZES
//! and BUDGETS are comma lists; each size trains SEEDS trunks, and TRUNK_NOISE is the relative
//! noise every budget of one trunk shares (cooldown branches fork from it), RUN_NOISE each
//! run's own. The target is TARGET_N at the largest budget, measured with SEEDS seeds too.
//! `bench/design.sh` runs the designs docs/findings/quickstart.md compares.

use codescale_fit::additivity::{additivity, Measurement};
use codescale_fit::approach3::{chinchilla_grid, fit_noise_matched, Data, Law};
use codescale_fit::bootstrap::{bootstrap_law, clusters, interval};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

fn normal(rng: &mut impl Rng) -> f64 {
    let (u, v): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

enum Truth {
    Additive(Law),
    Kaplan([f64; 5]),
}

impl Truth {
    fn parse(s: &str) -> Truth {
        let (form, values) = s.split_once(':').expect("LAW is form:values");
        let v: Vec<f64> = list(values);
        assert_eq!(v.len(), 5, "LAW has five values");
        match form {
            "additive" => Truth::Additive(Law { e: v[0], a: v[1], b: v[2], alpha: v[3], beta: v[4] }),
            "kaplan" => Truth::Kaplan([v[0], v[1], v[2], v[3], v[4]]),
            _ => panic!("LAW form is additive or kaplan, not {form}"),
        }
    }

    fn loss(&self, n: f64, d: f64) -> f64 {
        match self {
            Truth::Additive(law) => law.predict(n, d),
            Truth::Kaplan([e, n_c, d_c, a_n, a_d]) => e + ((n_c / n).powf(a_n / a_d) + d_c / d).powf(*a_d),
        }
    }
}

fn list(s: &str) -> Vec<f64> {
    s.split(',').map(|x| x.trim().parse().expect("a number")).collect()
}

/// One simulated ladder's outcome.
struct Outcome {
    /// Interval width over estimate for α_N, α_D, L_inf.
    width: [f64; 3],
    /// Prediction over the target's noise-free loss, minus one.
    bias: f64,
    /// Measured (its seeds' mean) over prediction, minus one: what the lab reports.
    error: f64,
    /// The additivity check rejected the form.
    not_additive: bool,
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 8 {
        eprintln!("usage: design LAW SIZES BUDGETS SEEDS TRUNK_NOISE RUN_NOISE TARGET_N [DATASETS] [BOOTSTRAP]");
        std::process::exit(2);
    }
    let truth = Truth::parse(&a[1]);
    let (sizes, budgets) = (list(&a[2]), list(&a[3]));
    let seeds: usize = a[4].parse().expect("SEEDS");
    let (trunk, run): (f64, f64) = (a[5].parse().expect("TRUNK_NOISE"), a[6].parse().expect("RUN_NOISE"));
    let target_n: f64 = a[7].parse().expect("TARGET_N");
    let datasets: u64 = a.get(8).map_or(100, |s| s.parse().expect("DATASETS"));
    let resamples: usize = a.get(9).map_or(200, |s| s.parse().expect("BOOTSTRAP"));
    let target_d = budgets.iter().copied().fold(0.0, f64::max);
    let outcomes: Vec<Outcome> = (0..datasets)
        .into_par_iter()
        .map(|set| {
            let mut rng = ChaCha8Rng::seed_from_u64(set);
            let mut runs = vec![];
            for &n in &sizes {
                for seed in 0..seeds {
                    let shared = trunk * normal(&mut rng);
                    for &d in &budgets {
                        runs.push((
                            n,
                            d,
                            truth.loss(n, d) * (shared + run * normal(&mut rng)).exp(),
                            format!("{n}/{d}"),
                            format!("{n}/{seed}"),
                        ));
                    }
                }
            }
            let measured = (0..seeds)
                .map(|_| truth.loss(target_n, target_d) * (trunk * normal(&mut rng) + run * normal(&mut rng)).exp())
                .sum::<f64>()
                / seeds as f64;
            let triples: Vec<(f64, f64, f64)> = runs.iter().map(|r| (r.0, r.1, r.2)).collect();
            let data = Data::new(&triples);
            let (fit, delta) = fit_noise_matched(&data, &chinchilla_grid()).expect("a fit");
            let configs: Vec<&str> = runs.iter().map(|r| r.3.as_str()).collect();
            let boot = bootstrap_law(&data, &fit, delta, resamples, set, &clusters(&configs));
            let get: [fn(&Law) -> f64; 3] = [|l| l.alpha, |l| l.beta, |l| l.e];
            let width = get.map(|f| {
                let samples: Vec<f64> = boot.laws.iter().map(f).collect();
                interval(&samples, 0.95).map_or(f64::INFINITY, |(lo, hi)| (hi - lo) / f(&fit.law).abs())
            });
            let predicted = fit.law.predict(target_n, target_d);
            let m: Vec<Measurement> = runs
                .iter()
                .map(|r| Measurement { n: r.0, d: r.1, loss: r.2, config: &r.3, trunk: Some(&r.4) })
                .collect();
            Outcome {
                width,
                bias: predicted / truth.loss(target_n, target_d) - 1.0,
                error: measured / predicted - 1.0,
                not_additive: additivity(&m).is_some_and(|x| x.rejected()),
            }
        })
        .collect();
    let share =
        |f: &dyn Fn(&Outcome) -> bool| 100.0 * outcomes.iter().filter(|o| f(o)).count() as f64 / outcomes.len() as f64;
    let median = |f: &dyn Fn(&Outcome) -> f64| {
        let mut v: Vec<f64> = outcomes.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let flops: f64 = sizes.iter().map(|n| 6.0 * n * target_d * seeds as f64).sum();
    println!(
        "| {} × {} × {} | {:.1e} | {:.2} / {:.2} / {:.2} | {:.0} % | {:+.2} % | {:.2} % | {:.0} % | {:.0} % |",
        sizes.len(),
        budgets.len(),
        seeds,
        flops,
        median(&|o| o.width[0]),
        median(&|o| o.width[1]),
        median(&|o| o.width[2]),
        share(&|o| o.width.iter().all(|w| *w < 1.0)),
        100.0 * median(&|o| o.bias),
        100.0 * median(&|o| o.error.abs()),
        share(&|o| o.error.abs() <= 0.015),
        share(&|o| o.not_additive),
    );
}
