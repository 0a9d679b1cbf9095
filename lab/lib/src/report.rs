//! Stage 4, `codescale report`: one self-contained HTML page with its figures, from a sweep's
//! records, curves and fit. [`codescale_report`] draws and writes; this module gathers its input
//! from the runs folder and refits when the fit on disk is not of these results.

use std::path::{Path, PathBuf};

use anyhow::Result;
use codescale_core::CurvePoint;
use codescale_fit::results::{input_hash, points_from_rows, N_COLUMNS};
use codescale_fit::FitFile;
pub use codescale_report::{write_report, ReportInput, ReportOutput};

use crate::sweep::SweepDir;

/// Where a report was written; shown as one line, `report: <html> (<n> figures)`.
#[derive(Debug, Clone)]
pub struct Written {
    pub html: PathBuf,
    pub figures: usize,
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "report: {} ({} figures)", self.html.display(), self.figures)
    }
}

/// Writes the report of the sweep at `sweep_dir` (`runs/<sweep>`) into `out` (default
/// [`crate::paths::report_dir`]). It uses the fit on disk if that was made from the sweep's
/// results as they are now, else fits again (and says so on the page). A sweep with gaps
/// (trials failed or not yet run, too few points for a law) still gets a page saying what is
/// missing.
///
/// ```
/// use codescale::{report, sweep};
///
/// let lab = codescale::example::Lab::new()?;
/// let summary = sweep::run(&lab.sweep()?, &lab.run_config())?;
/// let written = report::render(&summary.dir, None)?;
/// assert_eq!(written.html, lab.path().join("reports/tiny/index.html"));
/// assert!(written.figures > 0 && lab.path().join("fits/tiny.json").exists());
/// println!("{written}");
/// # anyhow::Ok(())
/// ```
pub fn render(sweep_dir: &Path, out: Option<PathBuf>) -> Result<Written> {
    let input = input(sweep_dir)?;
    let out_dir = out.unwrap_or_else(|| crate::paths::report_dir(sweep_dir));
    let output = write_report(&input, &out_dir)?;
    Ok(Written { html: output.html, figures: output.figures.len() })
}

/// Everything the report of `sweep_dir` is drawn from, fitted now if need be.
pub fn input(sweep_dir: &Path) -> Result<ReportInput> {
    let sweep = SweepDir::open(sweep_dir)?;
    let rows = crate::sweep::results(sweep_dir)?;
    let mut notes = Vec::new();
    let fit_file = crate::paths::fit_file(sweep_dir);
    let fit = match current_fit(&fit_file, &rows) {
        Ok(fit) => Some(fit),
        Err(why) => {
            notes.push(format!("{} {why}", fit_file.display()));
            // A sweep with nothing to fit (fine-tuning sweeps: no ladder from scratch) still
            // gets its report, saying why it has no law.
            match crate::fit::fit_sweep(sweep_dir, &crate::fit::Options::default()) {
                Ok(fitted) => Some(fitted.fit),
                Err(e) if codescale_core::is_bad_input(&e) => {
                    notes.push(format!("no law fitted: {e:#}"));
                    None
                }
                Err(e) => return Err(e),
            }
        }
    };
    let fim_fit =
        if rows.iter().any(|r| r.fim_rate > 0.0) { Some(infilling(sweep_dir, &rows, &mut notes)?) } else { None };
    let n_fits = match &fit {
        Some(fit) if rows.iter().any(|r| r.arch == codescale_core::Arch::Moe) => {
            by_active_and_total(sweep_dir, &rows, fit, &mut notes)?
        }
        _ => Vec::new(),
    };
    let mut curves = Vec::new();
    let mut provenance = Vec::new();
    for record in sweep.records()? {
        let curve_path = sweep.trial_dir(&record.id).join(codescale_core::record::CURVE_FILE);
        if curve_path.exists() {
            match codescale_table::read_rows::<CurvePoint>(&curve_path) {
                Ok(curve) => curves.push((record.id.clone(), curve)),
                Err(e) => notes.push(format!("the curve of trial {} is unreadable ({e:#}); left out", record.id)),
            }
        }
        if let Some(why) = &record.stale {
            notes.push(format!("trial {} is a stale result kept with --reuse-stale: {why}", record.id));
        }
        if !record.provenance.started.is_empty() {
            provenance.push((record.id.clone(), record.provenance.clone()));
        }
    }
    let sweep_toml = std::fs::read_to_string(sweep_dir.join(codescale_sweep::runs::SWEEP_FILE)).ok();
    Ok(ReportInput { sweep: sweep.name(), results: rows, curves, fit, n_fits, fim_fit, provenance, sweep_toml, notes })
}

/// For a sweep with mixture-of-experts trials: its fits against active and against total
/// (non-embedding) parameters, other than the main fit, from `fits/<sweep>.<n_col>.json` when
/// those are of these results, else fitted now and written there.
fn by_active_and_total(
    sweep_dir: &Path,
    rows: &[codescale_core::ResultRow],
    main: &FitFile,
    notes: &mut Vec<String>,
) -> Result<Vec<FitFile>> {
    let mut fits = Vec::new();
    for n_col in ["n_params_active", "n_params"].into_iter().filter(|c| *c != main.n_col) {
        let path = crate::paths::fit_file_by(sweep_dir, n_col);
        match current_fit(&path, rows) {
            Ok(fit) if fit.n_col == n_col => fits.push(fit),
            _ => {
                notes.push(format!("fitted against {n_col} for the dense-vs-MoE laws: {}", path.display()));
                let opts = crate::fit::Options { n_col: Some(n_col.into()), out: Some(path), ..Default::default() };
                fits.push(crate::fit::fit_sweep(sweep_dir, &opts)?.fit);
            }
        }
    }
    Ok(fits)
}

/// For a sweep with fill-in-the-middle trials: their infilling loss fitted, from
/// `fits/<sweep>.val_fim_loss.json` when that is of these results, else fitted now and written
/// there.
fn infilling(sweep_dir: &Path, rows: &[codescale_core::ResultRow], notes: &mut Vec<String>) -> Result<FitFile> {
    let path = crate::paths::fit_file_by(sweep_dir, "val_fim_loss");
    match current_fit(&path, rows) {
        Ok(fit) if fit.loss_col == "val_fim_loss" && fit.n_col == "n_params" => Ok(fit),
        _ => {
            notes.push(format!("fitted the infilling loss of the FIM trials: {}", path.display()));
            let opts =
                crate::fit::Options { loss_col: Some("val_fim_loss".into()), out: Some(path), ..Default::default() };
            Ok(crate::fit::fit_sweep(sweep_dir, &opts)?.fit)
        }
    }
}

/// The fit at `path` if it was made from exactly these rows (with a sweep's N column), with the
/// options a report fits with, by this fitter: a fit made with other options (`--bootstrap 10`,
/// `--huber-delta 1e-3`, `--law kaplan`, …) or by an older fitter is not shown as the sweep's.
/// `Err` says why it is not (the start of a note).
fn current_fit(path: &Path, rows: &[codescale_core::ResultRow]) -> std::result::Result<FitFile, &'static str> {
    if !path.exists() {
        return Err("was missing; fitted now");
    }
    let on_disk = codescale_core::atomic::read_json::<FitFile>(path).map_err(|_| "was unreadable; fitted again")?;
    if !(N_COLUMNS.contains(&on_disk.n_col.as_str())
        && on_disk.input_hash == input_hash(&points_from_rows(rows, &on_disk.n_col, &on_disk.loss_col)))
    {
        return Err("was made from other results; fitted again");
    }
    let options = crate::fit::FitOptions {
        n_col: on_disk.n_col.clone(),
        loss_col: on_disk.loss_col.clone(),
        ..Default::default()
    };
    if on_disk.fit_key != options.key() {
        return Err("was made with other fit options or by another version of the fitter; fitted again");
    }
    Ok(on_disk)
}
