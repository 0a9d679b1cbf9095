//! One scheduler per sweep: `runs/<sweep>/lock` holds the owner's pid and host. A lock whose
//! process is gone (killed with -9, machine rebooted) is stale and taken over.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Owner {
    pid: u32,
    host: String,
    started: String,
}

pub struct SweepLock {
    path: PathBuf,
}

impl SweepLock {
    pub fn acquire(sweep_dir: &Path) -> Result<SweepLock> {
        std::fs::create_dir_all(sweep_dir)?;
        let path = sweep_dir.join("lock");
        let me = Owner { pid: std::process::id(), host: codescale_core::provenance::host(), started: codescale_core::provenance::now_rfc3339() };
        let body = serde_json::to_vec(&me)?;
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                f.write_all(&body)?;
                f.sync_all()?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner: Option<Owner> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
                if let Some(owner) = owner.filter(|o| o.host == me.host && o.pid != me.pid && alive(o.pid)) {
                    bail!(
                        "another scheduler (pid {} on {}, since {}) is running this sweep; wait for it or stop it (lock: {})",
                        owner.pid,
                        owner.host,
                        owner.started,
                        path.display()
                    );
                }
                // Stale: its process is gone. Take it over.
                codescale_core::atomic::write_atomic(&path, &body)?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(SweepLock { path })
    }
}

impl Drop for SweepLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry but will never run again.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_lock_is_taken_over_and_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        // A lock left by a process that no longer exists.
        let stale = Owner { pid: u32::MAX - 1, host: codescale_core::provenance::host(), started: "then".into() };
        std::fs::write(dir.path().join("lock"), serde_json::to_vec(&stale).unwrap()).unwrap();
        let lock = SweepLock::acquire(dir.path()).unwrap();
        drop(lock);
        assert!(!dir.path().join("lock").exists());

        // A lock held by a live process (pid 1 is always there).
        let live = Owner { pid: 1, host: codescale_core::provenance::host(), started: "now".into() };
        std::fs::write(dir.path().join("lock"), serde_json::to_vec(&live).unwrap()).unwrap();
        let err = SweepLock::acquire(dir.path()).err().unwrap();
        assert!(err.to_string().contains("another scheduler (pid 1"), "{err}");
    }
}
