//! The pipeline from Rust, end to end, on a tiny sweep: corpus → plan → train → fit → report →
//! replay, each stage one call of the `codescale` library (the calls the CLI makes). Seconds on 2
//! cores after the build:
//!
//! ```sh
//! cargo run --example pipeline            # the lab is removed at the end
//! cargo run --example pipeline -- --keep  # keep it, report and all
//! ```

use anyhow::Result;
use codescale::example::{Lab, SWEEP};
use codescale::{corpus, fit, replay, report, sweep};

fn main() -> Result<()> {
    let lab = Lab::new()?;
    println!("lab {}, sweep tiny.toml:\n{SWEEP}", lab.path().display());

    // The corpus: shards and a manifest from the recipe (planning builds it too, when missing).
    let corpus = corpus::build(&lab.recipe(), &corpus::BuildOptions { quiet: true, ..Default::default() })?;
    println!("{}\ncorpus {} at {}\n", corpus::summary_table(&corpus.manifest), corpus.hash(), corpus.dir.display());

    // The plan: every trial bound to that corpus (its id covers the corpus), and its cost here.
    let tiny = lab.sweep()?;
    let planned = sweep::plan(&tiny, true)?;
    let cost = sweep::estimate(&tiny, &planned.trials, &lab.path().join("runs"));
    println!(
        "{} trials, {:.3e} FLOPs, about {:.0} s on this machine\n",
        planned.trials.len(),
        cost.flops(),
        cost.seconds()
    );

    // Training: `runs/tiny/`, a record and a curve per trial, then `results.parquet`. Killed and
    // called again, it resumes; finished trials are never trained twice.
    let summary = sweep::run(&tiny, &lab.run_config())?;
    for row in &summary.rows {
        println!(
            "{} {:<7} {:>6} tokens: {} val loss {:.4}",
            row.trial_id,
            row.model,
            row.tokens,
            row.status,
            row.val_loss.unwrap_or(f64::NAN)
        );
    }

    // The fit: L(N, D) with bootstrap intervals, `fits/tiny.json`.
    let fitted = fit::fit_sweep(&summary.dir, &fit::Options::default())?;
    println!("\n{}\nfit: {}\n", fit::render_table(&fitted.fit), fitted.path.display());

    // The report: `reports/tiny/index.html` and its figures (it reuses the fit just written).
    println!("{}", report::render(&summary.dir, None)?);

    // Replays: two trials trained again from their records alone, bit for bit.
    for (id, dir) in replay::replayable(&summary.dir, Some(2))? {
        println!("replay {id}: {}", replay::replay_trial(&dir, false, true)?);
    }

    if std::env::args().any(|a| a == "--keep") {
        println!("kept {}", lab.keep().display());
    }
    Ok(())
}
