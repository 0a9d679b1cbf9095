//! The local executor: trials in parallel, each with its share of the cores, that survives
//! being killed at any moment.
//!
//! Every state change is an atomic write of `trial.json`, so after a crash the folder tells
//! exactly what happened: `done` (and every other final status) is never run again, `running`
//! resumes from its checkpoint, `pending` starts.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use codescale_core::{ResultRow, Status, TrialConfig, TrialRecord};
use codescale_data::{BuildOptions, Corpus};
use codescale_train::RunOptions;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::asha::Asha;
use crate::lock::SweepLock;
use crate::plan::plan;
use crate::runs::{copy_trial, find_done_elsewhere, Plan, SweepDir, SWEEP_FILE};
use crate::spec::Sweep;

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub runs_root: PathBuf,
    /// Parallel trials (the sweep's `jobs`, else 1).
    pub jobs: Option<usize>,
    pub quiet: bool,
    /// Cores to share between the jobs (all by default).
    pub cores: Option<usize>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig { runs_root: PathBuf::from("runs"), jobs: None, quiet: false, cores: None }
    }
}

pub struct Summary {
    pub dir: PathBuf,
    pub rows: Vec<ResultRow>,
    pub trained: usize,
    pub skipped: usize,
}

impl Summary {
    pub fn count(&self, status: Status) -> usize {
        self.rows.iter().filter(|r| r.status == status.as_str()).count()
    }
    pub fn all_ok(&self) -> bool {
        self.count(Status::Failed) == 0
    }
}

/// Writes the sweep folder (copy of the file, plan) and returns it.
pub fn prepare(sweep: &Sweep, runs_root: &Path) -> Result<(SweepDir, Plan)> {
    let trials = plan(sweep)?;
    let dir = SweepDir::new(runs_root, &sweep.name);
    std::fs::create_dir_all(&dir.path).with_context(|| format!("creating {}", dir.path.display()))?;
    codescale_core::atomic::write_atomic(&dir.path.join(SWEEP_FILE), sweep.source.as_bytes())?;
    let plan = Plan { sweep: sweep.name.clone(), trials };
    dir.write_plan(&plan)?;
    Ok((dir, plan))
}

pub fn run_sweep(sweep: &Sweep, cfg: &RunConfig) -> Result<Summary> {
    let (dir, plan) = prepare(sweep, &cfg.runs_root)?;
    let _lock = SweepLock::acquire(&dir.path)?;
    let corpora = build_corpora(&plan.trials, cfg.quiet)?;

    let mut queue = VecDeque::new();
    let mut skipped = 0;
    for config in &plan.trials {
        let id = config.trial_id();
        let trial_dir = dir.trial_dir(&id);
        let record = dir.record(config)?;
        if record.status.is_final() {
            skipped += 1;
            continue;
        }
        if let Some(done) = find_done_elsewhere(&cfg.runs_root, &id, &dir.path) {
            copy_trial(&done, &trial_dir)?;
            skipped += 1;
            continue;
        }
        queue.push_back(config.clone());
    }

    let jobs = cfg.jobs.or(sweep.jobs).unwrap_or(1).max(1).min(queue.len().max(1));
    let cores = cfg.cores.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let threads = (cores / jobs).max(1);
    let asha = sweep.early_stop.clone().map(|rule| Asha::new(rule, dir.path.join("asha.json")));

    let multi = MultiProgress::with_draw_target(if cfg.quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() });
    let overall = multi.add(ProgressBar::new(queue.len() as u64));
    overall.set_style(ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} trials · {msg} · ETA {eta}").expect("template").progress_chars("=> "));
    overall.set_prefix(sweep.name.clone());
    let trained = queue.len();
    let queue = Arc::new(Mutex::new(queue));
    let outcomes: Mutex<BTreeMap<&'static str, usize>> = Mutex::new(BTreeMap::new());

    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let Some(mut config) = queue.lock().unwrap().pop_front() else { break };
                config.threads = Some(threads);
                config.checkpoint_interval = config.checkpoint_every();
                let bar = multi.insert_before(&overall, ProgressBar::new(config.total_steps() as u64));
                bar.set_style(ProgressStyle::with_template("  {prefix:16} {pos}/{len} steps [{bar:20}] {msg}").expect("template").progress_chars("=> "));
                bar.set_prefix(format!("{} {}", config.language, config.model));
                let status = run_one(&dir, &config, &corpora, asha.as_ref(), bar.clone());
                bar.finish_and_clear();
                multi.remove(&bar);
                *outcomes.lock().unwrap().entry(status.as_str()).or_default() += 1;
                overall.set_message(outcomes.lock().unwrap().iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", "));
                overall.inc(1);
            });
        }
    });
    overall.finish_and_clear();

    let rows = dir.write_results()?;
    Ok(Summary { dir: dir.path.clone(), rows, trained, skipped })
}

/// Runs one trial to a final status; an error or a panic is recorded as `failed`.
fn run_one(dir: &SweepDir, config: &TrialConfig, corpora: &Corpora, asha: Option<&Asha>, bar: ProgressBar) -> Status {
    let trial_dir = dir.trial_dir(&config.trial_id());
    let on_rung = |tokens: f64, loss: f64| -> Result<bool> {
        match asha {
            Some(a) => a.report(config, tokens, loss),
            None => Ok(true),
        }
    };
    let opts = RunOptions { quiet: true, progress: Some(bar), rungs: asha.map(|a| a.rungs(config)).unwrap_or_default(), on_rung: Some(&on_rung), ..Default::default() };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<TrialRecord> {
        let corpus = corpora.get(config)?;
        std::fs::create_dir_all(&trial_dir)?;
        codescale_train::train_trial(&trial_dir, config, corpus, &opts)
    }));
    let error = match result {
        Ok(Ok(record)) => return record.status,
        Ok(Err(e)) => format!("{e:#}"),
        Err(panic) => format!("panicked: {}", panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()),
    };
    let mut record = TrialRecord::load(&trial_dir).unwrap_or_else(|_| TrialRecord::pending(config.clone()));
    record.status = Status::Failed;
    record.error = Some(error);
    if let Err(e) = record.save(&trial_dir) {
        eprintln!("could not record the failure of trial {}: {e:#}", config.trial_id());
    }
    Status::Failed
}

/// The corpora a plan needs, built or reused once per (recipe, tokenizer).
pub struct Corpora {
    built: BTreeMap<(String, String), Result<Corpus, String>>,
}

impl Corpora {
    pub fn get(&self, config: &TrialConfig) -> Result<&Corpus> {
        match self.built.get(&(config.corpus.clone(), config.tokenizer.clone())) {
            Some(Ok(c)) => {
                anyhow::ensure!(
                    c.languages().iter().any(|l| l == &config.language),
                    "language `{}` is not in corpus {} (it has: {})",
                    config.language,
                    config.corpus,
                    c.languages().join(", ")
                );
                Ok(c)
            }
            Some(Err(e)) => anyhow::bail!("corpus {} ({}): {e}", config.corpus, config.tokenizer),
            None => anyhow::bail!("corpus {} was not prepared", config.corpus),
        }
    }
}

pub fn build_corpora(trials: &[TrialConfig], quiet: bool) -> Result<Corpora> {
    let mut built = BTreeMap::new();
    for c in trials {
        let key = (c.corpus.clone(), c.tokenizer.clone());
        if built.contains_key(&key) {
            continue;
        }
        // A recipe the user got wrong stops the sweep; anything else fails only its trials.
        let opts = BuildOptions { tokenizer: Some(c.tokenizer.clone()), quiet, ..Default::default() };
        let corpus = match build_corpus(Path::new(&c.corpus), &opts) {
            Err(e) if codescale_core::is_bad_input(&e) => return Err(e),
            other => other.map_err(|e| format!("{e:#}")),
        };
        built.insert(key, corpus);
    }
    Ok(Corpora { built })
}

/// Builds or reuses the corpus of a recipe for one tokenizer; bad recipes become [`BadInput`].
///
/// [`BadInput`]: codescale_core::BadInput
pub fn build_corpus(recipe: &Path, opts: &BuildOptions) -> Result<Corpus> {
    codescale_data::build(recipe, opts).map_err(|e| match e {
        codescale_data::CorpusError::BadInput(m) => codescale_core::BadInput(m).into(),
        codescale_data::CorpusError::Io(e) => e,
    })
}
