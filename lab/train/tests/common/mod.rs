#![allow(dead_code)]
//! A small real corpus for trainer tests: this repository's own Rust code.

use std::path::{Path, PathBuf};

use codescale_core::{TrialConfig, TrialSpec};
use codescale_data::{BuildOptions, Corpus};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Builds (once per test binary run, in a temp dir) a byte-level corpus of `lab/**/*.rs`.
pub fn corpus(dir: &Path) -> Corpus {
    let recipe = dir.join("recipe.toml");
    let text = format!(
        "name = \"self\"\nvalidation_fraction = 0.1\n[languages.rust]\nsources = [{{ dir = \"{}\", include = [\"**/*.rs\"] }}]\n",
        repo_root().join("lab").display()
    );
    std::fs::write(&recipe, text).unwrap();
    let opts = BuildOptions { out: Some(dir.join("corpus")), quiet: true, ..Default::default() };
    codescale_data::build(&recipe, &opts).unwrap()
}

pub fn config(steps: usize, extra: impl FnOnce(&mut TrialSpec)) -> TrialConfig {
    let mut spec = TrialSpec {
        language: Some("rust".into()),
        model: Some("d64-l2".into()),
        seq_len: Some(64),
        batch_size: Some(16),
        tokens: Some((steps * 16 * 64) as f64),
        lr: Some(3e-3.into()),
        warmup: Some(10.0),
        eval_tokens: Some(4096),
        threads: Some(2),
        ..Default::default()
    };
    extra(&mut spec);
    spec.resolve().unwrap()
}
