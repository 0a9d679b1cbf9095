//! codescale-data
