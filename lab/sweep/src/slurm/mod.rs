//! The Slurm executor: `sbatch --array` jobs whose tasks each run one planned trial
//! (`codescale trial run <dir> --index N`, [`crate::trial::run_planned`]) against the shared
//! runs folder, under the same lease, rung state and records as the local pool.
//!
//! Submitting plans the sweep, sorts its trials as the local executor does
//! ([`crate::triage::triage`]) and sends only the unfinished ones that no queued or running
//! task of the sweep's earlier arrays covers and no live process holds, so submitting again
//! (after a cancel, a lost node, or to re-attach) never queues a trial twice. The arrays
//! submitted are kept in `runs/<sweep>/slurm/jobs.json`, which [`follow`] watches.
//!
//! Each submission writes the trials it sends, with their trunks, rungs and corpus folders, to
//! an immutable task plan named by its hash ([`crate::tasks`]); its arrays' tasks train their
//! entries of that file and plan nothing themselves. Replanning while arrays are queued (the
//! sweep file edited and run again) writes another task plan: the queued tasks still train the
//! trials they were submitted for, and the new submission counts only those trials as covered.

pub mod cluster;
pub mod follow;
pub mod script;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Result;
use codescale_core::BadInput;
use serde::{Deserialize, Serialize};

use crate::lease::{Holder, LEASE_FILE};
use crate::lock::SweepLock;
use crate::options::RunConfig;
use crate::plan::prepare;
use crate::runs::{Plan, SweepDir};
use crate::spec::Sweep;
use crate::tasks::{TaskPlan, PLANS_DIR};
use crate::triage::{triage, Triage};

pub use follow::follow;

const JOBS_FILE: &str = "jobs.json";

/// An array submitted for a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Array {
    pub job: String,
    /// The task plan its tasks train from, relative to the sweep's folder
    /// (`plans/<hash>.json`); arrays submitted before task plans have none and index `plan.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The task plan's index of its task 0.
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

/// The trials the queued tasks of `dir`'s arrays will train (or are training).
pub fn queued_trials(dir: &SweepDir, sweep: &str) -> Result<BTreeSet<String>> {
    let trials = ArrayTrials::read(dir)?;
    let tasks = cluster::queued(&script::job_name(sweep), &trials.jobs())?;
    Ok(tasks.iter().filter_map(|t| trials.of(&t.job, t.task)).collect())
}

/// Which trial each task of a sweep's arrays trains: its entry of its array's task plan.
pub(crate) struct ArrayTrials {
    pub arrays: Vec<Array>,
    /// Trial ids by task plan (as arrays name it); a plan that cannot be read (removed, or
    /// changed) is left out, so its tasks cover nothing and their trials are sent again (their
    /// leases keep two tasks from training one).
    plans: HashMap<String, Vec<String>>,
    /// The current plan's ids, for arrays from before task plans.
    current: Vec<String>,
}

impl ArrayTrials {
    pub fn read(dir: &SweepDir) -> Result<ArrayTrials> {
        let arrays = arrays(dir)?;
        let mut plans = HashMap::new();
        for name in arrays.iter().filter_map(|a| a.plan.as_ref()) {
            if !plans.contains_key(name) {
                if let Ok(plan) = TaskPlan::read(&dir.path.join(name)) {
                    plans.insert(name.clone(), plan.tasks.into_iter().map(|t| t.id).collect());
                }
            }
        }
        let current = if arrays.iter().any(|a| a.plan.is_none()) {
            dir.plan()?.trials.iter().map(|t| t.trial_id()).collect()
        } else {
            Vec::new()
        };
        Ok(ArrayTrials { arrays, plans, current })
    }

    pub fn jobs(&self) -> Vec<&str> {
        self.arrays.iter().map(|a| a.job.as_str()).collect()
    }

    /// The trial task `task` of array `job` trains.
    pub fn of(&self, job: &str, task: usize) -> Option<String> {
        let array = self.arrays.iter().find(|a| a.job == job)?;
        let ids = match &array.plan {
            Some(plan) => self.plans.get(plan)?,
            None => &self.current,
        };
        ids.get(array.offset + task).cloned()
    }
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
    let queued = queued_trials(&dir, &sweep.name)?;
    let held = |id: &str| matches!(crate::lease::holder(&dir.trial_dir(id).join(LEASE_FILE)), Some(Holder::Live(_)));
    let (covered, send): (Vec<usize>, Vec<usize>) = queue.into_iter().partition(|&i| {
        let id = plan.trials[i].trial_id();
        queued.contains(&id) || held(&id)
    });
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
    // Fine-tuning trials whose base is sent too go last, in arrays that wait for the bases'.
    let sent: BTreeSet<String> = send.iter().map(|&i| submission.plan.trials[i].trial_id()).collect();
    let (free, waiting): (Vec<usize>, Vec<usize>) = send
        .into_iter()
        .partition(|&i| submission.plan.trials[i].model.init_from.as_ref().is_none_or(|b| !sent.contains(b)));
    let send: Vec<usize> = free.iter().chain(&waiting).copied().collect();

    // The trials sent, as their tasks will train them: nothing is planned or built on a node.
    let branches =
        submission.plan.branches_under(&std::path::absolute(&cfg.runs_root)?).expect("prepare stores the branches");
    let task_plan = TaskPlan::of(&submission.plan, &send, &branches, |c| Ok(planned.corpora.get(c)?.dir.clone()))?;
    let plan_path = task_plan.write(&submission.dir)?;
    let plan_name = format!("{PLANS_DIR}/{}", plan_path.file_name().and_then(|n| n.to_str()).unwrap_or_default());

    let options = sweep.slurm.clone().unwrap_or_default();
    let max_array_size = match options.max_array_size {
        Some(n) => n,
        None => cluster::max_array_size()?,
    };
    let parallelism = options.array_parallelism.or(cfg.jobs).or(sweep.jobs);
    let command = script::Command {
        exe,
        submit_dir: &std::env::current_dir()?,
        plan: &plan_path,
        retry_failed: cfg.retry_failed,
    };
    let job_script = script::write(&submission.dir, &sweep.name, &options, &command)?;
    let mut all = arrays(&submission.dir)?;
    let mut after: Option<String> = None;
    let entries: Vec<usize> = (0..send.len()).collect();
    // Phase 0: every trial but the fine-tuning ones waiting on a base sent here; phase 1:
    // those, each array after every array of phase 0 (`afterany`: a base that failed leaves
    // its fine-tuning tasks to fail "not done", retried by the next submission, instead of
    // pending for ever).
    let mut bases: Vec<String> = Vec::new();
    for (phase, entries) in [&entries[..free.len()], &entries[free.len()..]].into_iter().enumerate() {
        let mut jobs = Vec::new();
        for chunk in script::chunks(entries, max_array_size) {
            let tasks = script::array_spec(&chunk.tasks, parallelism);
            let mut deps: Vec<String> = if phase == 1 { bases.clone() } else { Vec::new() };
            // Throttled arrays each wait for the one before, so the throttle holds across them.
            deps.extend(after.clone().filter(|_| parallelism.is_some()));
            deps.dedup();
            let depends = (!deps.is_empty()).then(|| deps.join(":"));
            let job = cluster::sbatch(&job_script, &tasks, chunk.offset, depends.as_deref()).map_err(|e| {
                let message = format!("{e:#}");
                if cluster::refused_request(&message) {
                    let why = message
                        .lines()
                        .filter_map(|l| l.rsplit("sbatch: error: ").next())
                        .map(str::trim)
                        .collect::<Vec<_>>()
                        .join("; ");
                    BadInput(format!("{}: `[slurm]`: the cluster refused the job ({why})", sweep.path.display())).into()
                } else {
                    e
                }
            })?;
            let array = Array {
                job: job.clone(),
                plan: Some(plan_name.clone()),
                offset: chunk.offset,
                tasks,
                submitted: codescale_core::provenance::now_rfc3339(),
            };
            // Kept after every sbatch, so arrays submitted before a failure are still followed.
            all.push(array.clone());
            codescale_core::atomic::write_json(&submission.dir.path.join("slurm").join(JOBS_FILE), &all)?;
            submission.arrays.push(array);
            jobs.push(job.clone());
            after = Some(job);
        }
        if phase == 0 {
            bases = jobs;
        }
    }
    submission.script = Some(job_script);
    Ok(submission)
}
