//! `export`: a sweep's results and curves, or one trial's curve, as CSV, Parquet or JSON lines,
//! readable without codescale, or curves as TensorBoard runs.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use codescale_core::record::{CURVE_FILE, TRIAL_FILE};
use codescale_core::{CurvePoint, CurveRow, TrialRecord};
use codescale_sweep::SweepDir;
use serde::Serialize;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Csv,
    Parquet,
    Jsonl,
    /// One TensorBoard run per trial under `<out>/tensorboard/`.
    Tensorboard,
}

pub fn export(dir: &Path, format: Format, out: Option<PathBuf>) -> Result<()> {
    if dir.join(TRIAL_FILE).exists() {
        return export_trial(dir, format, out);
    }
    let sweep = SweepDir::open(dir)?;
    let rows = crate::analyse::sweep_rows(dir)?;
    let out = out.unwrap_or_else(|| dir.to_path_buf());
    let ext = match format {
        Format::Csv => "csv",
        Format::Parquet => "parquet",
        Format::Jsonl => "jsonl",
        Format::Tensorboard => return tensorboard(&sweep, &out.join("tensorboard")),
    };
    let mut curves: Vec<(String, Vec<CurvePoint>)> = Vec::new();
    for row in &rows {
        if let Some(curve) = curve(&sweep, &row.trial_id)? {
            curves.push((row.trial_id.clone(), curve));
        }
    }
    let tagged: Vec<CurveRow> = curves.iter().flat_map(|(id, c)| CurveRow::tag(id, c)).collect();
    let (results_path, curves_path) = (out.join(format!("results.{ext}")), out.join(format!("curves.{ext}")));
    match format {
        Format::Jsonl => {
            write_jsonl(&results_path, &rows)?;
            write_jsonl(&curves_path, &tagged)?;
        }
        _ => {
            codescale_table::write_rows(&results_path, &rows)?;
            codescale_table::write_rows(&curves_path, &tagged)?;
        }
    }
    println!("{}\n{}", results_path.display(), curves_path.display());
    Ok(())
}

/// One trial's folder (`codescale train --out`): its curve as `curve.<ext>`, each row tagged
/// with the trial's id, as a sweep's `curves.<ext>` is, or as one TensorBoard run.
fn export_trial(dir: &Path, format: Format, out: Option<PathBuf>) -> Result<()> {
    let record = TrialRecord::load(dir)?;
    let curve: Vec<CurvePoint> = codescale_table::read_rows(&dir.join(CURVE_FILE))?;
    let out = out.unwrap_or_else(|| dir.to_path_buf());
    let ext = match format {
        Format::Csv => "csv",
        Format::Parquet => "parquet",
        Format::Jsonl => "jsonl",
        Format::Tensorboard => {
            let logdir = out.join("tensorboard");
            codescale_table::tensorboard::write_run(&logdir.join(run_name(&record)), started(&record), &curve)?;
            println!("1 run in {}\nview it with: tensorboard --logdir {}", logdir.display(), logdir.display());
            return Ok(());
        }
    };
    let rows: Vec<CurveRow> = CurveRow::tag(&record.id, &curve).collect();
    let path = out.join(format!("curve.{ext}"));
    match format {
        Format::Jsonl => write_jsonl(&path, &rows)?,
        _ => codescale_table::write_rows(&path, &rows)?,
    }
    println!("{}", path.display());
    Ok(())
}

/// Every trial with a curve as a run named `<language>-<model>-<trial id>`, so TensorBoard's
/// run filter can pick a language or a model.
fn tensorboard(sweep: &SweepDir, logdir: &Path) -> Result<()> {
    let mut runs = 0;
    for record in sweep.records()? {
        if let Some(curve) = curve(sweep, &record.id)? {
            codescale_table::tensorboard::write_run(&logdir.join(run_name(&record)), started(&record), &curve)?;
            runs += 1;
        }
    }
    println!("{runs} runs in {}\nview them with: tensorboard --logdir {}", logdir.display(), logdir.display());
    Ok(())
}

/// A trial's curve, if it has one yet.
fn curve(sweep: &SweepDir, id: &str) -> Result<Option<Vec<CurvePoint>>> {
    let path = sweep.trial_dir(id).join(codescale_core::record::CURVE_FILE);
    path.exists().then(|| codescale_table::read_rows(&path)).transpose()
}

fn run_name(r: &TrialRecord) -> String {
    format!("{}-{}-{}", r.config.language, r.config.model, r.id)
}

/// The trial's start in seconds since the epoch (0 for a record that never started).
fn started(r: &TrialRecord) -> u64 {
    codescale_core::time::unix_seconds(&r.provenance.started).unwrap_or(0)
}

fn write_jsonl<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut buf = Vec::new();
    for row in rows {
        serde_json::to_writer(&mut buf, row)?;
        buf.write_all(b"\n")?;
    }
    codescale_core::atomic::write_atomic(path, &buf)
}
