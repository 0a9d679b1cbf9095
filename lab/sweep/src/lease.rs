//! Leases: a file that says who holds something (a sweep's scheduler lock, a trial being
//! trained), held so that exactly one process wins it and a holder that died is noticed.
//!
//! A lease file is created with `O_EXCL`, so of two processes claiming a free lease at once
//! only one creates it, on any POSIX filesystem, shared ones included. Its holder keeps an
//! advisory `flock` on it: the kernel takes that back when the holder dies, even under
//! `kill -9` or `scancel`, so on one host (or a filesystem whose `flock` reaches across hosts)
//! a dead holder's lease is taken over at once and a live one never. The file says who holds
//! it (pid, host, Slurm job, start) and its modification time is a heartbeat, renewed every
//! [`HEARTBEAT`]: on a shared filesystem whose `flock` does not reach across hosts, a lease
//! from another host counts as held until its heartbeat is older than [`LEASE`].

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The lease a trial is trained under: `runs/<sweep>/trials/<id>/lease`.
pub const LEASE_FILE: &str = "lease";

/// How often a holder renews its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long a heartbeat from another host stays valid.
pub const LEASE: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    pub host: String,
    pub started: String,
    /// The Slurm job (`<array job>_<task>`, or the job id) the holder runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

impl Owner {
    pub fn me() -> Owner {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let job = match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
            (Some(array), Some(task)) => Some(format!("{array}_{task}")),
            _ => var("SLURM_JOB_ID"),
        };
        Owner {
            pid: std::process::id(),
            host: codescale_core::provenance::host(),
            started: codescale_core::provenance::now_rfc3339(),
            job,
        }
    }

    /// `pid 12 on node3 (Slurm job 40_2), since …`.
    pub fn describe(&self) -> String {
        let job = self.job.as_ref().map(|j| format!(" (Slurm job {j})")).unwrap_or_default();
        format!("pid {} on {}{job}, since {}", self.pid, self.host, self.started)
    }
}

/// A held lease; released (file removed, `flock` dropped) when dropped.
pub struct Lease {
    path: PathBuf,
    file: File,
    lost: Arc<AtomicBool>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

/// The outcome of [`Lease::acquire`].
pub enum Acquired {
    Held(Lease),
    /// Someone else holds it (who, when the file says so yet).
    Busy(Option<Owner>),
}

impl Lease {
    /// Claims the lease at `path` (its folder must exist): creates it, or takes it over from a
    /// holder that is gone.
    pub fn acquire(path: &Path) -> Result<Acquired> {
        let me = Owner::me();
        loop {
            let (mut file, created) = match OpenOptions::new().read(true).write(true).create_new(true).open(path) {
                Ok(file) => (file, true),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    match OpenOptions::new().read(true).write(true).open(path) {
                        Ok(file) => (file, false),
                        // Released between our two opens: claim it afresh.
                        Err(e) if e.kind() == ErrorKind::NotFound => continue,
                        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
                    }
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            };
            if created {
                // Ours by creation. Someone who opened it before we wrote our name may hold the
                // flock for a moment; seeing a fresh file without a name, they leave it to us.
                file.lock().with_context(|| format!("locking {}", path.display()))?;
            } else {
                match file.try_lock() {
                    Ok(()) => {}
                    Err(std::fs::TryLockError::WouldBlock) => return Ok(Acquired::Busy(read_owner(&mut file))),
                    Err(std::fs::TryLockError::Error(e)) => {
                        return Err(e).with_context(|| format!("locking {}", path.display()))
                    }
                }
                // The holder before us may have removed the file between our open and our lock:
                // then we hold a lock on a file nobody else will open. Start again.
                if !same_file(&file, path) {
                    continue;
                }
                let fresh = age(&file) < LEASE;
                match read_owner(&mut file) {
                    // Held from another host whose filesystem may not share flocks with ours.
                    Some(owner) if owner.host != me.host && fresh => return Ok(Acquired::Busy(Some(owner))),
                    // Just created by a claimant that has not written its name yet.
                    None if fresh => return Ok(Acquired::Busy(None)),
                    // Its holder is dead: the flock is free and its heartbeat (if remote) lapsed.
                    _ => {}
                }
            }
            write_owner(&mut file, &me)?;
            let lost = Arc::new(AtomicBool::new(false));
            let stop = Arc::new((Mutex::new(false), Condvar::new()));
            let heartbeat = spawn_heartbeat(file.try_clone()?, path.to_path_buf(), me, lost.clone(), stop.clone());
            return Ok(Acquired::Held(Lease {
                path: path.to_path_buf(),
                file,
                lost,
                stop,
                heartbeat: Some(heartbeat),
            }));
        }
    }

    /// Whether the lease was taken from us (by a process on a host whose filesystem ignores our
    /// `flock`, after our heartbeat lapsed).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for Lease {
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

/// A lease as someone who does not hold it sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Holder {
    /// Its holder is alive, as far as can be told without taking it.
    Live(Option<Owner>),
    /// Its holder is gone: a process of this host that no longer exists, or a heartbeat older
    /// than [`LEASE`] (a cancelled task, a lost node).
    Gone(Option<Owner>),
}

/// Who holds the lease at `path`, without touching it; `None` when there is no lease file.
pub fn holder(path: &Path) -> Option<Holder> {
    let mut file = File::open(path).ok()?;
    let owner = read_owner(&mut file);
    let fresh = age(&file) < LEASE;
    let dead_here = owner.as_ref().is_some_and(|o| {
        o.host == codescale_core::provenance::host() && !codescale_core::provenance::process_alive(o.pid)
    });
    Some(if fresh && !dead_here { Holder::Live(owner) } else { Holder::Gone(owner) })
}

/// Time since the last heartbeat (zero for one from the future: a clock ahead of ours).
fn age(file: &File) -> Duration {
    file.metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
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

/// Renews the file's modification time every [`HEARTBEAT`] and checks the lease is still ours.
fn spawn_heartbeat(
    mut file: File,
    path: PathBuf,
    me: Owner,
    lost: Arc<AtomicBool>,
    stop: Arc<(Mutex<bool>, Condvar)>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let (stopped, wake) = &*stop;
        let mut guard = stopped.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            // Released before this thread first waited (a lease held for a moment, as a copy's
            // is): the wake-up has come and gone, so waiting would hold the release up for a
            // whole heartbeat.
            if *guard {
                return;
            }
            let (g, _) = wake.wait_timeout(guard, HEARTBEAT).unwrap_or_else(|e| e.into_inner());
            guard = g;
            if *guard {
                return;
            }
            let _ = file.set_modified(SystemTime::now());
            if !same_file(&file, &path) || read_owner(&mut file).is_some_and(|o| o != me) {
                eprintln!("warning: {} was taken over by another process after our heartbeat lapsed", path.display());
                lost.store(true, Ordering::SeqCst);
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(a: Acquired) -> Lease {
        match a {
            Acquired::Held(l) => l,
            Acquired::Busy(o) => panic!("busy: {o:?}"),
        }
    }

    fn write(path: &Path, owner: &Owner, age: Duration) {
        std::fs::write(path, serde_json::to_vec(owner).unwrap()).unwrap();
        File::options().write(true).open(path).unwrap().set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn a_held_lease_is_busy_and_free_again_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lease");
        let lease = held(Lease::acquire(&path).unwrap());
        assert!(matches!(holder(&path), Some(Holder::Live(Some(o))) if o.pid == std::process::id()));
        // Another open file description (as another process would have) is refused.
        assert!(matches!(Lease::acquire(&path).unwrap(), Acquired::Busy(Some(o)) if o.pid == std::process::id()));
        drop(lease);
        assert!(!path.exists() && holder(&path).is_none());
        drop(held(Lease::acquire(&path).unwrap()));
    }

    /// A lease released before its heartbeat thread first waited (a copy's, held for a moment)
    /// is released at once, not after a heartbeat.
    #[test]
    fn a_lease_held_for_a_moment_is_released_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lease");
        let start = std::time::Instant::now();
        for _ in 0..20 {
            drop(held(Lease::acquire(&path).unwrap()));
        }
        assert!(start.elapsed() < HEARTBEAT / 2, "20 short leases took {:?}", start.elapsed());
    }

    #[test]
    fn a_dead_holder_on_this_host_is_gone_and_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lease");
        let dead = Owner {
            pid: u32::MAX - 1,
            host: codescale_core::provenance::host(),
            started: "then".into(),
            job: Some("7_1".into()),
        };
        write(&path, &dead, Duration::ZERO);
        assert_eq!(holder(&path), Some(Holder::Gone(Some(dead))), "a fresh heartbeat from a dead pid of this host");
        let lease = held(Lease::acquire(&path).unwrap());
        assert!(matches!(holder(&path), Some(Holder::Live(Some(o))) if o.pid == std::process::id()));
        drop(lease);
    }

    #[test]
    fn a_remote_holder_counts_until_its_heartbeat_lapses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lease");
        let remote = Owner { pid: 1, host: "some-other-node".into(), started: "now".into(), job: Some("40_2".into()) };
        write(&path, &remote, Duration::ZERO);
        assert!(
            matches!(Lease::acquire(&path).unwrap(), Acquired::Busy(Some(o)) if o.describe() == "pid 1 on some-other-node (Slurm job 40_2), since now")
        );
        write(&path, &remote, LEASE + Duration::from_secs(5));
        assert_eq!(holder(&path), Some(Holder::Gone(Some(remote))));
        drop(held(Lease::acquire(&path).unwrap()));
    }

    #[test]
    fn a_nameless_lease_is_busy_while_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lease");
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(Lease::acquire(&path).unwrap(), Acquired::Busy(None)));
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() - LEASE - Duration::from_secs(1))
            .unwrap();
        drop(held(Lease::acquire(&path).unwrap()));
    }

    /// Eight threads (each its own open file description, as processes have) claim one lease
    /// over and over: never two holders at once.
    #[test]
    fn concurrent_claims_never_both_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lease");
        let holders = std::sync::atomic::AtomicUsize::new(0);
        let wins = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..200 {
                        if let Acquired::Held(lease) = Lease::acquire(&path).unwrap() {
                            assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                            wins.fetch_add(1, Ordering::SeqCst);
                            std::thread::yield_now();
                            holders.fetch_sub(1, Ordering::SeqCst);
                            drop(lease);
                        }
                    }
                });
            }
        });
        assert!(wins.load(Ordering::SeqCst) > 0);
    }
}
