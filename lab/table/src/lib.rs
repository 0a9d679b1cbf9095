//! Parquet and CSV tables through polars: results, curves, corpus documents, user tables; and
//! curves as TensorBoard event files.
//!
//! Records go through serde: a row type's fields become columns in field order, so a new
//! field in `ResultRow` or `CurvePoint` is a new column with no code here.

pub mod documents;
pub mod records;
pub mod tensorboard;
pub mod user;

pub use records::{read_rows, write_curve, write_rows};
