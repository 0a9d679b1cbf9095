// Records what built codescale, for trial provenance: the compiler, and the commit and dirty
// flag of the source tree at build time (a binary built at one commit must not claim whatever
// the tree holds after a later pull).
#[path = "src/git.rs"]
mod git;

use std::path::{Path, PathBuf};

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CODESCALE_RUSTC={}", version.trim());

    // lab/core → the workspace root.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (commit, dirty) = git::state(&root).unwrap_or_else(|| ("unknown".into(), false));
    println!("cargo:rustc-env=CODESCALE_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=CODESCALE_BUILD_DIRTY={dirty}");

    // Run again when the answer can change: an edit to the build's inputs, or git moving HEAD
    // or the index (commit, checkout, pull, add). Only paths that exist: cargo reruns a build
    // script on every build while a watched path is missing.
    let mut watched: Vec<PathBuf> = git::BUILD_INPUTS.iter().map(|p| root.join(p)).collect();
    let branch = git::git(&root, &["symbolic-ref", "-q", "HEAD"]);
    for name in ["HEAD", "index", "packed-refs", "logs/HEAD"].into_iter().chain(branch.as_deref()) {
        // When git fails (it did once, transiently, mid-build), the plain `.git` layout is still
        // watched, so that the next commit reruns this script instead of keeping "unknown".
        let path = git::git(&root, &["rev-parse", "--git-path", name]).unwrap_or_else(|| format!(".git/{name}"));
        watched.push(root.join(path));
    }
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
