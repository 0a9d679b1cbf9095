#![allow(dead_code)]
//! Corpora for trainer tests: this repository's own Rust code (real, but it changes with every
//! edit), and generated code-like text for tests whose numbers depend on the corpus's contents.

use std::path::{Path, PathBuf};

use codescale_core::{DataSpec, EvalSpec, ModelSpec, OptimizerSpec, RuntimeSpec, ScheduleSpec, TrialConfig, TrialSpec};
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

/// Code-like text from a fixed generator: a few hundred kilobytes of small functions.
pub fn synthetic_source() -> String {
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
        text += &format!(
            "fn f{i}({a}: u32, {b}: u32) -> u32 {{\n    let r = {a} {op} {b} {op} {};\n    r.wrapping_mul({})\n}}\n\n",
            next() % 100,
            next() % 1000
        );
    }
    text
}

/// A byte-level corpus of [`synthetic_source`] in 8 kB files: the same shards whatever the
/// repository's code, so what a test measures on it moves only when the code under test does.
pub fn synthetic_corpus(dir: &Path) -> Corpus {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for (i, chunk) in synthetic_source().as_bytes().chunks(8192).enumerate() {
        std::fs::write(src.join(format!("f{i:03}.rs")), chunk).unwrap();
    }
    let recipe = dir.join("recipe.toml");
    std::fs::write(&recipe, format!("name = \"synthetic\"\nvalidation_fraction = 0.1\n[languages.rust]\nsources = [{{ dir = \"{}\", include = [\"*.rs\"] }}]\n", src.display())).unwrap();
    codescale_data::build(&recipe, &BuildOptions { out: Some(dir.join("corpus")), quiet: true, ..Default::default() })
        .unwrap()
}

pub fn config(steps: usize, extra: impl FnOnce(&mut TrialSpec)) -> TrialConfig {
    let mut spec = TrialSpec {
        data: DataSpec { language: Some("rust".into()), seq_len: Some(64), ..Default::default() },
        model: ModelSpec { name: Some("d64-l2".into()), ..Default::default() },
        optimizer: OptimizerSpec { batch_size: Some(16), lr: Some(3e-3.into()), ..Default::default() },
        schedule: ScheduleSpec { tokens: Some((steps * 16 * 64) as f64), warmup: Some(10.0), ..Default::default() },
        eval: EvalSpec { eval_tokens: Some(4096), ..Default::default() },
        runtime: RuntimeSpec { threads: Some(2), ..Default::default() },
    };
    extra(&mut spec);
    spec.resolve().unwrap()
}
