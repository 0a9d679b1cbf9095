//! codescale-table
