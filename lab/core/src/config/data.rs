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
        /// Fraction of training documents in fill-in-the-middle form (0: none).
        fim_rate: f64,
        /// Fraction of those in SPM rather than PSM order.
        fim_spm_rate: f64,
        /// Supervised fine-tuning data in place of raw windows: `functions`, instruction pairs
        /// the lab derives from the language's code (a function's doc comment and signature as
        /// the prompt, its body as the completion, the loss on the completion only).
        sft: Sft,
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
    /// Fill-in-the-middle: the fraction of training document fragments transformed (Bavarian et
    /// al. 2022). Left out of the canonical JSON at 0, so trials without FIM keep their ids.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub fim_rate: f64,
    /// The fraction of transformed fragments in SPM order; 0 without FIM.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub fim_spm_rate: f64,
    /// Fine-tuning on instruction pairs instead of pretraining windows; left out of the
    /// canonical JSON when unset.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sft: Option<Sft>,
}

/// What a supervised fine-tuning trial trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sft {
    /// A function's doc comment and signature → its body, from the language's files: pairs
    /// for training from the training files, for evaluation from the held-out ones.
    Functions,
}

impl Sft {
    pub fn as_str(self) -> &'static str {
        match self {
            Sft::Functions => "functions",
        }
    }
}

/// SPM's share of FIM unless a trial says otherwise: half, as StarCoder and Code Llama train.
pub const DEFAULT_FIM_SPM_RATE: f64 = 0.5;

fn is_zero(x: &f64) -> bool {
    *x == 0.0
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
        let fim_rate = self.fim_rate.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&fim_rate) {
            return Err(bad("fim_rate", format!("{fim_rate} is not a fraction in [0, 1]")));
        }
        if fim_rate > 0.0 && vocab_size(&tokenizer).is_some_and(|v| v + FIM_SENTINELS > 1 << 16) {
            return Err(bad(
                "fim_rate",
                format!("needs three ids after `{tokenizer}`'s vocabulary: at most bpe:65533"),
            ));
        }
        let fim_spm_rate = match self.fim_spm_rate {
            Some(_) if fim_rate == 0.0 => {
                return Err(bad("fim_spm_rate", "is set without `fim_rate`: no document is in FIM form to order"))
            }
            Some(r) if !(0.0..=1.0).contains(&r) => {
                return Err(bad("fim_spm_rate", format!("{r} is not a fraction in [0, 1]")))
            }
            Some(r) => r,
            None if fim_rate > 0.0 => DEFAULT_FIM_SPM_RATE,
            None => 0.0,
        };
        Ok(DataSection { corpus, language, tokenizer, seq_len, fim_rate, fim_spm_rate, sft: self.sft })
    }
}

impl DataSection {
    /// The model's vocabulary: the tokenizer's, and the three FIM sentinels when FIM is on.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer_vocab() + if self.fim() { FIM_SENTINELS } else { 0 }
    }

    /// The tokenizer's vocabulary, end-of-document token included.
    pub fn tokenizer_vocab(&self) -> usize {
        vocab_size(&self.tokenizer).expect("validated tokenizer")
    }

    /// Whether the trial trains on fill-in-the-middle documents (and is evaluated on infilling).
    pub fn fim(&self) -> bool {
        self.fim_rate > 0.0
    }
}

/// Ids FIM adds after the tokenizer's vocabulary: prefix, middle and suffix sentinels.
pub const FIM_SENTINELS: usize = 3;

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
