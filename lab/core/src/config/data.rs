//! The data section: which corpus, language and tokenizer a trial reads, and in windows of
//! how many tokens.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{bad, within, ConfigError};

spec_section! {
    /// The data keys a file may set.
    DataSpec {
        /// The corpus recipe (`corpora/local.toml` by default).
        corpus: String,
        language: String,
        /// `bytes` (default) or `bpe:<vocab>`.
        tokenizer: String,
        /// Tokens per training and evaluation window.
        seq_len: usize,
    }
}

/// What a trial reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSection {
    /// The corpus recipe, relative to the working directory when inside it, in one spelling
    /// whatever the spelling given (`./corpora/local.toml` is `corpora/local.toml`).
    pub corpus: String,
    pub language: String,
    pub tokenizer: String,
    pub seq_len: usize,
}

/// The corpus a trial was planned against: its manifest hash and its tokenizer's hash. Part of
/// the trial's id, so a trial is never reused on a corpus whose contents changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusKey {
    pub manifest: String,
    pub tokenizer: String,
}

impl DataSpec {
    pub fn resolve(&self) -> Result<DataSection, ConfigError> {
        let tokenizer = self.tokenizer.clone().unwrap_or_else(|| "bytes".into());
        vocab_size(&tokenizer).ok_or_else(|| {
            bad("tokenizer", format!("`{tokenizer}` is not `bytes` or `bpe:<vocab>` with 258 ≤ vocab ≤ 65536"))
        })?;
        let language = self.language.clone().ok_or_else(|| bad("language", "is required"))?;
        if language.is_empty() {
            return Err(bad("language", "is empty"));
        }
        let seq_len = self.seq_len.unwrap_or(128);
        within("seq_len", seq_len, super::limits::MAX_SEQ_LEN)?;
        let corpus = self.corpus.as_deref().map_or_else(
            || "corpora/local.toml".into(),
            |path| match std::env::current_dir() {
                Ok(cwd) => recipe_path(path, &cwd),
                Err(_) => path.to_string(),
            },
        );
        Ok(DataSection { corpus, language, tokenizer, seq_len })
    }
}

impl DataSection {
    pub fn vocab_size(&self) -> usize {
        vocab_size(&self.tokenizer).expect("validated tokenizer")
    }
}

/// Vocabulary size implied by a tokenizer name, including the end-of-document token.
pub fn vocab_size(tokenizer: &str) -> Option<usize> {
    if tokenizer == "bytes" {
        return Some(257);
    }
    let n: usize = tokenizer.strip_prefix("bpe:")?.parse().ok()?;
    (258..=65_536).contains(&n).then_some(n)
}

/// A recipe's path as trial configs spell it, so that the spelling of a path is not part of a
/// trial's id: lexically normal (`.` dropped, `..` resolved) and relative to `cwd`, where
/// recipes are looked up, when inside it; absolute otherwise. Symbolic links are followed only
/// for an absolute path that reaches `cwd` through one (`/home` linked to `/gpfs/home`), so
/// `corpora/local.toml` keeps the ids it always had.
pub(super) fn recipe_path(path: &str, cwd: &Path) -> String {
    let normal = lexically_normal(&cwd.join(path));
    let inside = normal.strip_prefix(cwd).map(Path::to_path_buf).ok().or_else(|| {
        let (file, cwd) = (normal.canonicalize().ok()?, cwd.canonicalize().ok()?);
        file.strip_prefix(cwd).map(Path::to_path_buf).ok()
    });
    inside.unwrap_or(normal).to_string_lossy().into_owned()
}

fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if matches!(normal.components().next_back(), Some(Component::Normal(_))) => {
                normal.pop();
            }
            part => normal.push(part),
        }
    }
    normal
}
