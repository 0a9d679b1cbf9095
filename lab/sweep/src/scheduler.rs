//! The local executor: trials in parallel, each with its share of the cores and (from the CLI)
//! in a process of its own ([`crate::child`]), largest first, that survives being killed at any
//! moment.
//!
//! Every state change is an atomic write of `trial.json`, so after a crash the folder tells
//! exactly what happened: `done` (and every other final status) is never run again, `running`
//! resumes from its checkpoint, `pending` starts. Each trial runs under its lease
//! ([`crate::trial`]), so a Slurm array task training the same sweep never trains it too.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{Context, Result};
use codescale_core::{BadInput, CorpusKey, ResultRow, Status, TrialConfig, TrialRecord};
use codescale_data::{BuildOptions, Corpus};
use codescale_train::Branch;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::asha::Asha;
use crate::child::{train_in_child, Reported};
use crate::index::RunsIndex;
use crate::lease::{Acquired, Lease};
use crate::lock::SweepLock;
use crate::plan::plan;
use crate::runs::{copy_trial, find_done_elsewhere, find_stale, Plan, SweepDir, SWEEP_FILE};
use crate::spec::Sweep;
use crate::tasks::TaskPlan;
use crate::trial::{Outcome, TrialRun, LEASE_FILE};

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub runs_root: PathBuf,
    /// Parallel trials (the sweep's `jobs`, else 1).
    pub jobs: Option<usize>,
    pub quiet: bool,
    /// Cores to share between the jobs (all by default).
    pub cores: Option<usize>,
    /// Run `failed` trials again even when their cause looked permanent.
    pub retry_failed: bool,
    /// Keep a finished trial whose configuration matches but whose corpus or code version
    /// differs, marked stale, instead of training it again.
    pub reuse_stale: bool,
    /// Run a plan estimated to take longer than [`CONFIRM_ABOVE_S`](crate::estimate::CONFIRM_ABOVE_S).
    pub confirmed: bool,
    /// The `codescale` program to train each trial in a child process of (`trial run
    /// --child`, see [`crate::child`]); without it (a library caller) trials are threads of
    /// this process, which slow each other when several run at once.
    pub trial_exe: Option<PathBuf>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            runs_root: PathBuf::from("runs"),
            jobs: None,
            quiet: false,
            cores: None,
            retry_failed: false,
            reuse_stale: false,
            confirmed: false,
            trial_exe: None,
        }
    }
}

pub struct Summary {
    pub dir: PathBuf,
    pub rows: Vec<ResultRow>,
    pub trained: usize,
    pub skipped: usize,
    /// What the run repaired or reused on the way, one line each.
    pub notes: Vec<String>,
}

impl Summary {
    pub fn count(&self, status: Status) -> usize {
        self.rows.iter().filter(|r| r.status == status.as_str()).count()
    }
    /// Every trial ended and none failed: the sweep's exit status is success.
    pub fn all_ok(&self) -> bool {
        let ended_ok = [Status::Done, Status::Diverged, Status::Pruned].map(Status::as_str);
        self.rows.iter().all(|r| ended_ok.contains(&r.status.as_str()))
    }
}

/// A sweep planned against its corpora.
pub struct Planned {
    /// Every trial, bound to its corpus: the ladder, then the held-out targets.
    pub trials: Vec<TrialConfig>,
    /// Ids of the targets among `trials`.
    pub targets: Vec<String>,
    pub corpora: Corpora,
    /// What planning left out and why (languages the corpus lacks, under
    /// `skip_missing_languages`).
    pub notes: Vec<String>,
}

/// Plans a sweep against its corpora: expands it, builds (or reuses) each corpus it needs and
/// binds every trial to its corpus, so ids cover the corpus contents. Nothing is written under
/// the runs folder; a language the corpus lacks is bad input naming the sweep file's line
/// (unless the sweep says `skip_missing_languages = true`).
pub fn plan_with_corpora(sweep: &Sweep, quiet: bool) -> Result<Planned> {
    let ladder = plan(sweep)?;
    let targets = crate::plan::plan_targets(sweep, &ladder)?;
    let ladder_len = ladder.len();
    let trials: Vec<TrialConfig> = ladder.into_iter().chain(targets).collect();
    let corpora = build_corpora(&trials, quiet)?;
    let mut bound = Vec::new();
    let mut target_ids = Vec::new();
    let mut missing = std::collections::BTreeSet::new();
    for (i, config) in trials.into_iter().enumerate() {
        match corpora.bind(config, sweep) {
            Ok(c) => {
                if i >= ladder_len {
                    target_ids.push(c.trial_id());
                }
                bound.push(c)
            }
            Err(Missing { language, error }) if sweep.skip_missing_languages => {
                missing.insert(format!("{language}: {error}"));
            }
            Err(Missing { error, .. }) => return Err(error.into()),
        }
    }
    let notes: Vec<String> = missing.into_iter().map(|m| format!("left out language {m}")).collect();
    if bound.is_empty() {
        return Err(BadInput(format!(
            "{}: no planned trial has a language the corpus holds ({})",
            sweep.path.display(),
            notes.join("; ")
        ))
        .into());
    }
    Ok(Planned { trials: bound, targets: target_ids, corpora, notes })
}

/// Plans the sweep and writes its folder (copy of the file, plan). A plan estimated to take
/// over a day is bad input unless `cfg.confirmed`; then nothing is written.
pub fn prepare(sweep: &Sweep, cfg: &RunConfig) -> Result<(SweepDir, Plan, Planned)> {
    let mut planned = plan_with_corpora(sweep, cfg.quiet)?;
    let (trials, targets) = (planned.trials.clone(), planned.targets.clone());
    let index = RunsIndex::refresh(&cfg.runs_root);
    planned.notes.extend(index.notes.iter().cloned());
    let (seconds, source) = crate::estimate::plan_seconds_with(&trials, &index);
    if seconds > crate::estimate::CONFIRM_ABOVE_S && !cfg.confirmed {
        return Err(BadInput(format!(
            "{}: the plan needs about {:.1} days on this machine (throughput from {source}); check `tokens` and the model sizes, or confirm with --yes",
            sweep.path.display(),
            seconds / 86_400.0
        ))
        .into());
    }
    let dir = SweepDir::new(&cfg.runs_root, &sweep.name);
    std::fs::create_dir_all(&dir.path).with_context(|| format!("creating {}", dir.path.display()))?;
    codescale_core::atomic::write_atomic(&dir.path.join(SWEEP_FILE), sweep.source.as_bytes())?;
    let plan = Plan { sweep: sweep.name.clone(), trials, targets };
    dir.write_plan(&plan)?;
    Ok((dir, plan, planned))
}

pub fn run_sweep(sweep: &Sweep, cfg: &RunConfig) -> Result<Summary> {
    let (dir, plan, Planned { corpora, notes: planning_notes, .. }) = prepare(sweep, cfg)?;
    let lock = SweepLock::acquire(&dir.path)?;
    let Triage { mut queue, skipped, notes: triage_notes } = triage(&dir, &plan, cfg)?;
    longest_first(&mut queue, &plan.trials);
    let notes = Mutex::new(planning_notes.into_iter().chain(triage_notes).collect::<Vec<_>>());

    let jobs = cfg.jobs.or(sweep.jobs).unwrap_or(1).max(1).min(queue.len().max(1));
    let cores = cfg.cores.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let threads = (cores / jobs).max(1);
    let asha = asha_of(sweep, &dir);
    let branches = plan_branches(sweep, &plan.trials, &cfg.runs_root);
    // Child processes train from a task plan of the queue, as Slurm tasks do: they plan nothing.
    let children = match &cfg.trial_exe {
        Some(exe) if !queue.is_empty() => {
            let task_plan =
                TaskPlan::of(&plan, &queue, &branches, sweep.early_stop.clone(), |c| Ok(corpora.get(c)?.dir.clone()))?;
            let entries: HashMap<usize, usize> = queue.iter().enumerate().map(|(entry, &i)| (i, entry)).collect();
            Some((exe, task_plan.write(&dir)?, entries))
        }
        _ => None,
    };

    let multi = MultiProgress::with_draw_target(if cfg.quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    let overall = multi.add(ProgressBar::new(queue.len() as u64));
    overall.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} trials · {msg} · ETA {eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    overall.set_prefix(sweep.name.clone());
    let queue = Mutex::new(Dispatch { queue: VecDeque::from(queue), busy: Vec::new() });
    let outcomes: Mutex<BTreeMap<&'static str, usize>> = Mutex::new(BTreeMap::new());
    let (trained, ended) = (AtomicUsize::new(0), AtomicUsize::new(0));

    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                if lock.lost() {
                    break;
                }
                let Some(i) = queue.lock().unwrap().next(&branches) else { break };
                let mut config = plan.trials[i].clone();
                config.runtime.threads = Some(threads);
                config.runtime.checkpoint_interval = config.checkpoint_every();
                let id = config.trial_id();
                let bar = multi.insert_before(&overall, ProgressBar::new(config.total_steps() as u64));
                bar.set_style(
                    ProgressStyle::with_template("  {prefix:16} {pos}/{len} steps [{bar:20}] {msg}")
                        .expect("template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(format!("{} {}", config.data.language, config.model.name));
                let outcome = match &children {
                    Some((exe, task_plan, entries)) => {
                        train_in_child(exe, &dir.path, task_plan, entries[&i], threads, cfg.retry_failed, &bar)
                    }
                    None => TrialRun {
                        dir: &dir,
                        asha: asha.as_ref(),
                        branch: branches[i].clone(),
                        retry_failed: cfg.retry_failed,
                        progress: Some(bar.clone()),
                        quiet: true,
                    }
                    .run(&config, || corpora.get(&config))
                    .map(|o| match o {
                        Outcome::Trained(record) => Reported::Trained(record.status),
                        Outcome::Ended(status) => Reported::Ended(status),
                        Outcome::Busy(owner) => {
                            Reported::Busy(owner.map_or("another process".into(), |o| o.describe()))
                        }
                    }),
                };
                let label = match outcome {
                    Ok(Reported::Trained(status)) => {
                        trained.fetch_add(1, Ordering::Relaxed);
                        status.as_str()
                    }
                    Ok(Reported::Ended(status)) => {
                        ended.fetch_add(1, Ordering::Relaxed);
                        status.as_str()
                    }
                    Ok(Reported::Busy(owner)) => {
                        notes.lock().unwrap().push(format!("trial {id} is being trained by {owner}; left to it"));
                        "busy elsewhere"
                    }
                    Err(e) => {
                        notes.lock().unwrap().push(format!("trial {id} could not be run: {e:#}"));
                        "not run"
                    }
                };
                queue.lock().unwrap().done(&branches[i]);
                bar.finish_and_clear();
                multi.remove(&bar);
                *outcomes.lock().unwrap().entry(label).or_default() += 1;
                overall.set_message(
                    outcomes.lock().unwrap().iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", "),
                );
                overall.inc(1);
            });
        }
    });
    overall.finish_and_clear();
    let mut notes = notes.into_inner().unwrap();
    if lock.lost() {
        notes.push("the sweep lock was taken over by another scheduler; this one stopped starting trials".into());
    }

    let rows = dir.write_results()?;
    Ok(Summary {
        dir: dir.path.clone(),
        rows,
        trained: trained.into_inner(),
        skipped: skipped + ended.into_inner(),
        notes,
    })
}

/// Orders `queue` (plan indices) by each trial's training compute, largest first, plan order
/// among equals. The big trials (held-out targets, each trunk's longest budget, which trains
/// the trunk and leaves its siblings only their cooldowns) then start while every job still has
/// work, and small ones fill the end, instead of one long trial on one core while the others
/// idle.
fn longest_first(queue: &mut [usize], trials: &[TrialConfig]) {
    let compute = |c: &TrialConfig| c.params().flops_per_token() * (c.tokens_per_step() * c.total_steps()) as f64;
    queue.sort_by(|&a, &b| compute(&trials[b]).total_cmp(&compute(&trials[a])));
}

/// The local executor's queue, in the order trials should start, and the WSD trunks its
/// running trials branch from.
struct Dispatch {
    queue: VecDeque<usize>,
    busy: Vec<PathBuf>,
}

impl Dispatch {
    /// The next trial to start: the first whose trunk no running trial branches from, so that a
    /// job never waits on the trunk's lock with its cores idle while another trunk could train;
    /// the first of all when every trunk left is busy.
    fn next(&mut self, branches: &[Option<Branch>]) -> Option<usize> {
        let free =
            self.queue.iter().position(|&i| branches[i].as_ref().is_none_or(|b| !self.busy.contains(&b.trunk_dir)));
        let i = self.queue.remove(free.unwrap_or(0))?;
        if let Some(b) = &branches[i] {
            self.busy.push(b.trunk_dir.clone());
        }
        Some(i)
    }

    fn done(&mut self, branch: &Option<Branch>) {
        if let Some(at) = branch.as_ref().and_then(|b| self.busy.iter().position(|t| *t == b.trunk_dir)) {
            self.busy.swap_remove(at);
        }
    }
}

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
        if let Some(done) = find_done_elsewhere(index, &id, &dir.path) {
            if copy_claimed(&done, &trial_dir, |_| {})? {
                skipped += 1;
                continue;
            }
        }
        if cfg.reuse_stale {
            if let Some((from, why)) = find_stale(index, config) {
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

/// The sweep's early stopping, deciding on the rungs under its runs folder.
pub fn asha_of(sweep: &Sweep, dir: &SweepDir) -> Option<Asha> {
    sweep.early_stop.clone().map(|rule| Asha::new(rule, dir.path.join(crate::asha::ASHA_FILE)))
}

/// The trunk each trial of the plan forks from (none when the sweep turns branching off).
pub fn plan_branches(sweep: &Sweep, trials: &[TrialConfig], runs_root: &Path) -> Vec<Option<Branch>> {
    if !sweep.branches {
        return vec![None; trials.len()];
    }
    let rungs = |c: &TrialConfig| sweep.early_stop.as_ref().map(|rule| crate::asha::rungs(rule, c)).unwrap_or_default();
    crate::branches::plan(trials, runs_root, rungs)
}

/// The corpora a plan needs, built or reused once per (recipe, tokenizer).
pub struct Corpora {
    built: BTreeMap<(String, String), Corpus>,
}

impl Corpora {
    pub fn get(&self, config: &TrialConfig) -> Result<&Corpus> {
        self.built.get(&(config.data.corpus.clone(), config.data.tokenizer.clone())).ok_or_else(|| {
            anyhow::anyhow!("corpus {} ({}) was not prepared", config.data.corpus, config.data.tokenizer)
        })
    }

    /// `config` bound to its corpus; a language the corpus lacks is bad input at the line of
    /// the sweep file that chose it.
    pub fn bind(&self, config: TrialConfig, sweep: &Sweep) -> Result<TrialConfig, Missing> {
        let corpus = self
            .get(&config)
            .map_err(|e| Missing { language: config.data.language.clone(), error: BadInput(format!("{e:#}")) })?;
        if !corpus.languages().iter().any(|l| l == &config.data.language) {
            let line = sweep.line_of_key("language").unwrap_or(1);
            let skipped = corpus
                .manifest
                .skipped
                .get(&config.data.language)
                .map(|why| format!("; the recipe skipped it: {why}"))
                .unwrap_or_default();
            let error = BadInput(format!(
                "{}:{line}: `language`: `{}` is not in corpus {} (it has: {}){skipped}",
                sweep.path.display(),
                config.data.language,
                config.data.corpus,
                corpus.languages().join(", ")
            ));
            return Err(Missing { language: config.data.language, error });
        }
        let key = CorpusKey { manifest: corpus.hash().to_string(), tokenizer: corpus.tokenizer_hash().to_string() };
        Ok(config.bound_to(key))
    }
}

/// A trial whose language its corpus lacks.
pub struct Missing {
    pub language: String,
    pub error: BadInput,
}

pub fn build_corpora(trials: &[TrialConfig], quiet: bool) -> Result<Corpora> {
    let mut built = BTreeMap::new();
    for c in trials {
        let key = (c.data.corpus.clone(), c.data.tokenizer.clone());
        if built.contains_key(&key) {
            continue;
        }
        let corpus =
            corpus_for(c, quiet).with_context(|| format!("corpus {} ({})", c.data.corpus, c.data.tokenizer))?;
        built.insert(key, corpus);
    }
    Ok(Corpora { built })
}

/// Builds or reuses the corpus a trial trains on (its recipe, with its tokenizer, in the default
/// folder); bad recipes become [`BadInput`].
pub fn corpus_for(config: &TrialConfig, quiet: bool) -> Result<Corpus> {
    let opts = BuildOptions { tokenizer: Some(config.data.tokenizer.clone()), quiet, ..Default::default() };
    codescale_data::build(Path::new(&config.data.corpus), &opts).map_err(codescale_data::CorpusError::into_anyhow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use codescale_core::{DataSpec, ModelSpec, OptimizerSpec, ScheduleSpec};

    fn branch(trunk: &str) -> Option<Branch> {
        Some(Branch { trunk_dir: PathBuf::from(trunk), eval_steps: Vec::new(), fork_steps: Vec::new() })
    }

    #[test]
    fn the_largest_trials_start_first_and_equals_keep_plan_order() {
        let trial = |model: &str, tokens: f64| {
            codescale_core::TrialSpec {
                data: DataSpec { language: Some("go".into()), seq_len: Some(16), ..Default::default() },
                model: ModelSpec { name: Some(model.into()), ..Default::default() },
                optimizer: OptimizerSpec { batch_size: Some(4), ..Default::default() },
                schedule: ScheduleSpec { tokens: Some(tokens), ..Default::default() },
                ..Default::default()
            }
            .resolve()
            .unwrap()
        };
        let trials = [
            trial("d32-l2", 1e4),
            trial("d128-l2", 1e4),
            trial("d32-l2", 2e4),
            trial("d32-l2", 1e4),
            trial("d128-l2", 2e4),
        ];
        let mut queue = vec![0, 1, 2, 3, 4];
        longest_first(&mut queue, &trials);
        assert_eq!(queue, [4, 1, 2, 0, 3]);
    }

    #[test]
    fn two_jobs_never_start_on_one_trunk_while_another_is_free() {
        // Plan order: three budgets of trunk a, three of trunk b, one trial without a trunk.
        let branches = [branch("a"), branch("a"), branch("a"), branch("b"), branch("b"), branch("b"), None];
        let mut d = Dispatch { queue: (0..7).collect(), busy: Vec::new() };
        assert_eq!(d.next(&branches), Some(0));
        assert_eq!(d.next(&branches), Some(3), "the second job skips to trunk b");
        d.done(&branches[0]);
        assert_eq!(d.next(&branches), Some(1), "trunk a is free again");
        assert_eq!(d.next(&branches), Some(6), "a and b busy: the lone trial");
        d.done(&branches[6]);
        assert_eq!(d.next(&branches), Some(2), "every trunk left is busy: the first in order");
        assert_eq!(d.busy.iter().filter(|t| t.as_path() == Path::new("a")).count(), 2);
        d.done(&branches[1]);
        d.done(&branches[3]);
        assert_eq!(d.next(&branches), Some(4));
    }
}
