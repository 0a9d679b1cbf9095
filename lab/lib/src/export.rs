//! `codescale export`: a sweep's results and curves, or one trial's curve, as CSV, Parquet or
//! JSON lines, readable without codescale, or curves as TensorBoard runs.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use codescale_core::record::CURVE_FILE;
use codescale_core::{CurvePoint, CurveRow, TrialRecord};
use serde::Serialize;

use crate::sweep::SweepDir;

/// What to write. (A `clap` value too: the CLI's `--format`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Parquet,
    Jsonl,
    /// One TensorBoard run per trial under `<out>/tensorboard/`.
    Tensorboard,
}

impl Format {
    /// The file extension of a table format; `None` for TensorBoard's event files.
    fn extension(self) -> Option<&'static str> {
        match self {
            Format::Csv => Some("csv"),
            Format::Parquet => Some("parquet"),
            Format::Jsonl => Some("jsonl"),
            Format::Tensorboard => None,
        }
    }
}

/// What an export wrote; shown as the CLI prints it.
#[derive(Debug, Clone, PartialEq)]
pub enum Exported {
    /// Tables, one path each.
    Tables(Vec<PathBuf>),
    /// TensorBoard runs under `logdir`: `runs` of them, of a sweep or of `one_trial`.
    TensorBoard { logdir: PathBuf, runs: usize, one_trial: bool },
}

impl std::fmt::Display for Exported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exported::Tables(paths) => {
                write!(f, "{}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join("\n"))
            }
            Exported::TensorBoard { logdir, one_trial: true, .. } => {
                write!(f, "1 run in {}\nview it with: tensorboard --logdir {}", logdir.display(), logdir.display())
            }
            Exported::TensorBoard { logdir, runs, .. } => write!(
                f,
                "{runs} runs in {}\nview them with: tensorboard --logdir {}",
                logdir.display(),
                logdir.display()
            ),
        }
    }
}

/// Exports the sweep at `dir` (`runs/<sweep>`: `results.<ext>` and `curves.<ext>`, every curve
/// row tagged with its trial), or the one trial whose folder `dir` is (`curve.<ext>`), into
/// `out` (default `dir`).
///
/// ```
/// use codescale::{export, sweep};
///
/// let lab = codescale::example::Lab::new()?;
/// let summary = sweep::run(&lab.sweep()?, &lab.run_config())?;
/// let written = export::export(&summary.dir, export::Format::Jsonl, Some(lab.path().join("export")))?;
/// assert_eq!(written, export::Exported::Tables(vec![lab.path().join("export/results.jsonl"), lab.path().join("export/curves.jsonl")]));
/// assert_eq!(std::fs::read_to_string(lab.path().join("export/results.jsonl"))?.lines().count(), 6);
/// # anyhow::Ok(())
/// ```
pub fn export(dir: &Path, format: Format, out: Option<PathBuf>) -> Result<Exported> {
    if crate::trial::is_trial_dir(dir) {
        return export_trial(dir, format, out);
    }
    let sweep = SweepDir::open(dir)?;
    let rows = crate::sweep::results(dir)?;
    let out = out.unwrap_or_else(|| dir.to_path_buf());
    let Some(ext) = format.extension() else {
        return tensorboard(&sweep, &out.join("tensorboard"));
    };
    let mut curves: Vec<(String, Vec<CurvePoint>)> = Vec::new();
    for row in &rows {
        if let Some(curve) = curve(&sweep, &row.trial_id)? {
            curves.push((row.trial_id.clone(), curve));
        }
    }
    let tagged: Vec<CurveRow> = curves.iter().flat_map(|(id, c)| CurveRow::tag(id, c)).collect();
    let (results_path, curves_path) = (out.join(format!("results.{ext}")), out.join(format!("curves.{ext}")));
    // An export is a read: it must not replace the sweep's own table (`--format parquet` into
    // the sweep folder), which only `sweep run` writes, under the sweep lock.
    if same_file(&results_path, &dir.join(codescale_sweep::runs::RESULTS_FILE)) {
        codescale_core::bad_input!(
            "{}: exporting there would overwrite the sweep's own results table; give another folder with --out",
            results_path.display()
        );
    }
    write_table(&results_path, &rows, format)?;
    write_table(&curves_path, &tagged, format)?;
    Ok(Exported::Tables(vec![results_path, curves_path]))
}

/// One trial's folder (`codescale train --out`): its curve as `curve.<ext>`, each row tagged
/// with the trial's id, as a sweep's `curves.<ext>` is, or as one TensorBoard run.
fn export_trial(dir: &Path, format: Format, out: Option<PathBuf>) -> Result<Exported> {
    let record = TrialRecord::load(dir)?;
    let curve: Vec<CurvePoint> = codescale_table::read_rows(&dir.join(CURVE_FILE))?;
    let out = out.unwrap_or_else(|| dir.to_path_buf());
    let Some(ext) = format.extension() else {
        let logdir = out.join("tensorboard");
        codescale_table::tensorboard::write_run(&logdir.join(run_name(&record)), started(&record), &curve)?;
        return Ok(Exported::TensorBoard { logdir, runs: 1, one_trial: true });
    };
    let rows: Vec<CurveRow> = CurveRow::tag(&record.id, &curve).collect();
    let path = out.join(format!("curve.{ext}"));
    write_table(&path, &rows, format)?;
    Ok(Exported::Tables(vec![path]))
}

/// Every trial with a curve as a run named `<language>-<model>-<trial id>`, so TensorBoard's
/// run filter can pick a language or a model.
fn tensorboard(sweep: &SweepDir, logdir: &Path) -> Result<Exported> {
    let mut runs = 0;
    for record in sweep.records()? {
        if let Some(curve) = curve(sweep, &record.id)? {
            codescale_table::tensorboard::write_run(&logdir.join(run_name(&record)), started(&record), &curve)?;
            runs += 1;
        }
    }
    Ok(Exported::TensorBoard { logdir: logdir.to_path_buf(), runs, one_trial: false })
}

/// A trial's curve, if it has one yet.
fn curve(sweep: &SweepDir, id: &str) -> Result<Option<Vec<CurvePoint>>> {
    let path = sweep.trial_dir(id).join(CURVE_FILE);
    path.exists().then(|| codescale_table::read_rows(&path)).transpose()
}

fn run_name(r: &TrialRecord) -> String {
    format!("{}-{}-{}", r.config.data.language, r.config.model.name, r.id)
}

/// The trial's start in seconds since the epoch (0 for a record that never started).
fn started(r: &TrialRecord) -> u64 {
    codescale_core::time::unix_seconds(&r.provenance.started).unwrap_or(0)
}

/// Whether `a` and `b` name one file (`b` exists; `a` may not yet, so its folder is compared).
fn same_file(a: &Path, b: &Path) -> bool {
    let canonical =
        |p: &Path| p.parent().and_then(|d| d.canonicalize().ok()).map(|d| d.join(p.file_name().unwrap_or_default()));
    canonical(a).is_some() && canonical(a) == canonical(b)
}

/// Rows as a table of `format` (JSON lines by serde, the others by polars).
fn write_table<T: Serialize>(path: &Path, rows: &[T], format: Format) -> Result<()> {
    if format != Format::Jsonl {
        return codescale_table::write_rows(path, rows);
    }
    let mut buf = Vec::new();
    for row in rows {
        serde_json::to_writer(&mut buf, row)?;
        buf.write_all(b"\n")?;
    }
    codescale_core::atomic::write_atomic(path, &buf)
}
