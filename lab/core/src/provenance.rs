//! Where a result came from: code version, git commit, compiler, machine, time.

use std::process::Command;

use crate::record::Provenance;
pub use crate::time::now_rfc3339;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const RUSTC: &str = env!("CODESCALE_RUSTC");

/// The source tree this binary was built from, asked at run time so the dirty flag is current.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(env!("CARGO_MANIFEST_DIR")).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn git_commit() -> (String, bool) {
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    // Untracked files (runs/, corpus/) are ignored: only changes to tracked code count.
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    (commit, dirty)
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
    let (git_commit, git_dirty) = git_commit();
    Provenance {
        codescale_version: VERSION.to_string(),
        git_commit,
        git_dirty,
        rustc: RUSTC.to_string(),
        host: host(),
        started: now_rfc3339(),
        seed,
        ..Default::default()
    }
}
