//! `codescale`: corpus → sweep → fit → report, and replays.

mod analyse;
mod export;
mod replay;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "codescale", version, about = "Scaling laws and hyperparameter sweeps for code language models")]
struct Cli {
    /// No progress bars.
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a tokenized corpus from a recipe.
    Corpus {
        #[command(subcommand)]
        command: CorpusCommand,
    },
    /// Train one trial from a trial file.
    Train {
        trial: PathBuf,
        /// Override a key: `--set lr=1e-3` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Trial folder (default runs/trials/<id>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Stop after this many steps as if killed, keeping the checkpoint (for testing resume).
        #[arg(long, hide = true)]
        stop_after_steps: Option<usize>,
    },
    /// Plan, run or inspect a sweep.
    Sweep {
        #[command(subcommand)]
        command: SweepCommand,
    },
    /// Run one planned trial of a prepared sweep (what each Slurm array task runs).
    Trial {
        #[command(subcommand)]
        command: TrialCommand,
    },
    /// Fit scaling laws to a sweep's results (or to any table).
    Fit(analyse::FitArgs),
    /// Write the HTML report of a sweep.
    Report {
        sweep_dir: PathBuf,
        /// Output folder (default reports/<sweep>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Re-train trials from their records and compare the loss curves.
    Replay {
        /// `runs/<sweep>` or `runs/<sweep>/trials/<id>`.
        path: PathBuf,
        /// Replay a seeded sample of this many trials.
        #[arg(long)]
        sample: Option<usize>,
        /// Replay even if the corpus or code version differs, and report the differences.
        #[arg(long)]
        force: bool,
    },
    /// Export a sweep's results and curves for other tools.
    Export {
        sweep_dir: PathBuf,
        #[arg(long, value_enum, default_value = "csv")]
        format: export::Format,
        /// Output folder (default the sweep folder).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Corpus → sweep → fit → report, in one command.
    Run {
        sweep: PathBuf,
        #[command(flatten)]
        run: train::RunArgs,
    },
}

#[derive(Subcommand)]
enum CorpusCommand {
    Build {
        recipe: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
        /// `bytes` or `bpe:<vocab>` (overrides the recipe).
        #[arg(long)]
        tokenizer: Option<String>,
        /// Rebuild even if nothing changed.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum SweepCommand {
    /// Expand and validate a sweep; print its trials.
    Plan {
        sweep: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Run a sweep (resumes; finished trials are never rerun).
    Run {
        sweep: PathBuf,
        /// Where trials run: this machine, or a Slurm array job.
        #[arg(long, value_enum, default_value = "local")]
        executor: Executor,
        #[command(flatten)]
        run: train::RunArgs,
    },
    /// Counts by status, running trials, best so far.
    Status {
        /// A sweep file or its runs folder.
        sweep: PathBuf,
        #[arg(long, default_value = "runs")]
        runs: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TrialCommand {
    Run {
        sweep_dir: PathBuf,
        #[arg(long)]
        index: usize,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Executor {
    Local,
    Slurm,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if codescale_core::is_bad_input(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Corpus { command: CorpusCommand::Build { recipe, out, tokenizer, force } } => {
            let corpus = codescale_sweep::scheduler::build_corpus(&recipe, &codescale_data::BuildOptions { out, tokenizer, quiet, force })?;
            println!("{}", codescale_data::summary_table(&corpus.manifest));
            println!("corpus {} at {}", corpus.hash(), corpus.dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Train { trial, set, out, stop_after_steps } => train::train(&trial, &set, out, stop_after_steps, quiet),
        Command::Sweep { command } => match command {
            SweepCommand::Plan { sweep, json } => train::plan(&sweep, json, quiet),
            SweepCommand::Run { sweep, executor: Executor::Local, run } => {
                let summary = train::run_sweep(&sweep, &run, quiet)?;
                Ok(if summary.all_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
            }
            SweepCommand::Run { sweep, executor: Executor::Slurm, run } => train::submit_slurm(&sweep, &run),
            SweepCommand::Status { sweep, runs, json } => train::status(&sweep, &runs, json),
        },
        Command::Trial { command: TrialCommand::Run { sweep_dir, index } } => train::trial_run(&sweep_dir, index, quiet),
        Command::Fit(args) => analyse::fit(&args, quiet).map(|_| ExitCode::SUCCESS),
        Command::Report { sweep_dir, out } => analyse::report(&sweep_dir, out, quiet).map(|path| {
            println!("report: {}", path.display());
            ExitCode::SUCCESS
        }),
        Command::Replay { path, sample, force } => replay::replay(&path, sample, force, quiet),
        Command::Export { sweep_dir, format, out } => export::export(&sweep_dir, format, out).map(|_| ExitCode::SUCCESS),
        Command::Run { sweep, run: args } => run(&sweep, &args, quiet),
    }
}

/// The README's main job: every stage, each reusing what is already on disk.
fn run(sweep_file: &std::path::Path, args: &train::RunArgs, quiet: bool) -> Result<ExitCode> {
    let summary = train::run_sweep(sweep_file, args, quiet)?;
    let fit = analyse::fit_sweep(&summary.dir, &analyse::FitArgs::for_sweep(summary.dir.clone()), quiet)?;
    let report = analyse::report(&summary.dir, None, quiet)?;
    println!();
    let mut flagged = false;
    for group in fit.groups.iter().filter(|g| g.group != "pooled") {
        match &group.law {
            Some(law) => {
                let param = |e: &codescale_fit::Estimate, name: &str| {
                    let mark = if law.unidentified.iter().any(|u| u == name) { "*" } else { "" };
                    format!("{:.3} [{}]{mark}", e.value, analyse::interval(e))
                };
                flagged |= !law.unidentified.is_empty();
                println!(
                    "{:<12} α_N {}  α_D {}  L_inf {}  (RMSE of log loss {:.4})",
                    group.group,
                    param(&law.alpha_n, "α_N"),
                    param(&law.alpha_d, "α_D"),
                    param(&law.l_inf, "L_inf"),
                    law.rmse_log
                );
                for t in &group.targets {
                    println!("{:<12} {}", "", codescale_fit::table::target_line(t));
                }
            }
            None => println!("{:<12} no fit: {}", group.group, group.message.clone().unwrap_or_default()),
        }
    }
    if flagged {
        println!("{}", codescale_fit::table::UNIDENTIFIED_LEGEND);
    }
    println!("report: {}", report.display());
    Ok(if summary.all_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
