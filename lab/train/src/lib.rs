//! codescale-train
