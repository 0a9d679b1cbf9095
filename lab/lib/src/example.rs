//! A lab in a temporary folder for trying the API: a corpus recipe over this repository's own
//! Rust sources and a sweep of six tiny trials that trains in seconds on a laptop CPU. The doc
//! examples of every stage and `examples/pipeline.rs` start from it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use codescale_sweep::{RunConfig, Sweep};

/// The corpus recipe: `lab/core` and `lab/fit` of this repository, read where they are (about
/// 220 kB of Rust, tokenized as bytes).
pub fn recipe_text() -> String {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab");
    format!("name = \"example\"\nvalidation_fraction = 0.1\n[languages.rust]\nsources = [{{ dir = {:?}, include = [\"core/src/**/*.rs\", \"fit/src/**/*.rs\"] }}]\n", lab.display().to_string())
}

/// The sweep: three widths × two budgets of one-layer models, enough points for a law
/// ([`codescale_fit`] needs five per group).
pub const SWEEP: &str = r#"name = "tiny"
corpus = "recipe.toml"
[base]
language = "rust"
seq_len = 32
batch_size = 8
eval_tokens = 1024
eval_interval = 4
warmup = 0.1
[parameters]
model = { values = ["d32-l1", "d48-l1", "d64-l1"] }
tokens = { values = [4096, 8192] }
"#;

/// `recipe.toml` and `tiny.toml` in a temporary folder that is removed when the lab is dropped.
pub struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    /// Writes the recipe and the sweep into a new temporary folder and makes it the working
    /// directory, where the sweep's relative paths point and corpora are built (`corpus/`), as
    /// the CLI's are: so a lab is for a program's main thread, one at a time.
    pub fn new() -> Result<Lab> {
        let dir = tempfile::tempdir().context("a temporary folder for the lab")?;
        std::fs::write(dir.path().join("recipe.toml"), recipe_text())?;
        std::fs::write(dir.path().join("tiny.toml"), SWEEP)?;
        std::env::set_current_dir(dir.path()).with_context(|| format!("entering {}", dir.path().display()))?;
        Ok(Lab { dir })
    }

    /// Keeps the folder (and what the stages wrote there) instead of removing it.
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn recipe(&self) -> PathBuf {
        self.path().join("recipe.toml")
    }

    /// The sweep file, loaded.
    pub fn sweep(&self) -> Result<Sweep> {
        Sweep::load(&self.path().join("tiny.toml"))
    }

    /// How to run the sweep here: runs under `<lab>/runs`, no progress bars.
    pub fn run_config(&self) -> RunConfig {
        RunConfig { runs_root: self.path().join("runs"), quiet: true, ..Default::default() }
    }
}
