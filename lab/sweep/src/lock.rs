//! One scheduler per sweep, for sure.
//!
//! `runs/<sweep>/lock` is held with an advisory `flock`: the kernel gives it to exactly one
//! process and takes it back when that process dies, even under `kill -9`, so two schedulers
//! started at the same instant on a stale lock cannot both win. The file also says who holds it
//! (pid, host, start) and its modification time is a heartbeat, renewed every
//! [`HEARTBEAT`] while the lock is held: on a shared filesystem whose `flock` does not reach
//! across hosts, a lock from another host counts as held until its heartbeat is older than
//! [`LEASE`].

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// How often a holder renews its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long a heartbeat from another host stays valid.
pub const LEASE: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    pub host: String,
    pub started: String,
}

impl Owner {
    pub fn me() -> Owner {
        Owner { pid: std::process::id(), host: codescale_core::provenance::host(), started: codescale_core::provenance::now_rfc3339() }
    }
}

/// A held lock; released (file removed, `flock` dropped) when dropped.
pub struct SweepLock {
    path: PathBuf,
    file: File,
    lost: Arc<AtomicBool>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl SweepLock {
    pub fn acquire(sweep_dir: &Path) -> Result<SweepLock> {
        std::fs::create_dir_all(sweep_dir)?;
        let path = sweep_dir.join("lock");
        let me = Owner::me();
        loop {
            let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).with_context(|| format!("opening {}", path.display()))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let owner = read_owner(&mut file);
                    bail!("{}", refusal(owner.as_ref(), &path));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e).with_context(|| format!("locking {}", path.display())),
            }
            // The holder before us may have removed the file between our open and our lock: then
            // we hold a lock on a file nobody else will open. Start again on the current one.
            if !same_file(&file, &path) {
                continue;
            }
            let previous = read_owner(&mut file);
            let fresh = file.metadata().and_then(|m| m.modified()).ok().and_then(|t| SystemTime::now().duration_since(t).ok()).is_some_and(|age| age < LEASE);
            if let Some(owner) = previous.as_ref().filter(|o| o.host != me.host && fresh) {
                // Held from another host whose filesystem may not share flocks with ours.
                bail!("{}", refusal(Some(owner), &path));
            }
            write_owner(&mut file, &me)?;
            let lost = Arc::new(AtomicBool::new(false));
            let stop = Arc::new((Mutex::new(false), Condvar::new()));
            let heartbeat = spawn_heartbeat(file.try_clone()?, path.clone(), me.clone(), lost.clone(), stop.clone());
            return Ok(SweepLock { path, file, lost, stop, heartbeat: Some(heartbeat) });
        }
    }

    /// Whether the lock was taken from us (by a scheduler on a host whose filesystem ignores
    /// our `flock`, after our heartbeat lapsed): the holder must stop starting trials.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for SweepLock {
    fn drop(&mut self) {
        {
            let (stopped, wake) = &*self.stop;
            *stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
            wake.notify_all();
        }
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
        // Remove while still holding the flock, so whoever opens the path next makes a new file.
        if !self.lost() {
            let _ = std::fs::remove_file(&self.path);
        }
        let _ = self.file.unlock();
    }
}

fn refusal(owner: Option<&Owner>, path: &Path) -> String {
    match owner {
        Some(o) => format!("another scheduler (pid {} on {}, since {}) is running this sweep; wait for it or stop it (lock: {})", o.pid, o.host, o.started, path.display()),
        None => format!("another scheduler is running this sweep; wait for it or stop it (lock: {})", path.display()),
    }
}

fn read_owner(file: &mut File) -> Option<Owner> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Written in place (not by rename): the `flock` belongs to this inode.
fn write_owner(file: &mut File, owner: &Owner) -> Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(&serde_json::to_vec(owner)?)?;
    file.sync_all()?;
    Ok(())
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Renews the file's modification time every [`HEARTBEAT`] and checks the lock is still ours.
fn spawn_heartbeat(mut file: File, path: PathBuf, me: Owner, lost: Arc<AtomicBool>, stop: Arc<(Mutex<bool>, Condvar)>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let (stopped, wake) = &*stop;
        let mut guard = stopped.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let (g, _) = wake.wait_timeout(guard, HEARTBEAT).unwrap_or_else(|e| e.into_inner());
            guard = g;
            if *guard {
                return;
            }
            let _ = file.set_modified(SystemTime::now());
            if !same_file(&file, &path) || read_owner(&mut file).is_some_and(|o| o != me) {
                eprintln!("warning: the sweep lock {} was taken over by another scheduler; no new trials will start here", path.display());
                lost.store(true, Ordering::SeqCst);
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_lock_is_taken_over_and_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        // A lock file left by a process that no longer exists (no flock held on it).
        let stale = Owner { pid: u32::MAX - 1, host: codescale_core::provenance::host(), started: "then".into() };
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
        let remote = Owner { pid: 1, host: "some-other-node".into(), started: "now".into() };
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
            let stale = Owner { pid: u32::MAX - 1, host: codescale_core::provenance::host(), started: "then".into() };
            std::fs::write(dir.path().join("lock"), serde_json::to_vec(&stale).unwrap()).unwrap();
            let children: Vec<_> = (0..2)
                .map(|_| {
                    std::process::Command::new(&exe)
                        .args(["--exact", "lock::tests::simultaneous_starts_on_a_stale_lock_never_both_win", "--nocapture", "--test-threads=1"])
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
            let spans: Vec<(u128, u128)> = log.lines().map(|l| l.split_once(' ').map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap())).unwrap()).collect();
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
