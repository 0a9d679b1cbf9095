//! `cargo bench -p codescale-fit`: 7 groups × 60 points with 1000 bootstrap resamples each, the
//! size of a per-language sweep. Goal: ≤ 5 s on 2 cores.

use std::time::Instant;

use codescale_core::Status;
use codescale_fit::approach3::{self, chinchilla_grid, Data, Law};
use codescale_fit::bootstrap::bootstrap_law;
use codescale_fit::{fit_points_at, FitOptions, Point};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The seed paper's per-language exponents and L_inf (arXiv 2511.18538 §8), with A and B chosen
/// so that both terms matter over 1e6–1e9 parameters and 1e8–1e11 tokens.
const LANGS: [(&str, f64, f64, f64); 7] = [
    ("python", 0.221, 1.217, 0.566),
    ("java", 0.447, 1.129, 0.397),
    ("javascript", 0.692, 1.247, 0.554),
    ("typescript", 0.439, 1.303, 0.518),
    ("csharp", 0.321, 1.350, 0.288),
    ("go", 0.845, 1.149, 0.414),
    ("rust", 0.643, 1.297, 0.397),
];

fn points() -> Vec<Point> {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut pts = vec![];
    for (lang, alpha, beta, e) in LANGS {
        let law = Law { e, alpha, beta, a: 0.5 * 1e7f64.powf(alpha), b: 0.5 * 1e9f64.powf(beta) };
        // 10 sizes × 6 budgets = 60 points per language.
        for i in 0..10 {
            let n = 1e6 * 10f64.powf(i as f64 / 3.0);
            for j in 0..6 {
                let d = 1e8 * 4f64.powi(j);
                let loss = law.predict(n, d) * (1.0 + 0.01 * (rng.random::<f64>() - 0.5) * 3.46);
                pts.push(Point {
                    id: format!("{lang}-{i}-{j}"),
                    group: lang.into(),
                    status: Status::Done,
                    n,
                    d,
                    loss,
                    flops: None,
                    lr: None,
                    batch_tokens: None,
                    warmup_steps: None,
                    ..Default::default()
                });
            }
        }
    }
    pts
}

fn main() {
    let pts = points();
    let opts = FitOptions { bootstrap: 1000, seed: 1, ..FitOptions::default() };
    let threads = rayon::current_num_threads();

    let python: Vec<(f64, f64, f64)> = pts.iter().filter(|p| p.group == "python").map(|p| (p.n, p.d, p.loss)).collect();
    let data = Data::new(&python);
    let t = Instant::now();
    let (fit, delta) = approach3::fit_noise_matched(&data, &chinchilla_grid()).expect("fit");
    let t_grid = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let boot = bootstrap_law(&data, &fit, delta, opts.bootstrap, 1, &codescale_fit::bootstrap::singletons(data.len()));
    let t_boot = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let out = fit_points_at("bench", "synthetic", &pts, &opts, "2026-01-01T00:00:00Z");
    let t_all = t.elapsed().as_secs_f64();

    println!("fit_speed ({threads} threads)");
    println!("{:<52} {:>8}", "step", "seconds");
    println!("{:<52} {:>8.3}", "one group: Approach 3, two 4500-start grids (noise-matched δ)", t_grid);
    println!(
        "{:<52} {:>8.3}",
        format!("one group: bootstrap, {} resamples ({} failed)", boot.resamples, boot.failed),
        t_boot
    );
    println!(
        "{:<52} {:>8.3}",
        format!("fit_points: {} groups + pooled × 60 points, 1000 resamples", LANGS.len()),
        t_all
    );
    let per_group: Vec<String> = out
        .groups
        .iter()
        .map(|g| format!("{} α_N={:.3}", g.group, g.law.as_ref().map_or(f64::NAN, |l| l.alpha_n.value)))
        .collect();
    println!("{}", per_group.join(", "));
}
