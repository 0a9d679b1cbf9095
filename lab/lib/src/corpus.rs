//! Stage 1, `codescale corpus build`: a tokenized corpus (train and validation shards per
//! language, a manifest, the tokenizer) from a recipe. The pipeline is [`codescale_data`]'s; this
//! module gives its errors the library's convention.

use std::path::Path;

use anyhow::Result;
pub use codescale_data::{default_dir, summary_table, BuildOptions, Corpus, Manifest, Split};

/// Builds the corpus of `recipe` into `opts.out` (default [`default_dir`], relative to the
/// working directory), or returns the one already there when recipe, sources, tokenizer and
/// code are unchanged. A wrong recipe or source is [`BadInput`](crate::BadInput) naming the file,
/// line and key.
///
/// ```
/// use codescale::corpus::{self, BuildOptions, Split};
///
/// let lab = codescale::example::Lab::new()?;
/// let opts = BuildOptions { out: Some(lab.path().join("corpus/mine")), quiet: true, ..Default::default() };
/// let corpus = corpus::build(&lab.recipe(), &opts)?;
/// assert_eq!(corpus.languages(), ["rust"]);
/// assert!(corpus.shard("rust", Split::Val)?.len() > 1000, "bytes of held-out Rust");
/// println!("{}\ncorpus {}", corpus::summary_table(&corpus.manifest), corpus.hash());
///
/// std::fs::write(lab.path().join("bad.toml"), "[languages.rust]\nsources = 3\n")?;
/// let error = corpus::build(&lab.path().join("bad.toml"), &opts).unwrap_err();
/// assert!(codescale::is_bad_input(&error), "{error:#}");
/// # anyhow::Ok(())
/// ```
pub fn build(recipe: &Path, opts: &BuildOptions) -> Result<Corpus> {
    codescale_data::build(recipe, opts).map_err(codescale_data::CorpusError::into_anyhow)
}
