//! What whole curves buy (`bench/curves.sh`): for each finished sweep given, each language's
//! held-out targets predicted by the final-point law (`auto`, and Chinchilla's form) and by the
//! whole-curve law fitted on every run, on the largest budget's runs alone, and on the budgets up
//! to half the largest, with the training compute each set of runs cost (a WSD trunk counted
//! once, each cooldown branch on its own).
//!
//! ```sh
//! cargo run --release --example curves -- runs/ladder runs/quickstart
//! ```

use std::collections::HashMap;

use anyhow::Result;
use codescale::fit::{self, Form, LawChoice};
use codescale_fit::curve::{self, CurveTrial};
use codescale_fit::schema::TargetCheck;

/// Training FLOPs of `runs`: the shared part of a trunk's branches once, each cooldown apart.
fn compute(runs: &[&CurveTrial]) -> f64 {
    let mut trunks: HashMap<&str, f64> = HashMap::new();
    let mut total = 0.0;
    for t in runs {
        let flops = t.point.flops.unwrap_or(6.0 * t.point.n * t.point.d);
        match &t.point.trunk {
            Some(trunk) => {
                let shared = t.config.decay_start() as f64 / t.config.total_steps().max(1) as f64;
                let e = trunks.entry(trunk).or_default();
                *e = e.max(flops * shared);
                total += flops * (1.0 - shared);
            }
            None => total += flops,
        }
    }
    total + trunks.values().sum::<f64>()
}

fn cell(t: Option<&TargetCheck>) -> String {
    t.map_or("—".into(), |t| format!("{:+.2} %{}", 100.0 * t.error, if t.covered { "" } else { " (outside PI)" }))
}

fn main() -> Result<()> {
    let dirs: Vec<std::path::PathBuf> = std::env::args().skip(1).map(Into::into).collect();
    anyhow::ensure!(!dirs.is_empty(), "usage: curves SWEEP_DIR...");
    let opts = codescale_fit::FitOptions { bootstrap: 200, ..Default::default() };
    println!(
        "{:<12} {:<8} {:>10} {:>10} | {:>18} {:>18} {:>18}",
        "sweep", "group", "auto", "chinchilla", "curves: all runs", "largest budget", "budgets ≤ half"
    );
    println!(
        "{:<12} {:<8} {:>10} {:>10} | {:>18} {:>18} {:>18}",
        "", "", "(final)", "(final)", "compute", "compute", "compute"
    );
    for dir in &dirs {
        let name = dir.file_name().map_or("?".into(), |s| s.to_string_lossy().into_owned());
        let finals = |law| -> Result<fit::FitFile> {
            let out = tempfile::NamedTempFile::new()?;
            Ok(fit::fit_sweep(
                dir,
                &fit::Options {
                    fit: fit::FitOptions { law, curves: false, bootstrap: 200, ..Default::default() },
                    out: Some(out.path().into()),
                    ..Default::default()
                },
            )?
            .fit)
        };
        let (auto, chinchilla) = (finals(LawChoice::Auto)?, finals(LawChoice::Fixed(Form::Chinchilla))?);
        let points = codescale_fit::results::points_from_rows(&codescale::sweep::results(dir)?, "n_params", "val_loss");
        let trials = fit::curve_trials(dir, &points, "val_loss")?;
        for g in &auto.groups {
            let runs: Vec<&CurveTrial> = trials.iter().filter(|t| t.point.group == g.group).collect();
            let fitted: Vec<&CurveTrial> = runs.iter().copied().filter(|t| !t.point.target).collect();
            let largest = fitted.iter().map(|t| t.point.d).fold(0.0, f64::max);
            let full = compute(&fitted);
            let subset = |keep: &dyn Fn(&CurveTrial) -> bool| -> String {
                let chosen: Vec<CurveTrial> =
                    runs.iter().filter(|t| t.point.target || keep(t)).map(|t| (*t).clone()).collect();
                let used: Vec<&CurveTrial> = chosen.iter().filter(|t| !t.point.target).collect();
                let share = compute(&used) / full;
                match curve::fit_group(&chosen, &opts, 0) {
                    Ok(law) => law
                        .targets
                        .iter()
                        .map(|t| format!("{} {:>4.0} %", cell(Some(t)), 100.0 * share))
                        .collect::<Vec<_>>()
                        .join(", "),
                    Err(why) => format!("none ({why})"),
                }
            };
            let target = |f: &fit::FitFile| {
                f.groups.iter().find(|h| h.group == g.group).and_then(|h| h.targets.first().cloned())
            };
            println!(
                "{:<12} {:<8} {:>10} {:>10} | {:>18} {:>18} {:>18}",
                name,
                g.group,
                cell(target(&auto).as_ref()),
                cell(target(&chinchilla).as_ref()),
                subset(&|_| true),
                subset(&|t| t.point.d >= largest * (1.0 - 1e-9)),
                subset(&|t| t.point.d <= 0.5 * largest * (1.0 + 1e-9)),
            );
        }
    }
    println!("\ntarget error = measured / predicted − 1; compute = training FLOPs of the runs fitted, as a share of the whole ladder's (a WSD trunk counted once).");
    Ok(())
}
