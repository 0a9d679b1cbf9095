//! The Slurm executor: `sbatch --array` jobs whose tasks each run one planned trial
//! (`codescale trial run <dir> --index N`, [`crate::trial::run_planned`]) against the shared
//! runs folder, under the same lease, rung state and records as the local pool.
//!
//! Submitting plans the sweep, sorts its trials as the local executor does
//! ([`crate::scheduler::triage`]) and sends only the unfinished ones that no queued or running
//! task of the sweep's earlier arrays covers and no live process holds, so submitting again
//! (after a cancel, a lost node, or to re-attach) never queues a trial twice. The arrays
//! submitted are kept in `runs/<sweep>/slurm/jobs.json`, which [`follow`] watches.
//!
//! Tasks find their trial by plan index in the current `plan.json`, so an array queued before
//! the sweep was replanned trains whatever trial now sits at its index, and the submission
//! that replanned counts it as covered.

pub mod cluster;
pub mod follow;
pub mod script;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Result;
use codescale_core::BadInput;
use serde::{Deserialize, Serialize};

use crate::lease::Holder;
use crate::lock::SweepLock;
use crate::runs::{Plan, SweepDir};
use crate::scheduler::{prepare, triage, RunConfig, Triage};
use crate::spec::Sweep;
use crate::trial::LEASE_FILE;

pub use follow::follow;

const JOBS_FILE: &str = "jobs.json";

/// An array submitted for a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Array {
    pub job: String,
    /// The plan index of its task 0.
    pub offset: usize,
    /// Its `--array` value.
    pub tasks: String,
    pub submitted: String,
}

/// Every array submitted for the sweep of `dir`, oldest first.
pub fn arrays(dir: &SweepDir) -> Result<Vec<Array>> {
    let path = dir.path.join("slurm").join(JOBS_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    codescale_core::atomic::read_json(&path)
}

/// The plan indices the queued tasks of `dir`'s arrays will train (or are training).
pub fn queued_indices(dir: &SweepDir, sweep: &str) -> Result<BTreeSet<usize>> {
    let arrays = arrays(dir)?;
    let jobs: Vec<&str> = arrays.iter().map(|a| a.job.as_str()).collect();
    let tasks = cluster::queued(&script::job_name(sweep), &jobs)?;
    Ok(tasks.iter().filter_map(|t| plan_index(&arrays, &t.job, t.task)).collect())
}

/// The plan index task `task` of array `job` trains.
fn plan_index(arrays: &[Array], job: &str, task: usize) -> Option<usize> {
    arrays.iter().find(|a| a.job == job).map(|a| a.offset + task)
}

/// What a submission did.
pub struct Submission {
    pub dir: SweepDir,
    pub plan: Plan,
    /// The arrays submitted now (none when nothing was left to send).
    pub arrays: Vec<Array>,
    pub script: Option<PathBuf>,
    /// Trials sent to them.
    pub sent: usize,
    /// Unfinished trials left to the queued tasks of earlier arrays, or to a live process
    /// that holds them.
    pub covered: usize,
    /// Trials that had ended (or were copied from another sweep).
    pub skipped: usize,
    pub notes: Vec<String>,
}

/// Plans `sweep` (building its corpora here, once, rather than in every task) and submits its
/// unfinished trials as arrays whose tasks run `exe` (the `codescale` binary). At most
/// `[slurm] array_parallelism` tasks run at once (else `--jobs`, else the sweep's `jobs`);
/// arrays are cut under `max_array_size` (else the cluster's MaxArraySize) and, when throttled,
/// each waits for the one before so the throttle holds across them.
pub fn submit(sweep: &Sweep, cfg: &RunConfig, exe: &Path) -> Result<Submission> {
    let (dir, plan, planned) = prepare(sweep, cfg)?;
    let _lock = SweepLock::acquire(&dir.path)?;
    let Triage { queue, skipped, notes: triage_notes } = triage(&dir, &plan, cfg)?;
    // Trials that tasks finished since the last `--wait` reach results.parquet here, under the
    // lock, since readers (fit, report, export) never write it.
    dir.write_results()?;
    let mut notes = planned.notes;
    notes.extend(triage_notes);
    let queued = queued_indices(&dir, &sweep.name)?;
    let held = |i: usize| {
        matches!(
            crate::lease::holder(&dir.trial_dir(&plan.trials[i].trial_id()).join(LEASE_FILE)),
            Some(Holder::Live(_))
        )
    };
    let (covered, send): (Vec<usize>, Vec<usize>) = queue.into_iter().partition(|&i| queued.contains(&i) || held(i));
    let mut submission = Submission {
        dir,
        plan,
        arrays: Vec::new(),
        script: None,
        sent: send.len(),
        covered: covered.len(),
        skipped,
        notes,
    };
    if send.is_empty() {
        return Ok(submission);
    }

    let options = sweep.slurm.clone().unwrap_or_default();
    let max_array_size = match options.max_array_size {
        Some(n) => n,
        None => cluster::max_array_size()?,
    };
    let parallelism = options.array_parallelism.or(cfg.jobs).or(sweep.jobs);
    let command = script::Command { exe, submit_dir: &std::env::current_dir()?, retry_failed: cfg.retry_failed };
    let job_script = script::write(&submission.dir, &sweep.name, &options, &command)?;
    let mut all = arrays(&submission.dir)?;
    let mut after: Option<String> = None;
    for chunk in script::chunks(&send, max_array_size) {
        let tasks = script::array_spec(&chunk.tasks, parallelism);
        let job =
            cluster::sbatch(&job_script, &tasks, chunk.offset, after.as_deref().filter(|_| parallelism.is_some()))
                .map_err(|e| {
                    let message = format!("{e:#}");
                    if cluster::refused_request(&message) {
                        let why = message
                            .lines()
                            .filter_map(|l| l.rsplit("sbatch: error: ").next())
                            .map(str::trim)
                            .collect::<Vec<_>>()
                            .join("; ");
                        BadInput(format!("{}: `[slurm]`: the cluster refused the job ({why})", sweep.path.display()))
                            .into()
                    } else {
                        e
                    }
                })?;
        let array = Array {
            job: job.clone(),
            offset: chunk.offset,
            tasks,
            submitted: codescale_core::provenance::now_rfc3339(),
        };
        // Kept after every sbatch, so arrays submitted before a failure are still followed.
        all.push(array.clone());
        codescale_core::atomic::write_json(&submission.dir.path.join("slurm").join(JOBS_FILE), &all)?;
        submission.arrays.push(array);
        after = Some(job);
    }
    submission.script = Some(job_script);
    Ok(submission)
}

/// CPUs Slurm gave this task (`SLURM_CPUS_PER_TASK`, else the job's CPUs on this node), the
/// threads its trainer should use; `None` outside Slurm.
pub fn allocated_cpus() -> Option<usize> {
    ["SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse().ok().filter(|&n: &usize| n > 0))
}
