//! One scheduler per sweep, for sure: `runs/<sweep>/lock` is a [`Lease`] held for the
//! scheduler's whole run, so two schedulers started at the same instant on a stale lock cannot
//! both win, and a killed scheduler's lock is taken over by the next.

use std::path::Path;

use anyhow::{bail, Result};

use crate::lease::{Acquired, Lease, Owner};

/// A held lock; released when dropped.
pub struct SweepLock(Lease);

impl SweepLock {
    pub fn acquire(sweep_dir: &Path) -> Result<SweepLock> {
        std::fs::create_dir_all(sweep_dir)?;
        let path = sweep_dir.join("lock");
        match Lease::acquire(&path)? {
            Acquired::Held(lease) => Ok(SweepLock(lease)),
            Acquired::Busy(owner) => bail!("{}", refusal(owner.as_ref(), &path)),
        }
    }

    /// Whether the lock was taken from us (by a scheduler on a host whose filesystem ignores
    /// our `flock`, after our heartbeat lapsed): the holder must stop starting trials.
    pub fn lost(&self) -> bool {
        self.0.lost()
    }
}

fn refusal(owner: Option<&Owner>, path: &Path) -> String {
    match owner {
        Some(o) => format!(
            "another scheduler ({}) is running this sweep; wait for it or stop it (lock: {})",
            o.describe(),
            path.display()
        ),
        None => format!("another scheduler is running this sweep; wait for it or stop it (lock: {})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::LEASE;
    use std::fs::{File, OpenOptions};
    use std::io::Write;
    use std::time::{Duration, SystemTime};

    #[test]
    fn stale_lock_is_taken_over_and_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        // A lock file left by a process that no longer exists (no flock held on it).
        let stale =
            Owner { pid: u32::MAX - 1, host: codescale_core::provenance::host(), started: "then".into(), job: None };
        std::fs::write(dir.path().join("lock"), serde_json::to_vec(&stale).unwrap()).unwrap();
        let lock = SweepLock::acquire(dir.path()).unwrap();
        // Held: a second acquisition (another open file description) is refused.
        let err = SweepLock::acquire(dir.path()).err().unwrap();
        assert!(err.to_string().contains(&format!("another scheduler (pid {}", std::process::id())), "{err}");
        drop(lock);
        assert!(!dir.path().join("lock").exists());
        drop(SweepLock::acquire(dir.path()).unwrap());
    }

    #[test]
    fn a_fresh_lock_from_another_host_is_respected_until_its_lease_lapses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let remote = Owner { pid: 1, host: "some-other-node".into(), started: "now".into(), job: None };
        std::fs::write(&path, serde_json::to_vec(&remote).unwrap()).unwrap();
        let err = SweepLock::acquire(dir.path()).err().unwrap();
        assert!(err.to_string().contains("on some-other-node"), "{err}");
        // Its heartbeat stopped long ago: the lease has lapsed.
        let old = SystemTime::now() - LEASE - Duration::from_secs(5);
        File::options().write(true).open(&path).unwrap().set_modified(old).unwrap();
        drop(SweepLock::acquire(dir.path()).unwrap());
    }

    /// Two processes started from one barrier on a stale lock, twenty times: never both hold it.
    /// Each child (this test binary, re-run with `CODESCALE_LOCK_CHILD`) waits for the barrier
    /// file, tries the lock, and on success logs its hold interval.
    #[test]
    fn simultaneous_starts_on_a_stale_lock_never_both_win() {
        if let Ok(dir) = std::env::var("CODESCALE_LOCK_CHILD") {
            return lock_child(Path::new(&dir));
        }
        let exe = std::env::current_exe().unwrap();
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let stale = Owner {
                pid: u32::MAX - 1,
                host: codescale_core::provenance::host(),
                started: "then".into(),
                job: None,
            };
            std::fs::write(dir.path().join("lock"), serde_json::to_vec(&stale).unwrap()).unwrap();
            let children: Vec<_> = (0..2)
                .map(|_| {
                    std::process::Command::new(&exe)
                        .args([
                            "--exact",
                            "lock::tests::simultaneous_starts_on_a_stale_lock_never_both_win",
                            "--nocapture",
                            "--test-threads=1",
                        ])
                        .env("CODESCALE_LOCK_CHILD", dir.path())
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .unwrap()
                })
                .collect();
            std::thread::sleep(Duration::from_millis(300));
            std::fs::write(dir.path().join("go"), b"").unwrap();
            for mut c in children {
                assert!(c.wait().unwrap().success());
            }
            let log = std::fs::read_to_string(dir.path().join("held")).unwrap_or_default();
            let spans: Vec<(u128, u128)> = log
                .lines()
                .map(|l| l.split_once(' ').map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap())).unwrap())
                .collect();
            assert!(!spans.is_empty(), "round {round}: nobody got the stale lock");
            for (i, a) in spans.iter().enumerate() {
                for b in &spans[i + 1..] {
                    assert!(a.1 <= b.0 || b.1 <= a.0, "round {round}: both schedulers held the lock ({a:?} and {b:?})");
                }
            }
        }
    }

    fn lock_child(dir: &Path) {
        let now = || SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_micros();
        while !dir.join("go").exists() {
            std::thread::sleep(Duration::from_micros(200));
        }
        if let Ok(lock) = SweepLock::acquire(dir) {
            let start = now();
            std::thread::sleep(Duration::from_millis(150));
            let end = now();
            drop(lock);
            let mut log = OpenOptions::new().create(true).append(true).open(dir.join("held")).unwrap();
            writeln!(log, "{start} {end}").unwrap();
        }
    }
}
