//! A built corpus on disk: the manifest, the shards and the tokenizer that made them.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use crate::error::{bad, Result};
use crate::manifest::{Manifest, MANIFEST_FILE};
use crate::shards;
use crate::tokenize::Tokenizer;

/// Which shard of a language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Val,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }
}

pub struct Corpus {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Set by `build` when an up-to-date corpus was found and nothing was rebuilt.
    pub reused: bool,
    pub(crate) tokenizer: Tokenizer,
}

impl std::fmt::Debug for Corpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Corpus")
            .field("dir", &self.dir)
            .field("hash", &self.manifest.hash)
            .field("reused", &self.reused)
            .finish()
    }
}

impl Corpus {
    /// Opens a corpus directory written by `build`, checking that its shards are all there.
    pub fn open(dir: &Path) -> Result<Corpus> {
        let path = dir.join(MANIFEST_FILE);
        if !path.is_file() {
            return Err(bad(format!("{} is not a corpus directory (no {MANIFEST_FILE})", dir.display())));
        }
        let manifest: Manifest = codescale_core::atomic::read_json(&path)?;
        for l in manifest.languages.values() {
            for s in [&l.train, &l.val] {
                let file = dir.join(&s.shard);
                let len = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(u64::MAX);
                if len != 2 * s.tokens {
                    return Err(
                        anyhow!("{} is missing or truncated ({} tokens expected)", file.display(), s.tokens).into()
                    );
                }
            }
        }
        let tokenizer = match (crate::vocab_of(&manifest.tokenizer.name), &manifest.tokenizer.file) {
            (None, _) => Tokenizer::Bytes,
            (Some(vocab), Some(file)) => Tokenizer::load_bpe(&dir.join(file), vocab)?,
            (Some(_), None) => return Err(anyhow!("{}: BPE corpus without a tokenizer file", path.display()).into()),
        };
        Ok(Corpus { dir: dir.to_path_buf(), manifest, reused: false, tokenizer })
    }

    /// Checks every shard's bytes against the manifest's blake3; the first that differs is named.
    pub fn verify(&self) -> Result<()> {
        for (language, entry) in &self.manifest.languages {
            for (split, s) in [("train", &entry.train), ("val", &entry.val)] {
                let (_, hash) = shards::read(&self.dir.join(&s.shard))?;
                if hash != s.blake3 {
                    return Err(anyhow!(
                        "the {language} {split} shard {} does not match its manifest hash",
                        self.dir.join(&s.shard).display()
                    )
                    .into());
                }
            }
        }
        Ok(())
    }

    /// The token ids of a language's shard, checked against the manifest's blake3.
    pub fn shard(&self, language: &str, split: Split) -> Result<Vec<u16>> {
        let entry = self.manifest.split(language, split).ok_or_else(|| {
            bad(format!(
                "corpus {} has no language `{language}` (it has: {})",
                self.dir.display(),
                self.languages().join(", ")
            ))
        })?;
        let (ids, hash) = shards::read(&self.dir.join(&entry.shard))?;
        if hash != entry.blake3 {
            return Err(anyhow!(
                "{} does not match its manifest hash; rebuild the corpus",
                self.dir.join(&entry.shard).display()
            )
            .into());
        }
        Ok(ids)
    }

    /// Document bytes per token (end-of-document tokens included), for
    /// bits per byte = loss_nats / (bytes_per_token · ln 2). NaN for an unknown language.
    pub fn bytes_per_token(&self, language: &str, split: Split) -> f64 {
        match self.manifest.split(language, split) {
            Some(s) if s.tokens > 0 => s.bytes as f64 / s.tokens as f64,
            _ => f64::NAN,
        }
    }

    pub fn languages(&self) -> Vec<String> {
        self.manifest.languages.keys().cloned().collect()
    }

    /// The corpus hash that trial records carry.
    pub fn hash(&self) -> &str {
        &self.manifest.hash
    }

    pub fn tokenizer_hash(&self) -> &str {
        &self.manifest.tokenizer_hash
    }

    /// Embedding rows a model needs: 257 for bytes, `<vocab>` for `bpe:<vocab>`.
    pub fn vocab_size(&self) -> usize {
        self.manifest.tokenizer.vocab_size
    }

    pub fn eod_token(&self) -> u16 {
        self.manifest.tokenizer.eod_token
    }

    /// The tokenizer the shards were made with.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids of `text` with this corpus's tokenizer, without an end-of-document token.
    pub fn encode(&self, text: &str) -> Result<Vec<u16>> {
        self.tokenizer.encode(text.as_bytes())
    }

    /// Text of `ids`, end-of-document tokens shown as `<|endoftext|>`; for debugging and tests.
    pub fn decode(&self, ids: &[u16]) -> String {
        self.tokenizer.decode(ids)
    }
}
