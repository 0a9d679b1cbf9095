//! Triage: which trials of a prepared sweep are left to train, for either executor, once what
//! is on disk is repaired and what other sweeps finished is reused.

use std::path::Path;

use anyhow::Result;
use codescale_core::{Status, TrialRecord};

use crate::index::RunsIndex;
use crate::lease::{Acquired, Lease, LEASE_FILE};
use crate::options::RunConfig;
use crate::runs::{copy_trial, Plan, SweepDir};

/// What a prepared sweep has left to train, once what is on disk is repaired and reused.
pub struct Triage {
    /// Plan indices of the trials to train, in plan order.
    pub queue: Vec<usize>,
    /// Trials that had ended, or were copied from another sweep.
    pub skipped: usize,
    pub notes: Vec<String>,
}

/// Sorts a prepared sweep's trials, for either executor, under the sweep lock: removes the
/// temporary files of killed writers, saves records recovered from unreadable files, skips
/// ended trials, copies finished ones from other sweeps of the runs folder (stale ones too
/// under `reuse_stale`), and queues the rest (failed ones as `needs_run` says).
pub fn triage(dir: &SweepDir, plan: &Plan, cfg: &RunConfig) -> Result<Triage> {
    let mut notes = Vec::new();
    let cleaned = codescale_core::atomic::remove_stale_temps(&dir.path);
    if cleaned > 0 {
        notes.push(format!("removed {cleaned} temporary file(s) left by a killed run"));
    }
    let mut queue = Vec::new();
    let mut skipped = 0;
    // Read once, and only when a trial is left to train: the other sweeps' trials, to copy
    // what one of them finished.
    let mut index: Option<RunsIndex> = None;
    for (i, config) in plan.trials.iter().enumerate() {
        let id = config.trial_id();
        let trial_dir = dir.trial_dir(&id);
        let (record, recovered) = dir.read_record(config)?;
        if recovered {
            record.save(&trial_dir)?;
            notes.push(format!("trial {id}: {}", record.notes.last().map(String::as_str).unwrap_or("recovered")));
        }
        if !record.needs_run(cfg.retry_failed) {
            skipped += 1;
            continue;
        }
        if record.status == Status::Failed {
            notes.push(format!(
                "trial {id} failed before ({}); retrying",
                record.error.as_deref().unwrap_or("no reason recorded")
            ));
        }
        let index = index.get_or_insert_with(|| {
            let index = RunsIndex::refresh(&cfg.runs_root);
            notes.extend(index.notes.iter().cloned());
            index
        });
        if let Some(done) = index.done_elsewhere(&id, &dir.path) {
            if copy_claimed(&done, &trial_dir, |_| {})? {
                skipped += 1;
                continue;
            }
        }
        if cfg.reuse_stale {
            if let Some((from, why)) = index.stale(config) {
                let stale = |r: &mut TrialRecord| {
                    r.id = id.clone();
                    r.config = config.clone();
                    r.stale = Some(why.clone());
                };
                if copy_claimed(&from, &trial_dir, stale)? {
                    notes.push(format!("trial {id}: kept a stale result ({why})"));
                    skipped += 1;
                    continue;
                }
            }
        }
        queue.push(i);
    }
    Ok(Triage { queue, skipped, notes })
}

/// [`copy_trial`] under the trial's lease; false (nothing copied) when a process holds it,
/// which is training the trial.
fn copy_claimed(from: &Path, to: &Path, edit: impl FnOnce(&mut TrialRecord)) -> Result<bool> {
    std::fs::create_dir_all(to)?;
    match Lease::acquire(&to.join(LEASE_FILE))? {
        Acquired::Held(_lease) => copy_trial(from, to, edit).map(|_| true),
        Acquired::Busy(_) => Ok(false),
    }
}
