//! `export`: results and curves as CSV, Parquet or JSON lines, readable without codescale.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use codescale_core::CurvePoint;
use codescale_sweep::SweepDir;
use serde::Serialize;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Csv,
    Parquet,
    Jsonl,
}

/// A curve row tagged with its trial, so all curves fit in one table.
#[derive(Serialize)]
struct TaggedPoint<'a> {
    trial_id: &'a str,
    #[serde(flatten)]
    point: &'a CurvePoint,
}

pub fn export(dir: &Path, format: Format, out: Option<PathBuf>) -> Result<()> {
    let sweep = SweepDir::open(dir)?;
    let rows = crate::analyse::sweep_rows(dir)?;
    let mut curves: Vec<(String, Vec<CurvePoint>)> = Vec::new();
    for row in &rows {
        let path = sweep.trial_dir(&row.trial_id).join(codescale_core::record::CURVE_FILE);
        if path.exists() {
            curves.push((row.trial_id.clone(), codescale_table::read_rows(&path)?));
        }
    }
    let tagged: Vec<TaggedPoint> = curves.iter().flat_map(|(id, c)| c.iter().map(move |p| TaggedPoint { trial_id: id, point: p })).collect();
    let out = out.unwrap_or_else(|| dir.to_path_buf());
    let ext = match format {
        Format::Csv => "csv",
        Format::Parquet => "parquet",
        Format::Jsonl => "jsonl",
    };
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

fn write_jsonl<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut buf = Vec::new();
    for row in rows {
        serde_json::to_writer(&mut buf, row)?;
        buf.write_all(b"\n")?;
    }
    codescale_core::atomic::write_atomic(path, &buf)
}
