//! The runs folder's index, so that looking a trial up across sweeps costs a lookup, not a read
//! of every `trial.json` under the runs root.
//!
//! Each sweep's folder holds `index.json`: for every trial folder under its `trials/`, what
//! other sweeps look up (the record's status, its configuration's id, its training throughput)
//! and the stamp of the `trial.json` it was read from (modification and change times, size and
//! inode). The index is a cache and is never trusted blindly: [`RunsIndex::refresh`] lists every
//! sweep's `trials/` and stats every `trial.json` (no reads), and reads again only the records
//! whose stamp differs from the index's or that the index lacks; an index that is missing,
//! unreadable or of another format is rebuilt from the records (a corrupt one with a note
//! naming it). Whatever wrote a record (a trainer, a Slurm task on another node, an older
//! binary, a hand edit) is seen, since every write of a record is an atomic rename, which
//! changes its inode and change time. The answers it gives are candidates that the caller's
//! lookups confirm from the record itself ([`RunsIndex::done_elsewhere`],
//! [`RunsIndex::stale`]), so an index can at worst cost a trial folder's read, never a wrong
//! copy.
//!
//! Any command that refreshes the index writes back the sweeps' files it had to change,
//! atomically (a temporary name, then a rename; a writer that loses a race leaves a complete
//! file that the next reader checks like any other); a folder it cannot write keeps its old
//! file, which only costs the next reader the same re-reads.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use codescale_core::record::TRIAL_FILE;
use codescale_core::{Status, TrialConfig, TrialRecord};
use serde::{Deserialize, Serialize};

use crate::runs::TRIALS_DIR;

/// A sweep's index: `runs/<sweep>/index.json`.
pub const INDEX_FILE: &str = "index.json";
/// The index's format; a file of another format is rebuilt.
const FORMAT: u32 = 1;

/// A `trial.json` as the index last saw it: modification time, change time (seconds and
/// nanoseconds), size and inode. An atomic rewrite makes a new inode and a new change time,
/// so a record rewritten since it was indexed never keeps its stamp.
type Stamp = [i64; 6];

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some([m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec(), m.size() as i64, m.ino() as i64])
}

/// What the index keeps of one trial folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    /// The record's status; none when `trial.json` could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
    /// For a finished trial: its configuration's id ([`TrialConfig::config_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config_id: Option<String>,
    /// For a finished trial: training FLOP/s per thread (with the head), as the estimate uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flops_per_s_per_thread: Option<f64>,
    stamp: Stamp,
}

impl Entry {
    fn read(trial_dir: &Path, stamp: Stamp) -> Entry {
        match TrialRecord::load(trial_dir) {
            Ok(r) => {
                let done = r.status == Status::Done;
                let rate = (done && r.metrics.tokens_per_s > 0.0).then(|| {
                    r.config.params().flops_per_token_with_head() * r.metrics.tokens_per_s
                        / r.provenance.threads.max(1) as f64
                });
                Entry {
                    status: Some(r.status),
                    config_id: done.then(|| r.config.config_id()),
                    flops_per_s_per_thread: rate,
                    stamp,
                }
            }
            Err(_) => Entry { status: None, config_id: None, flops_per_s_per_thread: None, stamp },
        }
    }

    fn done(&self) -> bool {
        self.status == Some(Status::Done)
    }
}

#[derive(Serialize, Deserialize)]
struct IndexFile {
    format: u32,
    trials: BTreeMap<String, Entry>,
}

/// One sweep's index, checked against its folder.
struct SweepIndex {
    dir: PathBuf,
    trials: BTreeMap<String, Entry>,
    /// It differs from the file on disk (or there is none).
    changed: bool,
}

/// Every sweep's index under a runs root, checked against the records ([`RunsIndex::refresh`]).
pub struct RunsIndex {
    sweeps: Vec<SweepIndex>,
    /// Trial id → the sweeps (positions in `sweeps`) that have a folder of it.
    by_id: HashMap<String, Vec<usize>>,
    /// Configuration id → the finished trials (sweep position, trial id) of it.
    by_config: HashMap<String, Vec<(usize, String)>>,
    /// What was repaired on the way: indexes that were unreadable and rebuilt.
    pub notes: Vec<String>,
    /// Records read because the index lacked them or they changed since (the rest were only
    /// stat'ed).
    pub reread: usize,
}

/// Counter that makes this process's temporary index files unique between threads.
static WRITES: AtomicU64 = AtomicU64::new(0);

impl RunsIndex {
    /// The index of every sweep under `runs_root` (folders with a `trials/`, in name order),
    /// checked against the records as they are now and written back where it changed. Never
    /// fails: a runs root that does not exist has no trials, an index that cannot be read is
    /// rebuilt, one that cannot be written is left as it was.
    pub fn refresh(runs_root: &Path) -> RunsIndex {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs_root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join(TRIALS_DIR).is_dir())
            .collect();
        dirs.sort();
        let mut notes = Vec::new();
        let mut reread = 0;
        let sweeps: Vec<SweepIndex> = dirs
            .into_iter()
            .map(|dir| {
                let (index, note, n) = refresh_sweep(dir);
                notes.extend(note);
                reread += n;
                index
            })
            .collect();
        for s in sweeps.iter().filter(|s| s.changed) {
            // A cache: a folder we may not write only costs the next reader the same reads.
            let _ = write(&s.dir.join(INDEX_FILE), &s.trials);
        }
        let mut by_id: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_config: HashMap<String, Vec<(usize, String)>> = HashMap::new();
        for (i, s) in sweeps.iter().enumerate() {
            for (id, entry) in &s.trials {
                by_id.entry(id.clone()).or_default().push(i);
                if let Some(config_id) = entry.config_id.as_ref().filter(|_| entry.done()) {
                    by_config.entry(config_id.clone()).or_default().push((i, id.clone()));
                }
            }
        }
        RunsIndex { sweeps, by_id, by_config, notes, reread }
    }

    /// Trial folders under the runs root.
    pub fn len(&self) -> usize {
        self.sweeps.iter().map(|s| s.trials.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A finished copy of trial `id` in a sweep other than the one at `except`, confirmed from
    /// its record: the same check as reading every sweep's folder, at the cost of the
    /// candidates' records only.
    pub fn done_elsewhere(&self, id: &str, except: &Path) -> Option<PathBuf> {
        self.by_id
            .get(id)?
            .iter()
            .map(|&i| &self.sweeps[i])
            .filter(|s| s.trials.get(id).is_some_and(Entry::done))
            .map(|s| s.dir.join(TRIALS_DIR).join(id))
            .find(|dir| {
                !dir.starts_with(except) && TrialRecord::load(dir).is_ok_and(|r| r.status == Status::Done && r.id == id)
            })
    }

    /// A finished trial with the same configuration as `config` but another corpus or code
    /// version (what `--reuse-stale` keeps), with what differs; candidates come from the index
    /// and are confirmed from their records.
    pub fn stale(&self, config: &TrialConfig) -> Option<(PathBuf, String)> {
        let wanted = config.config_id();
        self.by_config.get(&wanted)?.iter().map(|(i, id)| self.sweeps[*i].dir.join(TRIALS_DIR).join(id)).find_map(
            |dir| {
                let r = TrialRecord::load(&dir)
                    .ok()
                    .filter(|r| r.status == Status::Done && r.config.config_id() == wanted)?;
                Some((dir, crate::runs::stale_difference(&r, config)))
            },
        )
    }

    /// Training FLOP/s per thread of every finished trial that recorded its throughput.
    pub fn flops_per_s_per_thread(&self) -> impl Iterator<Item = f64> + '_ {
        self.sweeps.iter().flat_map(|s| s.trials.values().filter_map(|e| e.flops_per_s_per_thread))
    }
}

/// One sweep's index checked against its `trials/`: the records whose stamp changed (or that
/// the index lacks) read again. With a note when the file was there but unreadable, and how
/// many records were read.
fn refresh_sweep(dir: PathBuf) -> (SweepIndex, Option<String>, usize) {
    let path = dir.join(INDEX_FILE);
    let (mut old, mut changed, note) = match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (BTreeMap::new(), true, None),
        Err(e) => (
            BTreeMap::new(),
            true,
            Some(format!("{} was unreadable ({e}); rebuilt from the trial records", path.display())),
        ),
        Ok(bytes) => match serde_json::from_slice::<IndexFile>(&bytes) {
            Ok(file) if file.format == FORMAT => (file.trials, false, None),
            // Written by another version of the lab: rebuilt in ours.
            Ok(_) => (BTreeMap::new(), true, None),
            Err(e) => (
                BTreeMap::new(),
                true,
                Some(format!("{} was unreadable ({e}); rebuilt from the trial records", path.display())),
            ),
        },
    };
    let names: Vec<String> = std::fs::read_dir(dir.join(TRIALS_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let trials_dir = dir.join(TRIALS_DIR);
    // Stamps first, then reads: a record rewritten in between is kept under its older stamp,
    // which the next refresh sees as changed.
    let stamps: Vec<(String, Option<Stamp>)> = par_map(names, |name| {
        let stamp = stamp(&trials_dir.join(&name).join(TRIAL_FILE));
        (name, stamp)
    });
    let checked: Vec<(String, Option<Stamp>, Option<Entry>)> = stamps
        .into_iter()
        .map(|(name, stamp)| {
            let kept = old.remove(&name).filter(|e| Some(e.stamp) == stamp);
            (name, stamp, kept)
        })
        .collect();
    // Entries left in `old` are folders (or records) that are gone.
    changed |= !old.is_empty();
    let reread = checked.iter().filter(|(_, s, kept)| s.is_some() && kept.is_none()).count();
    changed |= reread > 0;
    let trials: BTreeMap<String, Entry> = par_map(checked, |(name, stamp, kept)| {
        let stamp = stamp?;
        let entry = kept.unwrap_or_else(|| Entry::read(&trials_dir.join(&name), stamp));
        Some((name, entry))
    })
    .into_iter()
    .flatten()
    .collect();
    (SweepIndex { dir, trials, changed }, note, reread)
}

/// `f` over `items` on every core, in order: a runs folder's stats and reads wait on the
/// filesystem as much as on the CPU.
fn par_map<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8);
    if threads == 1 || items.len() < 256 {
        return items.into_iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut items = items.into_iter();
    loop {
        let chunk: Vec<T> = items.by_ref().take(per).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            chunks.into_iter().map(|chunk| scope.spawn(move || chunk.into_iter().map(f).collect::<Vec<U>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("an index worker panicked")).collect()
    })
}

/// Writes an index file atomically, under a temporary name unique to this process and write
/// (so two threads never share one), named as [`codescale_core::atomic::remove_stale_temps`]
/// expects (`.<name>.<n>.<pid>.tmp`).
fn write(path: &Path, trials: &BTreeMap<String, Entry>) -> anyhow::Result<()> {
    use std::io::Write;
    #[derive(Serialize)]
    struct Out<'a> {
        format: u32,
        trials: &'a BTreeMap<String, Entry>,
    }
    let mut bytes = serde_json::to_vec(&Out { format: FORMAT, trials })?;
    bytes.push(b'\n');
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", WRITES.fetch_add(1, Ordering::Relaxed), std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
