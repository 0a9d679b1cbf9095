//! Asking git about the source tree. `build.rs` includes this file by path, so the commit a
//! binary embeds and the one its tests check come from the same code.

use std::path::Path;
use std::process::Command;

/// What a build reads from the workspace root: a change elsewhere (sweeps, docs) leaves the
/// binary as it is, so it does not make the build dirty.
pub const BUILD_INPUTS: [&str; 3] = ["lab", "Cargo.toml", "Cargo.lock"];

/// `git -C dir <args>`'s trimmed output, `None` without git or outside a work tree.
pub fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        // `dir` alone says which repository; a hook's GIT_DIR must not point elsewhere.
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        // `git status` would otherwise refresh the index, whose mtime `build.rs` watches: every
        // build would then rerun the build script.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn head(dir: &Path) -> Option<String> {
    git(dir, &["rev-parse", "HEAD"])
}

/// The commit checked out at the workspace root `root`, and whether the build's inputs differ
/// from it: tracked changes, and new files git does not ignore (a module not yet added is code
/// too). `None` outside a git work tree.
pub fn state(root: &Path) -> Option<(String, bool)> {
    let commit = head(root)?;
    let changes = git(root, &[&["status", "--porcelain", "--"][..], &BUILD_INPUTS].concat())?;
    Some((commit, !changes.is_empty()))
}
