//! codescale-report: `reports/<sweep>/index.html` (self-contained) plus every figure as a PNG
//! beside it, from a results table, training curves, a fit file and trial provenance. No burn,
//! no polars: the caller reads the files, this crate only draws and writes.
//!
//! A sweep with gaps (nothing run, trials failed, no fit) still gets a report that says what is
//! missing; only I/O errors and a missing font are errors.

mod axes;
mod data;
mod figures;
mod fim;
mod finetune;
#[cfg(feature = "fixture")]
pub mod fixture;
mod fonts;
mod html;
mod languages;
mod render;
mod style;
mod summary;
mod task;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use codescale_core::atomic::write_atomic;

pub use fonts::FONT_PATH;

/// Everything a report is made from; the CLI fills it from `runs/<sweep>/` and `fits/`.
#[derive(Debug, Clone, Default)]
pub struct ReportInput {
    /// Sweep name.
    pub sweep: String,
    pub results: Vec<codescale_core::ResultRow>,
    /// (trial id, curve) per trial that recorded one.
    pub curves: Vec<(String, Vec<codescale_core::CurvePoint>)>,
    pub fit: Option<codescale_fit::FitFile>,
    /// The same results fitted against other N columns than `fit`'s (for a sweep with
    /// mixture-of-experts trials: active and total parameters, drawn side by side).
    pub n_fits: Vec<codescale_fit::FitFile>,
    /// The fill-in-the-middle trials' infilling loss (`val_fim_loss`) fitted, for a sweep that
    /// has them: its laws are drawn and tabled beside the causal loss's.
    pub fim_fit: Option<codescale_fit::FitFile>,
    /// (trial id, provenance) per trial record.
    pub provenance: Vec<(String, codescale_core::Provenance)>,
    /// The sweep file as run.
    pub sweep_toml: Option<String>,
    /// Messages from the caller to show, e.g. "fit missing".
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ReportOutput {
    pub html: PathBuf,
    /// Every figure file written (PNG, and SVG for the law figures).
    pub figures: Vec<PathBuf>,
}

/// Writes `out_dir/index.html` and the figures beside it, each file atomically. Figure files
/// from an earlier run whose data is gone are removed, so the folder matches the page.
pub fn write_report(input: &ReportInput, out_dir: &Path) -> Result<ReportOutput> {
    fonts::ensure()?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let built = figures::build_all(input);
    let mut written = Vec::new();
    for f in &built.figures {
        let png = out_dir.join(format!("{}.png", f.name));
        write_atomic(&png, &f.png)?;
        written.push(png);
        if let Some(svg) = &f.svg {
            let path = out_dir.join(format!("{}.svg", f.name));
            write_atomic(&path, svg.as_bytes())?;
            written.push(path);
        }
    }
    for name in figures::ALL_NAMES {
        for ext in ["png", "svg"] {
            let path = out_dir.join(format!("{name}.{ext}"));
            if !written.contains(&path) && path.exists() {
                std::fs::remove_file(&path).with_context(|| format!("removing stale {}", path.display()))?;
            }
        }
    }
    let summary = summary::build(input, &built.skipped, &built.errors);
    let page = html::render(&summary, &built.figures)?;
    let html = out_dir.join("index.html");
    write_atomic(&html, page.as_bytes())?;
    Ok(ReportOutput { html, figures: written })
}
