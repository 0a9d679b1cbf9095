//! The local corpus as `scripts/setup` leaves it. Its Rust is the same on every machine:
//! `corpora/local.toml` pins it to the crates of this project's Cargo.lock, which `scripts/setup`
//! fetches, and the README states the BLAKE3 of the Rust training shard that gives (the
//! quickstart's rust numbers in the README hold only while this does). It holds the seed paper's
//! seven languages, C# from the sources `scripts/setup` unpacks.

mod common;

use std::sync::OnceLock;

use common::{text, Lab};

#[test]
fn the_rust_corpus_is_the_one_the_readme_states() {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    const MARK: &str = "Rust training shard's BLAKE3 is `";
    let stated = readme
        .split_once(MARK)
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(hash, _)| hash.to_string())
        .expect("the README states the Rust training shard's BLAKE3");

    let manifest = local_manifest();
    let rust = &manifest["languages"]["rust"];
    let built = rust["train"]["blake3"].as_str().unwrap_or_default();
    assert!(
        !built.is_empty() && built.starts_with(&stated),
        "the Rust training shard built here hashes to {built:?} ({} documents, {} bytes read), the README states {stated}: \
         either this machine lacks some of Cargo.lock's crates (scripts/setup runs `cargo fetch`), or Cargo.lock changed \
         the crate set, and then the README's hash and its quickstart numbers are to be regenerated",
        rust["train"]["documents"],
        rust["input"]["bytes"],
    );
}

#[test]
fn the_seed_papers_seven_languages_are_in_the_local_corpus() {
    let manifest = local_manifest();
    for language in ["python", "java", "javascript", "typescript", "csharp", "go", "rust"] {
        let l = &manifest["languages"][language];
        let kept = l["train"]["bytes"].as_u64().unwrap_or(0) + l["val"]["bytes"].as_u64().unwrap_or(0);
        assert!(
            kept >= 1_000_000,
            "{language}: {kept} bytes after filtering and dedup (skipped: {}); scripts/setup installs its sources",
            manifest["skipped"]
        );
    }
}

/// The manifest of `corpora/local.toml` built into a scratch lab, built once for both tests.
fn local_manifest() -> &'static serde_json::Value {
    static MANIFEST: OnceLock<serde_json::Value> = OnceLock::new();
    MANIFEST.get_or_init(|| {
        let lab = Lab::new();
        let recipe = common::repo().join("corpora/local.toml");
        let out = lab.run(&["corpus", "build", recipe.to_str().unwrap(), "--out", "local", "--quiet"]);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_str(&std::fs::read_to_string(lab.path().join("local/manifest.json")).unwrap()).unwrap()
    })
}
