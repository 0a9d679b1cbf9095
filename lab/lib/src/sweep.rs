//! Stage 2, `codescale sweep plan|run|status`: a sweep file expanded into trials bound to their
//! corpora, what that plan costs, and its trials trained by the local executor. The machinery
//! (planning, branches, leases, early stopping, the Slurm executor) is [`codescale_sweep`]'s.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use codescale_core::{ResultRow, TrialConfig};
use codescale_sweep::estimate;
pub use codescale_sweep::estimate::CONFIRM_ABOVE_S;
pub use codescale_sweep::plan::Planned;
pub use codescale_sweep::runs::RESULTS_FILE;
pub use codescale_sweep::spec::Executor;
pub use codescale_sweep::status::{render as render_status, StatusReport};
pub use codescale_sweep::{slurm, RunConfig, Summary, Sweep, SweepDir};

/// Expands `sweep` into its trials (the ladder, then the held-out targets), builds or reuses
/// each corpus they train on and binds every trial to it, so that ids cover the corpus
/// contents. Nothing is written under the runs folder. A language the corpus lacks is bad input
/// at the sweep file's line, unless the sweep says `skip_missing_languages = true` (then
/// `notes` says what was left out).
///
/// ```
/// let lab = codescale::example::Lab::new()?;
/// let planned = codescale::sweep::plan(&lab.sweep()?, true)?;
/// assert_eq!(planned.trials.len(), 6);
/// for trial in &planned.trials {
///     println!("{} {} {} tokens", trial.trial_id(), trial.model.name, trial.schedule.tokens);
/// }
/// # anyhow::Ok(())
/// ```
pub fn plan(sweep: &Sweep, quiet: bool) -> Result<Planned> {
    codescale_sweep::plan::plan_with_corpora(sweep, quiet)
}

/// What a plan costs on this machine with all its cores.
#[derive(Debug, Clone)]
pub struct Estimate {
    /// Per trial, in plan order: (training FLOPs, estimated seconds).
    pub per_trial: Vec<(f64, f64)>,
    /// Where the throughput figure came from: this machine's finished trials or the reference.
    pub throughput_from: &'static str,
    /// Cooldown branches, when trials share WSD trunks.
    pub branching: Option<Branching>,
    /// WSD trials that train their own trunks only because their learning rates differ (a rule
    /// with a `d_exponent`).
    pub split_by_lr: usize,
    /// What reading the runs folder repaired: an index that was unreadable and rebuilt from
    /// the trial records.
    pub notes: Vec<String>,
}

/// Trials that fork from shared trunks, and the compute that saves.
#[derive(Debug, Clone, PartialEq)]
pub struct Branching {
    pub branches: usize,
    pub trunks: usize,
    /// Training FLOPs with every trial trained alone, and with the branches.
    pub alone: f64,
    pub branched: f64,
}

impl Estimate {
    pub fn flops(&self) -> f64 {
        self.per_trial.iter().map(|(f, _)| f).sum()
    }

    pub fn seconds(&self) -> f64 {
        self.per_trial.iter().map(|(_, s)| s).sum()
    }

    /// Whether `sweep run` asks for confirmation (`RunConfig::confirmed`, `--yes`).
    pub fn needs_confirmation(&self) -> bool {
        self.seconds() > estimate::CONFIRM_ABOVE_S
    }
}

/// The cost of `trials` (a plan of `sweep`) on this machine, throughput measured from the
/// finished trials under `runs_root`, and the trunks they would share there.
///
/// ```
/// use codescale::sweep;
///
/// let lab = codescale::example::Lab::new()?;
/// let tiny = lab.sweep()?;
/// let planned = sweep::plan(&tiny, true)?;
/// let cost = sweep::estimate(&tiny, &planned.trials, &lab.path().join("runs"));
/// assert!(cost.flops() > 0.0 && !cost.needs_confirmation());
/// assert_eq!(cost.branching, None, "cosine schedules share no trunk");
/// # anyhow::Ok(())
/// ```
pub fn estimate(sweep: &Sweep, trials: &[TrialConfig], runs_root: &Path) -> Estimate {
    let index = codescale_sweep::index::RunsIndex::refresh(runs_root);
    let (per_thread, throughput_from) = estimate::median_flops_per_s_per_thread(&index);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let per_trial = trials
        .iter()
        .map(|c| (c.params().flops_per_token() * c.schedule.tokens, estimate::trial_seconds(c, per_thread, threads)))
        .collect();
    let branches = codescale_sweep::plan::plan_branches(sweep, trials, runs_root);
    let trunks: BTreeSet<_> = branches.iter().flatten().map(|b| b.trunk_dir.clone()).collect();
    let branching = (!trunks.is_empty()).then(|| {
        let (alone, branched) = codescale_sweep::branches::compute(trials, &branches);
        Branching { branches: branches.iter().flatten().count(), trunks: trunks.len(), alone, branched }
    });
    Estimate {
        per_trial,
        throughput_from,
        branching,
        split_by_lr: codescale_sweep::branches::split_by_lr(trials),
        notes: index.notes,
    }
}

/// Runs `sweep` on this machine (`--executor local`): plans it, writes `runs/<sweep>/`, trains
/// what has not ended (resuming interrupted trials from their checkpoints) and writes
/// `results.parquet`. Safe to kill and call again. A Slurm cluster runs the same plan through
/// [`slurm::submit`] and [`slurm::follow()`], whose tasks call [`crate::trial::run_planned`].
///
/// ```
/// use codescale::sweep;
///
/// let lab = codescale::example::Lab::new()?;
/// let summary = sweep::run(&lab.sweep()?, &lab.run_config())?;
/// assert!(summary.all_ok() && summary.trained == 6);
/// let again = sweep::run(&lab.sweep()?, &lab.run_config())?;
/// assert_eq!((again.trained, again.skipped), (0, 6), "finished trials are never rerun");
/// assert_eq!(sweep::results(&summary.dir)?, summary.rows);
/// # anyhow::Ok(())
/// ```
pub fn run(sweep: &Sweep, cfg: &RunConfig) -> Result<Summary> {
    codescale_sweep::run_sweep(sweep, cfg)
}

/// One row per planned trial of the sweep at `sweep_dir` (`runs/<sweep>`), from its records as
/// they are now, so it never lags behind a trial that finished since. A read: it leaves
/// `results.parquet` as it is (only `sweep run`, under the sweep lock, writes it).
pub fn results(sweep_dir: &Path) -> Result<Vec<ResultRow>> {
    SweepDir::open(sweep_dir)?.result_rows()
}

/// Counts by status, the running trials and the best so far of a sweep: `path` is its runs
/// folder, or its sweep file with the runs folder under `runs_root`.
pub fn status(path: &Path, runs_root: &Path) -> Result<StatusReport> {
    let dir =
        if path.is_dir() { SweepDir::open(path)? } else { SweepDir::open(&runs_root.join(Sweep::load(path)?.name))? };
    codescale_sweep::status::status(&dir)
}

/// `codescale sweep convert`: the W&B sweep file at `path` (`.yaml`, `.yml`) as the lab's TOML,
/// checked by the same parser `sweep run` uses; anything else is bad input.
pub fn convert_wandb(path: &Path) -> Result<String> {
    if !codescale_sweep::wandb::is_yaml(path) {
        return Err(codescale_core::BadInput(format!(
            "{}: `sweep convert` reads W&B sweep files (.yaml, .yml)",
            path.display()
        ))
        .into());
    }
    Ok(Sweep::load(path)?.source)
}
