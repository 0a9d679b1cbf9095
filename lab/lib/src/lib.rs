//! codescale as a library: the pipeline the `codescale` binary runs, one module per stage, so
//! that a Rust program or a notebook can run any stage, or all of them, without the CLI. The
//! binary only parses arguments, calls these functions and prints what they return.
//!
//! | stage | function | command |
//! |---|---|---|
//! | corpus | [`corpus::build`] | `codescale corpus build` |
//! | plan | [`sweep::plan`], [`sweep::estimate`] | `codescale sweep plan` |
//! | train | [`sweep::run`], [`trial::train`], [`trial::run_planned`] | `codescale sweep run`, `train`, `trial run` |
//! | fit | [`fit::fit_sweep`], [`fit::fit_table`] | `codescale fit` |
//! | predict | [`fit::predict`] | `codescale predict` |
//! | report | [`report::render`] | `codescale report` |
//! | replay | [`replay::replay_trial`] | `codescale replay` |
//! | export | [`export::export`] | `codescale export` |
//!
//! Every stage reads the files the stage before it wrote (`corpus/`, `runs/<sweep>/`, `fits/`,
//! `reports/`; docs/guide/files.md), so any of them can run on its own. Relative
//! paths (a sweep's `corpus`, the default corpus and trial folders) are taken from the working
//! directory, as they are for the CLI.
//!
//! Errors are [`anyhow::Error`]s. A mistake in the input (a file, line and key the user can
//! fix) carries [`BadInput`] in its chain, which [`is_bad_input`] finds: the CLI's exit code 2.
//!
//! `examples/pipeline.rs` runs every stage on a tiny sweep (`cargo run --example pipeline`);
//! [`example::Lab`] sets up the lab the doc examples run in.

pub mod corpus;
pub mod example;
pub mod export;
pub mod fit;
pub mod ladders;
pub mod paths;
pub mod replay;
pub mod report;
pub mod sweep;
pub mod trial;

pub use codescale_core::atomic::write_atomic;
pub use codescale_core::{is_bad_input, BadInput};
