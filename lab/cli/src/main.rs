//! `codescale`: corpus → sweep → fit → report, and replays. A thin layer over the `codescale`
//! library: it parses the command line, calls the library's stage, prints what it returns and
//! maps errors to exit codes (2 for bad input, 1 otherwise).

mod analyse;
mod replay;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "codescale", version, about = "Scaling laws and hyperparameter sweeps for code language models")]
struct Cli {
    /// No progress bars.
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Build a tokenized corpus from a recipe.
    Corpus {
        #[command(subcommand)]
        command: CorpusCommand,
    },
    /// Train one trial from a trial file.
    Train {
        /// A trial file: TOML with any trial key (`language`, `model`, `tokens`, `lr`, …).
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
    /// Predict the loss N parameters reach on D tokens from a fit file, with a 95 % prediction
    /// interval.
    Predict(analyse::PredictArgs),
    /// Write the HTML report of a sweep.
    Report {
        /// A sweep's runs folder (`runs/<sweep>`).
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
    /// Export a sweep's results and curves, or one trial's curve, for other tools.
    Export {
        /// A sweep's runs folder (`runs/<sweep>`), or one trial's folder (`curve.<ext>`).
        sweep_dir: PathBuf,
        /// `results.<ext>` and `curves.<ext>` (every curve row tagged with its trial), or
        /// TensorBoard event files, one run per trial.
        #[arg(long, value_enum, default_value = "csv")]
        format: codescale::export::Format,
        /// Output folder (default the sweep folder).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Corpus → sweep → fit → report, in one command.
    Run {
        /// A sweep file (TOML, or W&B's YAML dialect).
        sweep: PathBuf,
        #[command(flatten)]
        run: train::RunArgs,
    },
    /// Print a shell completion script (bash: `codescale completions bash >
    /// ~/.local/share/bash-completion/completions/codescale`).
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum CorpusCommand {
    /// Read, filter, deduplicate, split and tokenize a recipe's sources into shards.
    Build {
        /// A corpus recipe (TOML), such as `corpora/local.toml`.
        recipe: PathBuf,
        /// Output folder (default corpus/<recipe>-<tokenizer>).
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
        /// A sweep file (TOML, or W&B's YAML dialect).
        sweep: PathBuf,
        /// Print every trial's resolved config as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a sweep (resumes; finished trials are never rerun).
    Run {
        /// A sweep file (TOML, or W&B's YAML dialect).
        sweep: PathBuf,
        /// On Slurm: follow the jobs to their end (a bar of the trials), write results.parquet
        /// and exit with the sweep's status; Ctrl-C stops following, not the jobs.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        run: train::RunArgs,
    },
    /// Counts by status, running trials, best so far.
    Status {
        /// A sweep file or its runs folder.
        sweep: PathBuf,
        /// Folder holding every sweep's runs folder (for a sweep file).
        #[arg(long, default_value = "runs")]
        runs: PathBuf,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Convert a W&B sweep file (YAML) to codescale's TOML.
    Convert {
        /// A sweep file in W&B's YAML dialect.
        sweep: PathBuf,
        /// Write the TOML here instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TrialCommand {
    /// Train the trial at one index of a prepared sweep's plan.
    Run {
        /// A prepared sweep's runs folder (`runs/<sweep>`).
        sweep_dir: PathBuf,
        /// The trial's index in the task plan (the array's offset plus `$SLURM_ARRAY_TASK_ID`),
        /// else in `plan.json`.
        #[arg(long)]
        index: usize,
        /// The task plan the Slurm array was submitted with (`runs/<sweep>/plans/<hash>.json`):
        /// the trial, its trunk, rungs and corpus folder as submitted, whatever the sweep's
        /// plan is now. Refused if it changed since.
        #[arg(long, conflicts_with = "corpus")]
        plan: Option<PathBuf>,
        /// Train it again if it failed, even when its failure looked permanent.
        #[arg(long)]
        retry_failed: bool,
        /// Threads to train with (default: what Slurm allocated, else every core).
        #[arg(long)]
        threads: Option<usize>,
        /// A built corpus folder to train from instead of building or checking the recipe's;
        /// refused unless it is the corpus the trial was planned against.
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// Progress and outcome as lines on stdout, for the local executor that started it.
        #[arg(long, hide = true)]
        child: bool,
    },
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if codescale::is_bad_input(&e) {
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
            let corpus =
                codescale::corpus::build(&recipe, &codescale::corpus::BuildOptions { out, tokenizer, quiet, force })?;
            println!("{}", codescale::corpus::summary_table(&corpus.manifest));
            println!("corpus {} at {}", corpus.hash(), corpus.dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Train { trial, set, out, stop_after_steps } => {
            train::train(&trial, &set, out, stop_after_steps, quiet)
        }
        Command::Sweep { command } => match command {
            SweepCommand::Plan { sweep, json } => train::plan(&sweep, json, quiet),
            SweepCommand::Run { sweep, wait, run } => Ok(match train::run_sweep(&sweep, &run, wait, quiet)? {
                train::Ran::Ended(summary) => exit_for(&summary),
                train::Ran::Left(code) => code,
            }),
            SweepCommand::Status { sweep, runs, json } => train::status(&sweep, &runs, json),
            SweepCommand::Convert { sweep, out } => convert(&sweep, out.as_deref()),
        },
        Command::Trial {
            command: TrialCommand::Run { sweep_dir, index, plan, retry_failed, threads, corpus, child },
        } => {
            let opts = codescale::trial::TaskOptions { retry_failed, quiet, threads, corpus, plan, progress: None };
            if child {
                train::trial_run_as_child(&sweep_dir, index, opts)
            } else {
                train::trial_run(&sweep_dir, index, &opts)
            }
        }
        Command::Fit(args) => analyse::fit(&args, quiet).map(|_| ExitCode::SUCCESS),
        Command::Predict(args) => analyse::predict(&args).map(|_| ExitCode::SUCCESS),
        Command::Report { sweep_dir, out } => codescale::report::render(&sweep_dir, out).map(|report| {
            println!("{report}");
            ExitCode::SUCCESS
        }),
        Command::Replay { path, sample, force } => replay::replay(&path, sample, force, quiet),
        Command::Export { sweep_dir, format, out } => {
            codescale::export::export(&sweep_dir, format, out).map(|exported| {
                println!("{exported}");
                ExitCode::SUCCESS
            })
        }
        Command::Run { sweep, run: args } => run(&sweep, &args, quiet),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "codescale", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`codescale sweep plan --json | head`)
/// panics with a backtrace; with the default action the process ends quietly, as `cat` does.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; only resets a disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// `sweep convert`: the W&B file as our TOML, checked by the same parser `sweep run` uses.
fn convert(path: &std::path::Path, out: Option<&std::path::Path>) -> Result<ExitCode> {
    let toml = codescale::sweep::convert_wandb(path)?;
    match out {
        Some(out) => {
            codescale::write_atomic(out, toml.as_bytes())?;
            println!("{}", out.display());
        }
        None => print!("{toml}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The README's main job: every stage, each reusing what is already on disk.
fn run(sweep_file: &std::path::Path, args: &train::RunArgs, quiet: bool) -> Result<ExitCode> {
    let summary = match train::run_sweep(sweep_file, args, true, quiet)? {
        train::Ran::Ended(summary) => summary,
        train::Ran::Left(code) => return Ok(code),
    };
    // A sweep with no ladder to fit (fine-tuning sweeps) still gets its report.
    let fitted = match codescale::fit::fit_sweep(&summary.dir, &codescale::fit::Options::default()) {
        Ok(fitted) => Some(fitted),
        Err(e) if codescale_core::is_bad_input(&e) => {
            eprintln!("no law fitted: {e:#}");
            None
        }
        Err(e) => return Err(e),
    };
    if let Some(fitted) = &fitted {
        analyse::show(fitted, false, quiet)?;
    }
    let report = codescale::report::render(&summary.dir, None)?;
    println!();
    if let Some(fitted) = &fitted {
        print!("{}", codescale::fit::law_summary(&fitted.fit));
    }
    println!("{report}");
    Ok(exit_for(&summary))
}

/// The sweep's status as the exit code: 0 when every trial ended and none failed.
fn exit_for(summary: &codescale::sweep::Summary) -> ExitCode {
    if summary.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every subcommand, argument and flag a user can see says what it is for in `--help`.
    #[test]
    fn every_command_and_flag_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in
                cmd.get_arguments().filter(|a| !a.is_hide_set() && !["help", "version"].contains(&a.get_id().as_str()))
            {
                if arg.get_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(sub_path.clone());
                }
                walk(sub, &sub_path, missing);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "codescale", &mut missing);
        assert!(missing.is_empty(), "no help text for: {}", missing.join(", "));
    }
}
