//! codescale-sweep
