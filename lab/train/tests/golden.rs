//! The trainer's numerics, pinned. Trial ids hash `NUMERICS_VERSION`, so that results from code
//! that computes differently are never reused; this test is what makes that promise hold: when
//! it fails, the change altered what trials compute — bump `NUMERICS_VERSION` in
//! `lab/core/src/config/mod.rs` and update `GOLDEN` below with the values it prints.
//!
//! The corpus is generated (`common::synthetic_corpus`, not read from the repository, whose code
//! changes), and the tolerance (1e-4 relative) absorbs the rounding differences between SIMD
//! paths (AVX-512 and AVX2 matrix kernels sum in different orders) but not a change of formula.

mod common;

use codescale_core::record::CURVE_FILE;
use codescale_core::{
    CurvePoint, DataSpec, EvalSpec, ModelSpec, OptimizerSpec, RuntimeSpec, ScheduleSpec, TrialSpec, NUMERICS_VERSION,
};
use codescale_train::{train_trial, RunOptions};

/// (NUMERICS_VERSION, train loss after steps 1, 10, 20, 30, final validation loss).
const GOLDEN: (u32, [f64; 5]) =
    (6, [5.552307605743408, 4.752139091491699, 3.947157859802246, 3.8193180561065674, 3.803269204683602]);

#[test]
fn the_numerics_match_their_version() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = common::synthetic_corpus(tmp.path());
    let config = TrialSpec {
        data: DataSpec { language: Some("rust".into()), seq_len: Some(32), ..Default::default() },
        model: ModelSpec { name: Some("d32-l1".into()), ..Default::default() },
        optimizer: OptimizerSpec { batch_size: Some(8), ..Default::default() },
        schedule: ScheduleSpec { tokens: Some(30.0 * 8.0 * 32.0), warmup: Some(5.0), ..Default::default() },
        eval: EvalSpec { eval_tokens: Some(2048), eval_interval: Some(30), ..Default::default() },
        runtime: RuntimeSpec { threads: Some(2), ..Default::default() },
    }
    .resolve()
    .unwrap();
    let dir = tmp.path().join("trial");
    let record = train_trial(&dir, &config, &corpus, &RunOptions { quiet: true, ..Default::default() }).unwrap();
    let curve: Vec<CurvePoint> = codescale_table::read_rows(&dir.join(CURVE_FILE)).unwrap();
    let got = [
        curve[0].train_loss,
        curve[9].train_loss,
        curve[19].train_loss,
        curve[29].train_loss,
        record.metrics.val_loss.unwrap(),
    ];
    let (version, want) = GOLDEN;
    let close = got.iter().zip(&want).all(|(g, w)| (g - w).abs() <= 1e-4 * w.abs());
    assert!(
        close && version == NUMERICS_VERSION,
        "the trainer computes {got:?} at NUMERICS_VERSION {NUMERICS_VERSION}; pinned: {want:?} at version {version}.\n\
         If the change to the numerics is intended, bump NUMERICS_VERSION and set GOLDEN to ({}, {got:?}).",
        NUMERICS_VERSION + (version == NUMERICS_VERSION) as u32
    );
}
