//! The trainer's numerics, pinned. Trial ids hash `NUMERICS_VERSION`, so that results from code
//! that computes differently are never reused; this test is what makes that promise hold: when
//! it fails, the change altered what trials compute — bump `NUMERICS_VERSION` in
//! `lab/core/src/config.rs` and update `GOLDEN` below with the values it prints.
//!
//! The corpus is generated here (not read from the repository, whose code changes), and the
//! tolerance (1e-4 relative) absorbs the rounding differences between SIMD paths (AVX-512 and
//! AVX2 matrix kernels sum in different orders) but not a change of formula.

use codescale_core::record::CURVE_FILE;
use codescale_core::{CurvePoint, TrialSpec, NUMERICS_VERSION};
use codescale_data::BuildOptions;
use codescale_train::{train_trial, RunOptions};

/// (NUMERICS_VERSION, train loss after steps 1, 10, 20, 30, final validation loss).
const GOLDEN: (u32, [f64; 5]) = (6, [5.552307605743408, 4.752139091491699, 3.947157859802246, 3.8193180561065674, 3.803269204683602]);

/// Code-like text from a fixed generator: a few hundred kilobytes of small functions.
fn synthetic_source() -> String {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let names = ["count", "total", "index", "value", "width", "offset", "limit", "step"];
    let ops = ["+", "-", "*", "^", "&", "|"];
    let mut text = String::new();
    for i in 0..6000 {
        let (a, b) = (names[(next() % 8) as usize], names[(next() % 8) as usize]);
        let op = ops[(next() % 6) as usize];
        text += &format!("fn f{i}({a}: u32, {b}: u32) -> u32 {{\n    let r = {a} {op} {b} {op} {};\n    r.wrapping_mul({})\n}}\n\n", next() % 100, next() % 1000);
    }
    text
}

#[test]
fn the_numerics_match_their_version() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for (i, chunk) in synthetic_source().as_bytes().chunks(8192).enumerate() {
        std::fs::write(src.join(format!("f{i:03}.rs")), chunk).unwrap();
    }
    let recipe = tmp.path().join("recipe.toml");
    std::fs::write(&recipe, format!("name = \"golden\"\nvalidation_fraction = 0.1\n[languages.rust]\nsources = [{{ dir = \"{}\", include = [\"*.rs\"] }}]\n", src.display())).unwrap();
    let corpus = codescale_data::build(&recipe, &BuildOptions { out: Some(tmp.path().join("corpus")), quiet: true, ..Default::default() }).unwrap();
    let config = TrialSpec {
        language: Some("rust".into()),
        model: Some("d32-l1".into()),
        seq_len: Some(32),
        batch_size: Some(8),
        tokens: Some(30.0 * 8.0 * 32.0),
        warmup: Some(5.0),
        eval_tokens: Some(2048),
        eval_interval: Some(30),
        threads: Some(2),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    let dir = tmp.path().join("trial");
    let record = train_trial(&dir, &config, &corpus, &RunOptions { quiet: true, ..Default::default() }).unwrap();
    let curve: Vec<CurvePoint> = codescale_table::read_rows(&dir.join(CURVE_FILE)).unwrap();
    let got = [curve[0].train_loss, curve[9].train_loss, curve[19].train_loss, curve[29].train_loss, record.metrics.val_loss.unwrap()];
    let (version, want) = GOLDEN;
    let close = got.iter().zip(&want).all(|(g, w)| (g - w).abs() <= 1e-4 * w.abs());
    assert!(
        close && version == NUMERICS_VERSION,
        "the trainer computes {got:?} at NUMERICS_VERSION {NUMERICS_VERSION}; pinned: {want:?} at version {version}.\n\
         If the change to the numerics is intended, bump NUMERICS_VERSION and set GOLDEN to ({}, {got:?}).",
        NUMERICS_VERSION + (version == NUMERICS_VERSION) as u32
    );
}
