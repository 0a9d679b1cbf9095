//! Where a result came from: code version, git commit, compiler, machine, time.

use std::path::Path;

use crate::record::Provenance;
pub use crate::time::now_rfc3339;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const RUSTC: &str = env!("CODESCALE_RUSTC");

/// The commit of the source tree this binary was built from ("unknown" when built outside git),
/// and whether the build's inputs had changes not in that commit (`build.rs`).
pub const BUILD_COMMIT: &str = env!("CODESCALE_BUILD_COMMIT");
pub fn build_dirty() -> bool {
    env!("CODESCALE_BUILD_DIRTY") == "true"
}

/// The HEAD of the source tree this binary was built from, asked now: after a pull it is no
/// longer the build's commit. `None` where that tree is gone (a compute node) or not in git.
pub fn source_head() -> Option<String> {
    crate::git::head(Path::new(env!("CARGO_MANIFEST_DIR")))
}

pub fn host() -> String {
    std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

/// Whether process `pid` exists on this host and can still run (a zombie cannot).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Provenance of a trial starting now; the trainer fills in the backend, device and corpus.
pub fn current(seed: u64) -> Provenance {
    Provenance { host: host(), started: now_rfc3339(), seed, ..built(BUILD_COMMIT, build_dirty(), source_head()) }
}

/// The code's part of a trial's provenance: the build's commit and dirty flag, and the source
/// tree's HEAD beside them only where it differs, so a record names the code that ran.
fn built(commit: &str, dirty: bool, head: Option<String>) -> Provenance {
    Provenance {
        codescale_version: VERSION.to_string(),
        git_commit: commit.to_string(),
        git_dirty: dirty,
        source_head: head.filter(|h| h != commit),
        rustc: RUSTC.to_string(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git;

    fn run_git(dir: &Path, args: &[&str]) {
        let args = [&["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"][..], args].concat();
        assert!(git::git(dir, &args).is_some(), "git {args:?}");
    }

    #[test]
    fn the_build_records_the_commit_it_was_built_from() {
        // What build.rs embeds is this repository's HEAD when the tests were built (cargo reruns
        // it after every commit), not a label asked for at run time.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        match git::head(&root) {
            Some(head) => assert_eq!(BUILD_COMMIT, head),
            None => assert_eq!(BUILD_COMMIT, "unknown"),
        }
    }

    #[test]
    fn state_names_the_commit_and_whether_the_build_inputs_changed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(git::state(root), None, "no repository: build.rs records \"unknown\"");

        std::fs::create_dir_all(root.join("lab/core")).unwrap();
        std::fs::write(root.join("lab/core/lib.rs"), "// v1\n").unwrap();
        std::fs::write(root.join("notes.md"), "notes\n").unwrap();
        run_git(root, &["init", "-q"]);
        run_git(root, &["add", "."]);
        run_git(root, &["commit", "-q", "-m", "v1"]);
        let head = git::head(root).unwrap();
        assert_eq!(head.len(), 40);
        assert_eq!(git::state(root), Some((head.clone(), false)));

        // Outside the build's inputs: the binary is the same, the build clean.
        std::fs::write(root.join("notes.md"), "more notes\n").unwrap();
        std::fs::write(root.join("scratch.txt"), "").unwrap();
        assert_eq!(git::state(root), Some((head.clone(), false)));
        // An edit to the code, or a new module not yet added, is a dirty build.
        std::fs::write(root.join("lab/core/lib.rs"), "// v2\n").unwrap();
        assert_eq!(git::state(root), Some((head.clone(), true)));
        run_git(root, &["checkout", "-q", "lab"]);
        std::fs::write(root.join("lab/core/new.rs"), "").unwrap();
        assert_eq!(git::state(root), Some((head, true)));
    }

    #[test]
    fn a_moved_source_tree_is_recorded_beside_the_build_commit() {
        let (built_at, pulled) = ("a".repeat(40), "b".repeat(40));
        let p = built(&built_at, false, Some(pulled.clone()));
        assert_eq!(
            (p.git_commit.as_str(), p.git_dirty, p.source_head.as_deref()),
            (built_at.as_str(), false, Some(pulled.as_str()))
        );
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["git_commit"], built_at.as_str());
        assert_eq!(json["source_head"], pulled.as_str());

        // Where the tree is still at the build's commit (or gone), the record says it once.
        for head in [Some(built_at.clone()), None] {
            let p = built(&built_at, true, head);
            assert_eq!(p.source_head, None);
            assert!(serde_json::to_value(&p).unwrap().get("source_head").is_none(), "left out of the record");
        }
        // Records from before the field, which lack it, read as before.
        let read: Provenance =
            serde_json::from_value(serde_json::to_value(built(&built_at, false, None)).unwrap()).unwrap();
        assert_eq!(read.source_head, None);
        assert_eq!(read.git_commit, built_at);
    }
}
