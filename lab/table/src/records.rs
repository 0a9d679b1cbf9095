//! Serde rows ↔ Parquet/CSV files.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use codescale_core::{CurvePoint, CurveRow};
use polars::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// Builds a DataFrame from rows. Column types follow the JSON values: integers → i64, other
/// numbers → f64, strings, booleans; lists and maps are stored as JSON text.
pub fn to_frame<T: Serialize>(rows: &[T]) -> Result<DataFrame> {
    let objects: Vec<Map<String, Value>> = rows
        .iter()
        .map(|r| match serde_json::to_value(r)? {
            Value::Object(m) => Ok(m),
            other => bail!("a row must serialize to an object, not {other}"),
        })
        .collect::<Result<_>>()?;
    let names: Vec<String> = match objects.first() {
        Some(first) => first.keys().cloned().collect(),
        None => return Ok(DataFrame::empty()),
    };
    let columns = names
        .iter()
        .map(|name| {
            let values: Vec<&Value> = objects.iter().map(|o| o.get(name).unwrap_or(&Value::Null)).collect();
            column(name, &values)
        })
        .collect();
    Ok(DataFrame::new(objects.len(), columns)?)
}

fn column(name: &str, values: &[&Value]) -> Column {
    let present = || values.iter().filter(|v| !v.is_null());
    let name: PlSmallStr = name.into();
    if present().clone().count() > 0 && present().all(|v| v.is_i64() || v.is_u64()) {
        let v: Vec<Option<i64>> = values.iter().map(|v| v.as_i64()).collect();
        Column::new(name, v)
    } else if present().all(|v| v.is_number()) {
        let v: Vec<Option<f64>> = values.iter().map(|v| v.as_f64()).collect();
        Column::new(name, v)
    } else if present().all(|v| v.is_boolean()) {
        let v: Vec<Option<bool>> = values.iter().map(|v| v.as_bool()).collect();
        Column::new(name, v)
    } else {
        let v: Vec<Option<String>> = values
            .iter()
            .map(|v| match v {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            })
            .collect();
        Column::new(name, v)
    }
}

/// Rows back from a DataFrame; columns the row type does not know are ignored.
pub fn from_frame<T: DeserializeOwned>(df: &DataFrame) -> Result<Vec<T>> {
    let columns = df.columns();
    (0..df.height())
        .map(|i| {
            let mut object = Map::new();
            for c in columns {
                let value = match c.get(i)? {
                    AnyValue::Null => Value::Null,
                    AnyValue::Boolean(b) => Value::Bool(b),
                    AnyValue::String(s) => text_value(s),
                    AnyValue::StringOwned(s) => text_value(s.as_str()),
                    AnyValue::Float64(f) => serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null),
                    AnyValue::Float32(f) => {
                        serde_json::Number::from_f64(f as f64).map(Value::Number).unwrap_or(Value::Null)
                    }
                    AnyValue::Int64(v) => v.into(),
                    AnyValue::Int32(v) => v.into(),
                    AnyValue::UInt64(v) => v.into(),
                    AnyValue::UInt32(v) => v.into(),
                    other => Value::String(other.to_string()),
                };
                object.insert(c.name().to_string(), value);
            }
            serde_json::from_value(Value::Object(object)).with_context(|| format!("row {i}"))
        })
        .collect()
}

/// Lists and maps were written as JSON text; read them back as JSON.
fn text_value(s: &str) -> Value {
    if s.starts_with('[') || s.starts_with('{') {
        if let Ok(v) = serde_json::from_str(s) {
            return v;
        }
    }
    Value::String(s.to_string())
}

/// Writes rows as Parquet (or CSV for a `.csv` path), atomically.
pub fn write_rows<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut df = to_frame(rows)?;
    write_frame(path, &mut df)
}

/// Writes a trial's `curve.parquet`, every row tagged with the trial's id.
pub fn write_curve(path: &Path, trial_id: &str, curve: &[CurvePoint]) -> Result<()> {
    write_rows(path, &CurveRow::tag(trial_id, curve).collect::<Vec<_>>())
}

pub fn write_frame(path: &Path, df: &mut DataFrame) -> Result<()> {
    let mut buf = Vec::new();
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => CsvWriter::new(&mut buf).finish(df)?,
        _ => {
            ParquetWriter::new(&mut buf).with_key_value_metadata(Some(portable_arrow_schema(df))).finish(df)?;
        }
    }
    codescale_core::atomic::write_atomic(path, &buf)
}

/// The Arrow schema a Parquet file carries for Arrow readers, with strings as `large_string`.
/// polars 0.55's eager writer embeds its newest types, where strings are `string_view`, which
/// older pyarrow, Spark and DuckDB cannot read; the Parquet columns themselves are the same
/// UTF-8 byte arrays either way, so only the embedded schema needs to change.
fn portable_arrow_schema(df: &DataFrame) -> KeyValueMetadata {
    let schema = df.schema().to_arrow(CompatLevel::oldest());
    KeyValueMetadata::Static(vec![polars_parquet::write::schema_to_metadata_key(&schema)])
}

pub fn read_frame(path: &Path) -> Result<DataFrame> {
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let df = match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => CsvReadOptions::default().with_has_header(true).into_reader_with_file_handle(file).finish(),
        _ => ParquetReader::new(file).finish(),
    };
    anyhow::Context::with_context(df, || format!("reading {}", path.display()))
}

pub fn read_rows<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    from_frame(&read_frame(path)?).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_round_trips_through_parquet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curve.parquet");
        let rows = vec![
            CurvePoint {
                step: 1,
                tokens: 4096.0,
                lr: 1e-3,
                train_loss: 5.5,
                val_loss: None,
                val_loss_se: None,
                val_bpb: None,
                val_fim_loss: None,
                val_fim_loss_se: None,
                task_exact_match: None,
                task_exact_match_se: None,
                val_completion_loss: None,
                val_completion_loss_se: None,
                grad_norm: 1.5,
                wall_s: 0.1,
                expert_load: None,
                router_entropy: None,
                dropped_frac: None,
            },
            CurvePoint {
                step: 2,
                tokens: 8192.0,
                lr: 2e-3,
                train_loss: 5.0,
                val_loss: Some(4.9),
                val_loss_se: Some(0.01),
                val_bpb: Some(7.0),
                val_fim_loss: None,
                val_fim_loss_se: None,
                task_exact_match: None,
                task_exact_match_se: None,
                val_completion_loss: None,
                val_completion_loss_se: None,
                grad_norm: 1.2,
                wall_s: 0.2,
                expert_load: Some(vec![0.25, 0.75]),
                router_entropy: Some(0.5),
                dropped_frac: Some(0.125),
            },
        ];
        write_curve(&path, "abc123", &rows).unwrap();
        let ids = crate::user::str_column(&read_frame(&path).unwrap(), "trial_id").unwrap();
        assert_eq!(ids, ["abc123", "abc123"]);
        let back: Vec<CurvePoint> = read_rows(&path).unwrap();
        assert_eq!(back, rows);

        // A curve written before the column existed still reads.
        write_rows(&path, &rows).unwrap();
        assert!(!crate::user::has_column(&read_frame(&path).unwrap(), "trial_id"));
        assert_eq!(read_rows::<CurvePoint>(&path).unwrap(), rows);
    }
}
