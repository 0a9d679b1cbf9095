//! One trial of a sweep, as both executors run it (a thread of the local pool, a Slurm array
//! task): claim the trial's lease, train it with its ASHA rungs and cooldown branch, record how
//! it ended, release the lease.

use std::borrow::Borrow;
use std::path::Path;

use anyhow::Result;
use codescale_core::{BadInput, Status, TrialConfig, TrialRecord};
use codescale_data::Corpus;
use codescale_train::{Branch, RunOptions};
use indicatif::ProgressBar;

use crate::asha::Asha;
use crate::lease::{Acquired, Lease, Owner, LEASE_FILE};
use crate::plan::{corpus_for, plan_branches};
use crate::runs::{SweepDir, SWEEP_FILE};
use crate::spec::Sweep;
use crate::tasks::TaskPlan;

/// How a trial is run, besides its config.
pub struct TrialRun<'a> {
    pub dir: &'a SweepDir,
    pub asha: Option<&'a Asha>,
    pub branch: Option<Branch>,
    /// Train a `failed` trial again even when its cause looked permanent.
    pub retry_failed: bool,
    /// The bar to drive (the local pool's); without one the trainer makes its own unless quiet.
    pub progress: Option<ProgressBar>,
    pub quiet: bool,
}

pub enum Outcome {
    /// Trained (resumed, or started) to this record's status (boxed: a record is large).
    Trained(Box<TrialRecord>),
    /// Another process holds the trial's lease: it is being trained there.
    Busy(Option<Owner>),
    /// It had ended by the time we held its lease (another task finished it).
    Ended(Status),
}

impl TrialRun<'_> {
    /// Trains `config` unless another process holds it or it has ended. Errors and panics while
    /// training are recorded as `failed` (and returned as such); an error is returned only when
    /// the lease or the record cannot be read. `corpus` is asked for once the trial is ours.
    pub fn run<C: Borrow<Corpus>>(&self, config: &TrialConfig, corpus: impl FnOnce() -> Result<C>) -> Result<Outcome> {
        let trial_dir = self.dir.trial_dir(&config.trial_id());
        std::fs::create_dir_all(&trial_dir)?;
        let _lease = match Lease::acquire(&trial_dir.join(LEASE_FILE))? {
            Acquired::Held(lease) => lease,
            Acquired::Busy(owner) => return Ok(Outcome::Busy(owner)),
        };
        // What the caller saw may be stale: another task may have finished it since.
        let record = self.dir.record(config)?;
        if !record.needs_run(self.retry_failed) {
            return Ok(Outcome::Ended(record.status));
        }
        Ok(Outcome::Trained(Box::new(self.train(config, corpus))))
    }

    fn train<C: Borrow<Corpus>>(&self, config: &TrialConfig, corpus: impl FnOnce() -> Result<C>) -> TrialRecord {
        let trial_dir = self.dir.trial_dir(&config.trial_id());
        let on_rung = |tokens: f64, loss: f64| -> Result<bool> {
            match self.asha {
                Some(a) => a.report(config, tokens, loss),
                None => Ok(true),
            }
        };
        let opts = RunOptions {
            quiet: self.quiet,
            progress: self.progress.clone(),
            rungs: self.asha.map(|a| a.rungs(config)).unwrap_or_default(),
            on_rung: Some(&on_rung),
            branch: self.branch.clone(),
            init_from: config.model.init_from.as_ref().and_then(|id| crate::bases::locate_beside(&trial_dir, id)),
            ..Default::default()
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<TrialRecord> {
            let corpus = corpus()?;
            codescale_train::train_trial(&trial_dir, config, corpus.borrow(), &opts)
        }));
        // Bad input (a shard too small for the window, say) fails the same way every time; a
        // panic is a bug. Anything else (I/O, a corrupt corpus since repaired, a changed corpus)
        // may go away, so the next run tries again.
        let (error, retryable) = match result {
            Ok(Ok(record)) => return record,
            Ok(Err(e)) => (format!("{e:#}"), !codescale_core::is_bad_input(&e)),
            Err(panic) => (
                format!(
                    "panicked: {}",
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                ),
                false,
            ),
        };
        let mut record = TrialRecord::load(&trial_dir).unwrap_or_else(|_| TrialRecord::pending(config.clone()));
        record.fail(error, retryable);
        if let Err(e) = record.save(&trial_dir) {
            eprintln!("could not record the failure of trial {}: {e:#}", config.trial_id());
        }
        record
    }
}

/// How `codescale trial run` trains its trial, besides the plan: a Slurm array task gives none
/// of these; the local executor's child processes give all of them.
#[derive(Debug, Clone, Default)]
pub struct TaskOptions {
    /// Train a `failed` trial again even when its cause looked permanent.
    pub retry_failed: bool,
    pub quiet: bool,
    /// Threads to train with (default: what Slurm allocated, else every core).
    pub threads: Option<usize>,
    /// A built corpus folder to train from, as the parent already checked it is current; it must
    /// be the corpus the trial is planned against (manifest and tokenizer hash).
    pub corpus: Option<std::path::PathBuf>,
    /// The task plan the trial was handed ([`crate::tasks`]: a Slurm array's, or the local
    /// executor's for its child processes): the trial is its entry `index`, trained with the
    /// branch, rungs and corpus folder it names. Without one, `index` is into the sweep's
    /// current `plan.json`.
    pub plan: Option<std::path::PathBuf>,
    /// The bar to drive.
    pub progress: Option<ProgressBar>,
}

/// `codescale trial run <sweep_dir> --index N [--plan FILE]`, what each Slurm array task and each
/// of the local executor's child processes runs: the trial at index `index` of the task plan it
/// was handed (`opts.plan`), else of the sweep's current `plan.json` with the sweep's rungs and
/// branches. Returns the trial's id and how it went.
pub fn run_planned(sweep_dir: &Path, index: usize, opts: &TaskOptions) -> Result<(String, Outcome)> {
    if let Some(plan) = &opts.plan {
        return run_task(sweep_dir, plan, index, opts);
    }
    let dir = SweepDir::open(sweep_dir)?;
    let plan = dir.plan()?;
    let config = plan.trials.get(index).cloned().ok_or_else(|| {
        BadInput(format!("{} plans {} trials; there is no index {index}", sweep_dir.display(), plan.trials.len()))
    })?;
    let config = as_task(config, opts);
    // The same trunk and rungs as the local executor uses: the plan's, under the runs folder. A
    // plan written before it held them is completed from the sweep file, as then.
    let runs_root = sweep_dir.parent().unwrap_or(Path::new("."));
    let (branch, early_stop) = match plan.branches_under(runs_root) {
        Some(mut branches) => (branches.swap_remove(index), plan.early_stop.clone()),
        None => {
            let sweep = Sweep::load(&sweep_dir.join(SWEEP_FILE))?;
            (plan_branches(&sweep, &plan.trials, runs_root).swap_remove(index), sweep.early_stop)
        }
    };
    let asha = early_stop.map(|rule| Asha::in_sweep_dir(rule, &dir.path));
    let run = TrialRun {
        dir: &dir,
        asha: asha.as_ref(),
        branch,
        retry_failed: opts.retry_failed,
        progress: opts.progress.clone(),
        quiet: opts.quiet,
    };
    // A corpus given on the command line is checked before the trial is claimed: the wrong one
    // is a mistake in the command (exit 2), not a failure to record against the trial.
    let given = opts.corpus.as_deref().map(|path| open_planned_corpus(path, &config)).transpose()?;
    let corpus = || match given {
        Some(corpus) => Ok(corpus),
        None => corpus_for(&config, true),
    };
    let outcome = run.run(&config, corpus)?;
    Ok((config.trial_id(), outcome))
}

/// Entry `index` of the task plan at `plan_path`: nothing is planned and no corpus is built
/// here. A corpus folder that is missing, or not the corpus the trial was planned against,
/// fails the trial (not to be retried), naming both hashes.
fn run_task(sweep_dir: &Path, plan_path: &Path, index: usize, opts: &TaskOptions) -> Result<(String, Outcome)> {
    let dir = SweepDir::open(sweep_dir)?;
    let plan = TaskPlan::read(plan_path)?;
    let task = plan.task(plan_path, index)?;
    let config = as_task(task.config.clone(), opts);
    let asha = plan.early_stop.clone().map(|rule| Asha::in_sweep_dir(rule, &dir.path));
    let run = TrialRun {
        dir: &dir,
        asha: asha.as_ref(),
        branch: task.branch.clone(),
        retry_failed: opts.retry_failed,
        progress: opts.progress.clone(),
        quiet: opts.quiet,
    };
    let outcome = run.run(&config, || open_planned_corpus(&task.corpus, &config))?;
    Ok((config.trial_id(), outcome))
}

/// A planned config as a task trains it: with the threads it was given (else Slurm's) and
/// checkpoints on.
fn as_task(mut config: TrialConfig, opts: &TaskOptions) -> TrialConfig {
    config.runtime.threads = opts.threads.or_else(allocated_cpus);
    config.runtime.checkpoint_interval = config.checkpoint_every();
    config
}

/// The built corpus at `path`, if it is the one `config` was planned against (bad input naming
/// both hashes otherwise).
fn open_planned_corpus(path: &Path, config: &TrialConfig) -> Result<Corpus> {
    let corpus = Corpus::open(path).map_err(|e| BadInput(format!("corpus {}: {e:#}", path.display())))?;
    let key = codescale_core::CorpusKey {
        manifest: corpus.hash().to_string(),
        tokenizer: corpus.tokenizer_hash().to_string(),
    };
    match &config.corpus_key {
        Some(planned) if *planned == key => Ok(corpus),
        planned => Err(BadInput(format!(
            "corpus {} is not the corpus trial {} was planned against: it holds manifest {} (tokenizer {}), the plan names manifest {} (tokenizer {})",
            path.display(),
            config.trial_id(),
            key.manifest,
            key.tokenizer,
            planned.as_ref().map_or("none", |k| k.manifest.as_str()),
            planned.as_ref().map_or("none", |k| k.tokenizer.as_str()),
        ))
        .into()),
    }
}

/// CPUs Slurm gave this task (`SLURM_CPUS_PER_TASK`, else the job's CPUs on this node), the
/// threads its trainer should use; `None` outside Slurm.
fn allocated_cpus() -> Option<usize> {
    ["SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse().ok().filter(|&n: &usize| n > 0))
}
