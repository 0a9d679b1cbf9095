//! Columns of a user's own table (CSV or Parquet), for `codescale fit --table`.
//!
//! Only the columns asked for are read, and a CSV's cells are read as text and parsed here: a
//! column nobody asked for (FLOPs as integers beyond 2⁶³, free text) can never make a table
//! unreadable, and numbers of any size arrive as floats.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use polars::prelude::*;

pub use crate::records::read_frame;

/// The names in a table's header, without reading its rows.
pub fn column_names(path: &Path) -> Result<Vec<String>> {
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let schema = if is_csv(path) {
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .with_n_rows(Some(0))
            .into_reader_with_file_handle(file)
            .finish();
        anyhow::Context::with_context(df, || format!("reading {}", path.display()))?.schema().as_ref().clone()
    } else {
        let mut reader = ParquetReader::new(file);
        Schema::from_arrow_schema(
            anyhow::Context::with_context(reader.schema(), || format!("reading {}", path.display()))?.as_ref(),
        )
    };
    Ok(schema.iter_names().map(|n| n.to_string()).collect())
}

/// The table with only `columns` (each must exist: the error names the missing one and lists
/// the header). CSV cells are kept as text; [`f64_column`] parses them.
pub fn read_columns(path: &Path, columns: &[String]) -> Result<DataFrame> {
    let names = column_names(path)?;
    if let Some(missing) = columns.iter().find(|c| !names.contains(c)) {
        anyhow::bail!("no column `{missing}` (columns: {})", names.join(", "));
    }
    let mut wanted: Vec<String> = columns.to_vec();
    wanted.dedup();
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let df = if is_csv(path) {
        let cols: Arc<[PlSmallStr]> = wanted.iter().map(|c| PlSmallStr::from(c.as_str())).collect();
        CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .with_columns(Some(cols))
            .into_reader_with_file_handle(file)
            .finish()
    } else {
        ParquetReader::new(file).with_columns(Some(wanted)).finish()
    };
    anyhow::Context::with_context(df, || format!("reading {}", path.display()))
}

fn is_csv(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some("csv")
}

/// A numeric column as f64 (nulls and non-numbers become NaN, so the fitter excludes them with
/// a reason).
pub fn f64_column(df: &DataFrame, name: &str) -> Result<Vec<f64>> {
    let column =
        anyhow::Context::with_context(df.column(name), || format!("no column `{name}` (columns: {})", names(df)))?;
    if column.dtype() == &DataType::String {
        return Ok(column
            .str()?
            .iter()
            .map(|v| v.and_then(|s| s.trim().parse::<f64>().ok()).unwrap_or(f64::NAN))
            .collect());
    }
    let cast =
        anyhow::Context::with_context(column.cast(&DataType::Float64), || format!("column `{name}` is not numeric"))?;
    Ok(cast.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// A column as text (numbers formatted), nulls as empty strings.
pub fn str_column(df: &DataFrame, name: &str) -> Result<Vec<String>> {
    let column =
        anyhow::Context::with_context(df.column(name), || format!("no column `{name}` (columns: {})", names(df)))?;
    let cast = column.cast(&DataType::String)?;
    Ok(cast.str()?.iter().map(|v| v.unwrap_or("").to_string()).collect())
}

pub fn has_column(df: &DataFrame, name: &str) -> bool {
    df.column(name).is_ok()
}

fn names(df: &DataFrame) -> String {
    df.get_column_names().iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A column nobody asked for that polars could not type (an integer beyond 2⁶³) does not
    /// stop the table from being read; numbers of any size arrive as floats.
    #[test]
    fn reads_only_the_columns_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        fs::write(
            &path,
            "n,flops,loss,note\n1e6,12345678901234567890123,3.5,a\n2e6,99999999999999999999999,3.1,\"x, y\"\n",
        )
        .unwrap();
        let df = read_columns(&path, &["n".into(), "loss".into(), "flops".into()]).unwrap();
        assert_eq!(df.width(), 3);
        assert_eq!(f64_column(&df, "flops").unwrap()[0], 1.2345678901234568e22);
        assert_eq!(f64_column(&df, "loss").unwrap(), vec![3.5, 3.1]);
        let err = read_columns(&path, &["tokens".into()]).unwrap_err().to_string();
        assert!(err.contains("no column `tokens`") && err.contains("n, flops, loss, note"), "{err}");
    }
}
