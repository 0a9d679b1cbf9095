//! Scaling-law fitting. No burn, no polars: points in, `FitFile` out.

pub mod schema;

pub use schema::*;
