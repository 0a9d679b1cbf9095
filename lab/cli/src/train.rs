//! `train`, `sweep plan|run|status` and `trial run`: their flags, the executor a sweep runs on,
//! and what is printed. Planning, training and status are `codescale::{sweep, trial}`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use codescale::sweep::{self, Executor, RunConfig, Summary, Sweep};
use codescale::trial::{self, Outcome, RunOptions, Status, TrialRecord};

pub fn train(
    path: &Path,
    sets: &[String],
    out: Option<PathBuf>,
    stop_after_steps: Option<usize>,
    quiet: bool,
) -> Result<ExitCode> {
    let trained = trial::train(path, sets, out, &RunOptions { quiet, stop_after_steps, ..Default::default() })?;
    print_record(&trained.record, &trained.dir);
    Ok(exit_for(&trained.record))
}

fn exit_for(record: &TrialRecord) -> ExitCode {
    match record.status {
        Status::Done | Status::Pruned | Status::Running => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

fn print_record(r: &TrialRecord, dir: &Path) {
    let m = &r.metrics;
    let loss = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
    println!(
        "trial {} {}: {} steps, {:.3e} tokens, train loss {}, val loss {} ({} bits/byte), {:.0} tok/s, {:.1} s",
        r.id,
        r.status.as_str(),
        m.steps,
        m.tokens,
        loss(m.train_loss),
        loss(m.val_loss),
        loss(m.val_bpb),
        m.tokens_per_s,
        m.wall_s
    );
    if let Some(fim) = m.val_fim_loss {
        println!("  infilling loss {fim:.4} ± {} (the middle given prefix and suffix)", loss(m.val_fim_loss_se));
    }
    if let Some(completion) = m.val_completion_loss {
        println!(
            "  completion loss {completion:.4} ± {} (held-out pairs' bodies given doc comment and signature)",
            loss(m.val_completion_loss_se)
        );
    }
    if let Some(base) = &r.config.model.init_from {
        println!("  fine-tuned from trial {base}");
    }
    if let Some(e) = &r.error {
        println!("  {e}");
    }
    println!("  {}", dir.display());
}

pub fn plan(path: &Path, json: bool, quiet: bool) -> Result<ExitCode> {
    let sweep = Sweep::load(path)?;
    let planned = sweep::plan(&sweep, quiet)?;
    let trials = planned.trials;
    for note in &planned.notes {
        eprintln!("note: {note}");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&trials)?);
        return Ok(ExitCode::SUCCESS);
    }
    let cost = sweep::estimate(&sweep, &trials, Path::new("runs"));
    for note in &cost.notes {
        eprintln!("note: {note}");
    }
    println!(
        "{:<16} {:<10} {:<6} {:<9} {:>10} {:>10} {:>10} {:>9}",
        "trial", "language", "arch", "model", "N", "D", "FLOPs", "est. s"
    );
    for (c, (flops, seconds)) in trials.iter().zip(&cost.per_trial) {
        println!(
            "{:<16} {:<10} {:<6} {:<9} {:>10.3e} {:>10.3e} {:>10.3e} {:>9.0}",
            c.trial_id(),
            c.data.language,
            c.model.arch.as_str(),
            c.model.name,
            c.params().n_params,
            c.schedule.tokens,
            flops,
            seconds
        );
    }
    println!(
        "{} trials, {:.3e} FLOPs, about {:.1} min on this machine with all cores (throughput from {})",
        trials.len(),
        cost.flops(),
        cost.seconds() / 60.0,
        cost.throughput_from
    );
    if let Some(b) = &cost.branching {
        println!(
            "cooldown branches: {} trials fork from {} shared trunks: {:.3e} FLOPs trained instead of {:.3e} ({:.0} % saved)",
            b.branches,
            b.trunks,
            b.branched,
            b.alone,
            100.0 * (1.0 - b.branched / b.alone)
        );
    }
    if cost.split_by_lr > 0 {
        println!("note: {} WSD trials differ from a sibling budget only in learning rate (a rule with a `d_exponent`?), so they train their own trunks; a rule of N alone, evaluated at the longest budget, lets them branch", cost.split_by_lr);
    }
    if cost.needs_confirmation() {
        println!("warning: over {:.0} h: `sweep run` will ask for --yes", sweep::CONFIRM_ABOVE_S / 3600.0);
    }
    Ok(ExitCode::SUCCESS)
}

/// What `sweep run` and `run` take besides the sweep file.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RunArgs {
    /// Where trials run: `local` (this machine) or `slurm` (array jobs); default: the sweep's
    /// `executor`, else local.
    #[arg(long, value_parser = PossibleValuesParser::new(["local", "slurm"]).map(|s| s.parse::<Executor>().expect("a listed value")))]
    pub executor: Option<Executor>,
    /// Trials to train at once (default: the sweep's `jobs`, else 1); cores are shared out. On
    /// Slurm: tasks at once, unless `[slurm] array_parallelism` says.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Folder holding every sweep's runs folder.
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    /// Retry failed trials even when their failure looked permanent.
    #[arg(long)]
    pub retry_failed: bool,
    /// Keep finished trials whose corpus or code version no longer match the plan (marked
    /// stale in the results) instead of retraining them.
    #[arg(long)]
    pub reuse_stale: bool,
    /// Run a plan estimated to take over a day on this machine.
    #[arg(long)]
    pub yes: bool,
}

/// How `sweep run` ended.
pub enum Ran {
    /// Every trial was run to its end here, or the Slurm arrays were followed to theirs.
    Ended(Summary),
    /// The Slurm arrays go on (submitted without `--wait`, or left on Ctrl-C): exit with this.
    Left(ExitCode),
}

/// Runs the sweep on its executor; on Slurm, `wait` follows the arrays to their end.
pub fn run_sweep(path: &Path, args: &RunArgs, wait: bool, quiet: bool) -> Result<Ran> {
    let sweep = Sweep::load(path)?;
    let cfg = RunConfig {
        runs_root: args.runs.clone(),
        jobs: args.jobs,
        quiet,
        cores: None,
        retry_failed: args.retry_failed,
        reuse_stale: args.reuse_stale,
        confirmed: args.yes,
        trial_exe: Some(std::env::current_exe()?),
    };
    let summary = match args.executor.unwrap_or(sweep.executor) {
        Executor::Local => sweep::run(&sweep, &cfg)?,
        Executor::Slurm => match on_slurm(path, &sweep, &cfg, args, wait)? {
            Ok(summary) => summary,
            Err(code) => return Ok(Ran::Left(code)),
        },
    };
    let counts: Vec<String> =
        [Status::Done, Status::Pruned, Status::Diverged, Status::Failed, Status::Running, Status::Pending]
            .iter()
            .map(|&s| (s, summary.count(s)))
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{n} {}", s.as_str()))
            .collect();
    for note in &summary.notes {
        println!("note: {note}");
    }
    println!(
        "sweep {}: {} trials ({}); trained {} now, {} already finished",
        sweep.name,
        summary.rows.len(),
        counts.join(", "),
        summary.trained,
        summary.skipped
    );
    for row in summary.rows.iter().filter(|r| r.status == Status::Failed) {
        let record = TrialRecord::load(&summary.dir.join("trials").join(&row.trial_id)).ok();
        let error = record.as_ref().and_then(|r| r.error.clone()).unwrap_or_default();
        let retry = if record.is_some_and(|r| r.retryable) {
            "retried on the next run"
        } else {
            "not retried unless --retry-failed"
        };
        println!("  failed {}: {error} ({retry})", row.trial_id);
    }
    println!("results: {}", summary.dir.join(sweep::RESULTS_FILE).display());
    Ok(Ran::Ended(summary))
}

/// Submits the sweep's unfinished trials to Slurm and, with `wait`, follows the arrays to
/// their end: the summary then, else the exit code to leave with (the arrays go on).
fn on_slurm(
    path: &Path,
    sweep: &Sweep,
    cfg: &RunConfig,
    args: &RunArgs,
    wait: bool,
) -> Result<Result<Summary, ExitCode>> {
    let submission = sweep::slurm::submit(sweep, cfg, &std::env::current_exe()?)?;
    for note in &submission.notes {
        println!("note: {note}");
    }
    let covered = if submission.covered > 0 {
        format!("; {} left to tasks already queued or running", submission.covered)
    } else {
        String::new()
    };
    match &submission.script {
        Some(script) => {
            let jobs: Vec<String> = submission
                .arrays
                .iter()
                .map(|a| format!("{} (tasks {}, plan index {} + task)", a.job, a.tasks, a.offset))
                .collect();
            println!(
                "submitted {} trials of {} as array job {}{covered}; job script {}",
                submission.sent,
                sweep.name,
                jobs.join(", "),
                script.display()
            );
        }
        None => println!("nothing to submit for {}: {} trials had ended{covered}", sweep.name, submission.skipped),
    }
    let runs = if args.runs == Path::new("runs") { String::new() } else { format!(" --runs {}", args.runs.display()) };
    let follow = format!("codescale sweep run {} --executor slurm --wait{runs}", path.display());
    let status = format!("codescale sweep status {}{runs}", path.display());
    if !wait {
        println!("follow it with `{follow}`, or look with `{status}`");
        return Ok(Err(ExitCode::SUCCESS));
    }
    interrupt::catch();
    match sweep::slurm::follow(&submission.dir, cfg.quiet, &interrupt::caught)? {
        Some(summary) => Ok(Ok(Summary { trained: submission.sent, skipped: submission.skipped, ..summary })),
        None => {
            eprintln!("interrupted: the Slurm jobs go on. Follow them again with `{follow}`, or look with `{status}`");
            Ok(Err(ExitCode::from(130)))
        }
    }
}

/// Ctrl-C while following Slurm jobs stops the following, not the jobs.
mod interrupt {
    use std::sync::atomic::{AtomicBool, Ordering};

    static CAUGHT: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_sigint(_: libc::c_int) {
        CAUGHT.store(true, Ordering::SeqCst);
    }

    pub fn catch() {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
        }
    }

    pub fn caught() -> bool {
        CAUGHT.load(Ordering::SeqCst)
    }
}

pub fn trial_run(sweep_dir: &Path, index: usize, opts: &trial::TaskOptions) -> Result<ExitCode> {
    let (id, outcome) = trial::run_planned(sweep_dir, index, opts)?;
    match outcome {
        Outcome::Trained(record) => {
            print_record(&record, &sweep_dir.join("trials").join(&id));
            Ok(exit_for(&record))
        }
        Outcome::Busy(owner) => {
            println!(
                "trial {id} is being trained by {}; nothing to do",
                owner.map_or("another process".into(), |o| o.describe())
            );
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Ended(status) => {
            println!("trial {id} had already ended ({}); nothing to do", status.as_str());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `trial run --child`: the trial of one of the local executor's jobs, telling its parent how
/// far it got and how it ended (see [`trial::ProgressReporter`]).
pub fn trial_run_as_child(sweep_dir: &Path, index: usize, opts: trial::TaskOptions) -> Result<ExitCode> {
    let reporter = trial::ProgressReporter::start();
    let (_, outcome) =
        trial::run_planned(sweep_dir, index, &trial::TaskOptions { progress: Some(reporter.bar.clone()), ..opts })?;
    drop(reporter);
    println!("{}", trial::outcome_line(&outcome));
    Ok(ExitCode::SUCCESS)
}

pub fn status(path: &Path, runs: &Path, json: bool) -> Result<ExitCode> {
    let report = sweep::status(path, runs)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", sweep::render_status(&report));
    }
    Ok(ExitCode::SUCCESS)
}
