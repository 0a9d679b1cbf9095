//! Columns of a user's own table (CSV or Parquet), for `codescale fit --table`.

use anyhow::Result;
use polars::prelude::*;

pub use crate::records::read_frame;

/// A numeric column as f64 (nulls and non-numbers become NaN, so the fitter excludes them with
/// a reason).
pub fn f64_column(df: &DataFrame, name: &str) -> Result<Vec<f64>> {
    let column = anyhow::Context::with_context(df.column(name), || format!("no column `{name}` (columns: {})", names(df)))?;
    let cast = anyhow::Context::with_context(column.cast(&DataType::Float64), || format!("column `{name}` is not numeric"))?;
    Ok(cast.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// A column as text (numbers formatted), nulls as empty strings.
pub fn str_column(df: &DataFrame, name: &str) -> Result<Vec<String>> {
    let column = anyhow::Context::with_context(df.column(name), || format!("no column `{name}` (columns: {})", names(df)))?;
    let cast = column.cast(&DataType::String)?;
    Ok(cast.str()?.iter().map(|v| v.unwrap_or("").to_string()).collect())
}

pub fn has_column(df: &DataFrame, name: &str) -> bool {
    df.column(name).is_ok()
}

fn names(df: &DataFrame) -> String {
    df.get_column_names().iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}
