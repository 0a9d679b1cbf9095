//! Where a result came from: code version, git commit, compiler, machine, time.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::record::Provenance;

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

/// UTC time as RFC 3339, without a date library.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
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

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_is_rfc3339() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), 20);
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
