//! `manifest.json`: what a corpus holds, how it was made, and the hash trials record.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::dedup::DedupConfig;
use crate::filters::FilterConfig;

/// Bumped when the pipeline's output for the same inputs changes, forcing rebuilds.
pub const FORMAT: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    /// blake3 of this manifest without `hash`, `build` and the machine-specific source paths:
    /// two builds with the same content and settings share it wherever they ran.
    pub hash: String,
    pub tokenizer: TokenizerInfo,
    pub tokenizer_hash: String,
    pub validation_fraction: f64,
    pub dedup: DedupConfig,
    pub languages: BTreeMap<String, LanguageEntry>,
    /// Languages of the recipe left out, with the reason (their sources are missing or empty).
    pub skipped: BTreeMap<String, String>,
    /// Documents of mixed sources whose language could not be told.
    pub unassigned: u64,
    pub build: BuildInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizerInfo {
    /// `bytes` or `bpe:<vocab>`.
    pub name: String,
    pub vocab_size: usize,
    pub eod_token: u16,
    /// `tokenizer.json` for BPE; none for bytes.
    pub file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageEntry {
    pub filters: FilterConfig,
    /// Input cap in bytes, before filtering; `None` when uncapped.
    pub max_bytes: Option<u64>,
    /// Documents and bytes read (after sampling, before filtering).
    pub input: Counts,
    /// Documents removed, by reason (`too_large`, …, `exact_duplicate`, `near_duplicate`).
    pub removed: BTreeMap<String, u64>,
    pub train: SplitEntry,
    pub val: SplitEntry,
    pub sources: Vec<SourceRecord>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub documents: u64,
    pub bytes: u64,
}

/// One shard. `tokens` counts the end-of-document tokens too (one per document), `bytes` only
/// document bytes, so bits per byte = loss_nats · tokens / (bytes · ln 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitEntry {
    pub shard: String,
    pub documents: u64,
    pub bytes: u64,
    pub tokens: u64,
    pub blake3: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub kind: String,
    /// As written in the recipe.
    pub location: String,
    /// Where it was found on this machine; `None` when missing.
    pub path: Option<String>,
    /// Files (or the one data file) matching the source's globs.
    pub listed: u64,
    /// Documents and bytes it contributed to this language's sample.
    pub documents: u64,
    pub bytes: u64,
}

/// Provenance and timings, outside the corpus hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// UTC, RFC 3339.
    pub created: String,
    /// Recipe text, effective tokenizer, code version and source listings (paths, sizes,
    /// mtimes): equal fingerprints mean a rebuild would produce the same corpus.
    pub fingerprint: String,
    pub code_version: String,
    pub recipe: String,
    pub stats: BuildStats,
    pub warnings: Vec<String>,
}

/// Wall time and input bytes of each pipeline stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildStats {
    /// Resolving locations and listing files (bytes: total size of the listed files).
    pub list: Stage,
    pub read: Stage,
    pub filter: Stage,
    pub dedup: Stage,
    pub train_tokenizer: Stage,
    pub tokenize: Stage,
    pub write: Stage,
    pub total_seconds: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub seconds: f64,
    pub bytes: u64,
}

impl Stage {
    pub fn mb_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes as f64 / 1e6 / self.seconds
        } else {
            f64::INFINITY
        }
    }
}

impl BuildStats {
    pub fn stages(&self) -> [(&'static str, Stage); 7] {
        [
            ("list", self.list),
            ("read", self.read),
            ("filter", self.filter),
            ("dedup", self.dedup),
            ("train_tokenizer", self.train_tokenizer),
            ("tokenize", self.tokenize),
            ("write", self.write),
        ]
    }
}

impl Manifest {
    /// The corpus hash of this manifest's content (see `hash`).
    pub fn content_hash(&self) -> String {
        let mut v = serde_json::to_value(self).expect("manifest serialises");
        let obj = v.as_object_mut().expect("object");
        obj.remove("hash");
        obj.remove("build");
        if let Some(serde_json::Value::Object(langs)) = obj.get_mut("languages") {
            for l in langs.values_mut() {
                l.as_object_mut().expect("object").remove("sources");
            }
        }
        let mut text = String::new();
        canonical(&v, &mut text);
        blake3::hash(text.as_bytes()).to_hex().to_string()
    }

    pub fn split(&self, language: &str, split: crate::Split) -> Option<&SplitEntry> {
        let l = self.languages.get(language)?;
        Some(match split {
            crate::Split::Train => &l.train,
            crate::Split::Val => &l.val,
        })
    }
}

/// JSON with object keys sorted, whatever map type serde_json was built with.
fn canonical(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("string"));
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A per-language table of what the corpus holds, for the end of `codescale corpus build`.
pub fn summary_table(m: &Manifest) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "corpus {} ({}), hash {}", m.name, m.tokenizer.name, &m.hash[..12.min(m.hash.len())]);
    let _ = writeln!(
        s,
        "{:<12} {:>8} {:>8} {:>8} {:>12} {:>10} {:>9} {:>8} {:>8}",
        "language", "read", "kept", "val", "train tok", "val tok", "MB", "B/tok", "removed"
    );
    let mut total = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    for (name, l) in &m.languages {
        let kept = l.train.documents + l.val.documents;
        let bytes = l.train.bytes + l.val.bytes;
        let tokens = l.train.tokens + l.val.tokens;
        let removed: u64 = l.removed.values().sum();
        let _ = writeln!(
            s,
            "{:<12} {:>8} {:>8} {:>8} {:>12} {:>10} {:>9.2} {:>8.3} {:>8}",
            name,
            l.input.documents,
            kept,
            l.val.documents,
            l.train.tokens,
            l.val.tokens,
            bytes as f64 / 1e6,
            bytes as f64 / tokens.max(1) as f64,
            removed
        );
        total.0 += l.input.documents;
        total.1 += kept;
        total.2 += l.val.documents;
        total.3 += l.train.tokens;
        total.4 += l.val.tokens;
        total.5 += bytes;
        total.6 += tokens;
        total.7 += removed;
    }
    let _ = writeln!(
        s,
        "{:<12} {:>8} {:>8} {:>8} {:>12} {:>10} {:>9.2} {:>8.3} {:>8}",
        "total",
        total.0,
        total.1,
        total.2,
        total.3,
        total.4,
        total.5 as f64 / 1e6,
        total.5 as f64 / total.6.max(1) as f64,
        total.7
    );
    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
    for l in m.languages.values() {
        for (r, n) in &l.removed {
            *reasons.entry(r).or_default() += n;
        }
    }
    let removed: Vec<String> = reasons.iter().filter(|(_, &n)| n > 0).map(|(r, n)| format!("{r} {n}")).collect();
    if !removed.is_empty() {
        let _ = writeln!(s, "removed: {}", removed.join(", "));
    }
    for (lang, why) in &m.skipped {
        let _ = writeln!(s, "skipped {lang}: {why}");
    }
    s
}

pub(crate) use codescale_core::time::now_rfc3339;
