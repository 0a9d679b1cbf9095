//! Stage 5, `codescale replay`: a finished trial trained again from its record alone, in a
//! scratch folder, and its loss curve compared step by step with the recorded one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use codescale_core::record::CURVE_FILE;
use codescale_core::{provenance, Backend, BadInput, CurvePoint, Status, TrialRecord};
use codescale_train::RunOptions;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::sweep::SweepDir;

/// How a replayed curve compares with the recorded one.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Identical {
        steps: usize,
    },
    /// First step whose training or validation loss differs, with both values.
    Diverges {
        step: usize,
        recorded: f64,
        replayed: f64,
    },
    LengthDiffers {
        recorded: usize,
        replayed: usize,
    },
    Refused(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Identical { steps } => write!(f, "identical ({steps} steps, bit for bit)"),
            Verdict::Diverges { step, recorded, replayed } => write!(
                f,
                "differs from step {step}: recorded {recorded:.9}, replayed {replayed:.9} (Δ {:.3e})",
                replayed - recorded
            ),
            Verdict::LengthDiffers { recorded, replayed } => {
                write!(f, "recorded {recorded} steps, replayed {replayed}")
            }
            Verdict::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

/// The trials of the sweep at `sweep_dir` that can be replayed (finished, not failed), as (id,
/// folder) in plan order, or a seeded sample of `sample` of them.
pub fn replayable(sweep_dir: &Path, sample: Option<usize>) -> Result<Vec<(String, PathBuf)>> {
    let sweep = SweepDir::open(sweep_dir)?;
    let mut ids: Vec<String> = sweep
        .records()?
        .into_iter()
        .filter(|r| r.status.is_final() && r.status != Status::Failed)
        .map(|r| r.id)
        .collect();
    if let Some(k) = sample {
        ids.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
        ids.truncate(k);
    }
    Ok(ids.into_iter().map(|id| (id.clone(), sweep.trial_dir(&id))).collect())
}

/// Trains the finished trial at `dir` (`runs/<sweep>/trials/<id>`) again, with its recorded
/// config and thread count, and compares the curves. A trial whose corpus or code version
/// differs from its record is refused unless `force` (then it trains on the corpus as it is
/// now); notes about the differences go to stderr.
///
/// ```
/// use codescale::{replay, sweep};
///
/// let lab = codescale::example::Lab::new()?;
/// let summary = sweep::run(&lab.sweep()?, &lab.run_config())?;
/// let (_id, trial_dir) = &replay::replayable(&summary.dir, Some(1))?[0];
/// let verdict = replay::replay_trial(trial_dir, false, true)?;
/// assert!(matches!(verdict, replay::Verdict::Identical { .. }), "{verdict}");
/// # anyhow::Ok(())
/// ```
pub fn replay_trial(dir: &Path, force: bool, quiet: bool) -> Result<Verdict> {
    let record = TrialRecord::load(dir).map_err(|e| BadInput(format!("{e:#}")))?;
    if !record.status.is_final() || record.status == Status::Failed {
        return Ok(Verdict::Refused(format!(
            "the trial is {}; only finished trials can be replayed",
            record.status.as_str()
        )));
    }
    let recorded: Vec<CurvePoint> = codescale_table::read_rows(&dir.join(CURVE_FILE)).context("recorded curve")?;
    let mut config = record.config.clone();
    config.threads = Some(record.provenance.threads.max(1));
    let corpus = codescale_sweep::scheduler::corpus_for(&config, true)?;

    let mut differences = Vec::new();
    if corpus.hash() != record.provenance.corpus_hash {
        differences.push(format!("corpus hash {} ≠ recorded {}", corpus.hash(), record.provenance.corpus_hash));
    }
    // The code that will replay is this binary's: compare the commit it was built from, not
    // the source tree's HEAD, which a pull since the build has moved.
    let (commit, dirty) = (provenance::BUILD_COMMIT, provenance::build_dirty());
    if provenance::VERSION != record.provenance.codescale_version || commit != record.provenance.git_commit {
        differences.push(format!(
            "code {} at {} ≠ recorded {} at {}",
            provenance::VERSION,
            short(commit),
            record.provenance.codescale_version,
            short(&record.provenance.git_commit)
        ));
    }
    if dirty || record.provenance.git_dirty {
        // Same commit with local edits may or may not be the same code: say so, and let the
        // curves decide.
        eprintln!(
            "note: built from uncommitted changes (this binary: {dirty}, the one that ran the trial: {})",
            record.provenance.git_dirty
        );
    }
    if !differences.is_empty() {
        if !force {
            return Ok(Verdict::Refused(format!("{} (use --force to replay anyway)", differences.join("; "))));
        }
        eprintln!("replaying despite: {}", differences.join("; "));
        // Train on the corpus as it is now: the record's binding names the old one.
        config.corpus_key = None;
    }

    let scratch = tempfile::tempdir().context("scratch folder for the replay")?;
    // A pruned trial stopped where its rung said so; stop the replay at the same step.
    let stop = (record.status == Status::Pruned).then_some(record.metrics.steps);
    let opts = RunOptions { quiet, stop_after_steps: stop, ..Default::default() };
    codescale_train::train_trial(scratch.path(), &config, &corpus, &opts)?;
    let replayed: Vec<CurvePoint> =
        codescale_table::read_rows(&scratch.path().join(CURVE_FILE)).context("replayed curve")?;
    Ok(compare(&recorded, &replayed, config.backend))
}

/// Bit-identical on the CPU backend; on the GPU backends (cuda, wgpu) within 1e-4 relative.
pub fn compare(recorded: &[CurvePoint], replayed: &[CurvePoint], backend: Backend) -> Verdict {
    let same = |a: f64, b: f64| match backend {
        Backend::Flex => a.to_bits() == b.to_bits(),
        Backend::Cuda | Backend::Wgpu => (a - b).abs() <= 1e-4 * a.abs().max(1.0),
    };
    for (r, p) in recorded.iter().zip(replayed) {
        if !same(r.train_loss, p.train_loss) {
            return Verdict::Diverges { step: r.step, recorded: r.train_loss, replayed: p.train_loss };
        }
        if let (Some(a), Some(b)) = (r.val_loss, p.val_loss) {
            if !same(a, b) {
                return Verdict::Diverges { step: r.step, recorded: a, replayed: b };
            }
        }
    }
    if recorded.len() != replayed.len() {
        return Verdict::LengthDiffers { recorded: recorded.len(), replayed: replayed.len() };
    }
    Verdict::Identical { steps: recorded.len() }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}
