//! Exact deduplication by content hash and near-deduplication by MinHash with LSH banding,
//! on shingles of word tokens (as in BigCode's pipeline). Both keep the first document of a
//! group in the order they are given, so the result is deterministic.

use crate::error::InvalidValue;
use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// `[dedup]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupSpec {
    pub exact: Option<bool>,
    pub near: Option<bool>,
    pub jaccard: Option<f64>,
    pub shingle: Option<usize>,
    pub permutations: Option<usize>,
}

/// Resolved settings, recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DedupConfig {
    pub exact: bool,
    pub near: bool,
    /// Estimated Jaccard similarity of shingle sets at or above which a document is a near-duplicate.
    pub jaccard: f64,
    /// Words per shingle.
    pub shingle: usize,
    pub permutations: usize,
    /// LSH bands × rows ≤ permutations, chosen to balance misses and spurious candidates at `jaccard`.
    pub bands: usize,
    pub rows: usize,
}

impl DedupSpec {
    pub fn resolve(&self) -> Result<DedupConfig, InvalidValue> {
        let jaccard = self.jaccard.unwrap_or(0.85);
        if !(jaccard > 0.0 && jaccard <= 1.0) {
            return Err(InvalidValue(format!("`jaccard` must be in (0, 1], got {jaccard}")));
        }
        let shingle = self.shingle.unwrap_or(5);
        if shingle == 0 {
            return Err(InvalidValue("`shingle` must be at least 1".into()));
        }
        let permutations = self.permutations.unwrap_or(128);
        if !(16..=1024).contains(&permutations) {
            return Err(InvalidValue(format!("`permutations` must be in 16..=1024, got {permutations}")));
        }
        let (bands, rows) = optimal_bands(jaccard, permutations);
        Ok(DedupConfig {
            exact: self.exact.unwrap_or(true),
            near: self.near.unwrap_or(true),
            jaccard,
            shingle,
            permutations,
            bands,
            rows,
        })
    }
}

/// The (bands, rows) minimising the sum of the false-positive area below the threshold and the
/// false-negative area above it (datasketch's criterion, equal weights).
fn optimal_bands(threshold: f64, permutations: usize) -> (usize, usize) {
    let prob = |s: f64, b: usize, r: usize| 1.0 - (1.0 - s.powi(r as i32)).powi(b as i32);
    let integrate = |f: &dyn Fn(f64) -> f64, lo: f64, hi: f64| {
        let n = 200;
        let h = (hi - lo) / n as f64;
        (0..n).map(|i| f(lo + (i as f64 + 0.5) * h) * h).sum::<f64>()
    };
    let mut best = (f64::INFINITY, 1, permutations);
    for b in 1..=permutations {
        for r in 1..=permutations / b {
            let fp = integrate(&|s| prob(s, b, r), 0.0, threshold);
            let fneg = integrate(&|s| 1.0 - prob(s, b, r), threshold, 1.0);
            if fp + fneg < best.0 {
                best = (fp + fneg, b, r);
            }
        }
    }
    (best.1, best.2)
}

/// `true` for each document whose hash was already seen earlier in the list.
pub fn exact_duplicates(hashes: &[[u8; 32]]) -> Vec<bool> {
    let mut seen = HashSet::with_capacity(hashes.len());
    hashes.iter().map(|h| !seen.insert(*h)).collect()
}

/// `true` for each document that is a near-duplicate of an earlier document that was kept.
/// Greedy against kept documents only, so a chain a≈b≈c with a≉c keeps a and c.
pub fn near_duplicates(docs: &[&[u8]], cfg: &DedupConfig) -> Vec<bool> {
    let perms = Permutations::new(cfg.permutations);
    let signatures: Vec<Option<Vec<u32>>> = docs.par_iter().map(|d| signature(d, cfg.shingle, &perms)).collect();
    let mut buckets: HashMap<(usize, u64), Vec<usize>> = HashMap::new();
    let mut duplicate = vec![false; docs.len()];
    let needed = (cfg.jaccard * cfg.permutations as f64).ceil() as usize;
    for (i, sig) in signatures.iter().enumerate() {
        let Some(sig) = sig else { continue };
        let keys: Vec<(usize, u64)> =
            (0..cfg.bands).map(|b| (b, band_hash(&sig[b * cfg.rows..(b + 1) * cfg.rows]))).collect();
        let mut candidates: Vec<usize> = keys.iter().filter_map(|k| buckets.get(k)).flatten().copied().collect();
        candidates.sort_unstable();
        candidates.dedup();
        let is_dup = candidates.iter().any(|&j| {
            let other = signatures[j].as_ref().expect("kept documents have signatures");
            sig.iter().zip(other).filter(|(a, b)| a == b).count() >= needed
        });
        if is_dup {
            duplicate[i] = true;
        } else {
            keys.into_iter().for_each(|k| buckets.entry(k).or_default().push(i));
        }
    }
    duplicate
}

struct Permutations {
    a: Vec<u64>,
    b: Vec<u64>,
}

impl Permutations {
    fn new(n: usize) -> Permutations {
        // Fixed seed: signatures, hence the corpus, must not change between runs.
        let mut state = 0x5eed_c0de_5ca1_e000u64;
        let mut next = || splitmix(&mut state);
        let (mut a, mut b) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            a.push(next() | 1);
            b.push(next());
        }
        Permutations { a, b }
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mix(*state)
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

fn band_hash(rows: &[u32]) -> u64 {
    rows.iter().fold(0u64, |h, &r| mix(h.rotate_left(7) ^ r as u64))
}

/// Words are runs of ASCII alphanumerics, `_`, or non-ASCII bytes; punctuation separates them.
fn words(doc: &[u8]) -> Vec<u64> {
    doc.split(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80))
        .filter(|w| !w.is_empty())
        .map(fnv1a)
        .collect()
}

fn signature(doc: &[u8], shingle: usize, perms: &Permutations) -> Option<Vec<u32>> {
    let words = words(doc);
    if words.is_empty() {
        return None;
    }
    let width = shingle.min(words.len());
    let mut shingles: Vec<u64> =
        words.windows(width).map(|w| w.iter().fold(0u64, |h, &t| mix(h.rotate_left(5) ^ t))).collect();
    shingles.sort_unstable();
    shingles.dedup();
    let mut sig = vec![u64::MAX; perms.a.len()];
    for &s in &shingles {
        for ((m, &a), &b) in sig.iter_mut().zip(&perms.a).zip(&perms.b) {
            *m = (*m).min(a.wrapping_mul(s).wrapping_add(b));
        }
    }
    Some(sig.into_iter().map(|v| (v >> 32) as u32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_fit_the_threshold() {
        let cfg = DedupSpec::default().resolve().unwrap();
        assert!(cfg.bands * cfg.rows <= cfg.permutations);
        // The LSH curve's midpoint (1/b)^(1/r) sits near the threshold.
        let mid = (1.0 / cfg.bands as f64).powf(1.0 / cfg.rows as f64);
        assert!((mid - 0.85).abs() < 0.1, "{cfg:?} midpoint {mid}");
    }

    #[test]
    fn finds_near_copies_but_not_different_code() {
        let base: String = (0..200).map(|i| format!("let value_{i} = compute({i}, {});\n", i * 7)).collect();
        let edited = base.replace("value_17 ", "renamed_17 ");
        let other: String = (0..200).map(|i| format!("fn other_{i}(x: u32) -> u32 {{ x * {i} }}\n")).collect();
        let docs: Vec<&[u8]> = vec![base.as_bytes(), edited.as_bytes(), other.as_bytes()];
        let cfg = DedupSpec::default().resolve().unwrap();
        assert_eq!(near_duplicates(&docs, &cfg), vec![false, true, false]);
        assert_eq!(exact_duplicates(&[[1; 32], [2; 32], [1; 32]]), vec![false, false, true]);
    }
}
