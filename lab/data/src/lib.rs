//! codescale-data: builds a code corpus from a recipe — sources → filters → exact and near
//! deduplication → train/validation split → tokenizer → `u16` shards and `manifest.json`.
//!
//! ```no_run
//! use codescale_data::{build, summary_table, BuildOptions, Split};
//! let corpus = build("corpora/local.toml".as_ref(), &BuildOptions::default())?;
//! println!("{}", summary_table(&corpus.manifest));
//! let ids = corpus.shard("python", Split::Train)?;
//! # Ok::<(), codescale_data::CorpusError>(())
//! ```
//!
//! Errors are [`CorpusError`]: `BadInput` (recipe, paths, sources — the CLI's exit code 2) or
//! `Io`. A build writes into a temporary directory beside the output and renames it into place,
//! so a failed build leaves nothing behind; rebuilding an unchanged recipe with unchanged sources
//! only re-lists the sources and returns the existing corpus (`Corpus::reused`).

mod corpus;
mod dedup;
mod error;
mod filters;
pub mod fim;
mod lang;
mod locate;
mod manifest;
pub mod pairs;
mod pipeline;
mod recipe;
mod shards;
mod sources;
mod split;
pub mod task;
mod tokenize;

use std::path::{Path, PathBuf};

pub use corpus::{Corpus, Split};
pub use dedup::DedupConfig;
pub use error::{CorpusError, Result};
pub use filters::FilterConfig;
pub use fim::Fim;
pub use lang::KNOWN as KNOWN_LANGUAGES;
pub use manifest::{
    summary_table, BuildInfo, BuildStats, Counts, LanguageEntry, Manifest, SourceRecord, SplitEntry, Stage,
    TokenizerInfo,
};
pub use tokenize::Tokenizer;

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Output directory; default [`default_dir`].
    pub out: Option<PathBuf>,
    /// `bytes` or `bpe:<vocab>`, overriding the recipe's `tokenizer`.
    pub tokenizer: Option<String>,
    /// No progress bars, stage timings or warnings on stderr (warnings stay in the manifest).
    pub quiet: bool,
    /// Rebuild even when the existing corpus is up to date.
    pub force: bool,
}

/// Builds the corpus of `recipe`, or returns the existing one when recipe, sources, tokenizer
/// and code are unchanged.
pub fn build(recipe: &Path, opts: &BuildOptions) -> Result<Corpus> {
    pipeline::build(recipe, opts)
}

/// `corpus/<recipe stem>-<tokenizer with ':' → '-'>`, relative to the working directory.
pub fn default_dir(recipe: &Path, tokenizer: &str) -> PathBuf {
    let stem = recipe.file_stem().map_or_else(|| "corpus".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from("corpus").join(format!("{stem}-{}", tokenizer.replace(':', "-")))
}

/// `Some(vocab)` for `bpe:<vocab>`, `None` for `bytes`.
pub(crate) fn vocab_of(tokenizer: &str) -> Option<usize> {
    tokenizer.strip_prefix("bpe:").and_then(|v| v.parse().ok())
}
