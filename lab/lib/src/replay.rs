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
    /// Every loss the same, bit for bit.
    Identical {
        steps: usize,
    },
    /// Not bit for bit, but every loss within `tolerance` (relative) of the recorded one, which
    /// is all `why` lets a replay promise; `largest` is the largest relative difference.
    Close {
        steps: usize,
        largest: f64,
        tolerance: f64,
        why: String,
    },
    /// First step whose training or validation loss differs (beyond what is allowed), with
    /// both values.
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

impl Verdict {
    /// The replay reproduced the record: bit for bit, or within what its conditions allow.
    pub fn reproduced(&self) -> bool {
        matches!(self, Verdict::Identical { .. } | Verdict::Close { .. })
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Identical { steps } => write!(f, "identical ({steps} steps, bit for bit)"),
            Verdict::Close { steps, largest, tolerance, why } => {
                write!(f, "same curve within {tolerance:.0e} relative ({steps} steps, largest {largest:.1e}): {why}")
            }
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

/// What a replay must match: the same bits, or the same curve within a relative tolerance for
/// a stated reason.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    Bits,
    Within { tolerance: f64, why: String },
}

/// Relative tolerance where bits cannot be promised: the golden test's, which absorbs the
/// rounding of another summation order and not a change of formula.
pub const TOLERANCE: f64 = 1e-4;

/// What a replay of a trial recorded on `recorded_path` (its backend `backend`) can promise
/// where this machine's path is `here`. Flex on the same SIMD path (or a record that predates
/// the path) computes the same bits; on another path its matrix kernels add in another order;
/// the GPU backends' kernels may add in another order from run to run (atomics, autotuning).
pub fn expected_match(backend: Backend, recorded_path: Option<&str>, here: &str) -> Match {
    match (backend, recorded_path) {
        (Backend::Flex, Some(recorded)) if recorded != here => Match::Within {
            tolerance: TOLERANCE,
            why: format!(
                "recorded on another CPU path ({recorded}; here {here}), whose matrix kernels add in another order"
            ),
        },
        (Backend::Flex, _) => Match::Bits,
        (Backend::Cuda | Backend::Wgpu, _) => Match::Within {
            tolerance: TOLERANCE,
            why: format!("{} kernels may add in another order from run to run", backend.as_str()),
        },
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
    config.runtime.threads = Some(record.provenance.threads.max(1));
    let corpus = codescale_sweep::plan::corpus_for(&config, true)?;

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
    // A fine-tuned trial starts again from its base's weights, found beside it.
    let init_from = config.model.init_from.as_ref().and_then(|id| codescale_sweep::bases::locate_beside(dir, id));
    let opts = RunOptions { quiet, stop_after_steps: stop, init_from, ..Default::default() };
    codescale_train::train_trial(scratch.path(), &config, &corpus, &opts)?;
    let replayed: Vec<CurvePoint> =
        codescale_table::read_rows(&scratch.path().join(CURVE_FILE)).context("replayed curve")?;
    let here = codescale_train::simd_path();
    Ok(compare(
        &recorded,
        &replayed,
        &expected_match(config.runtime.backend, record.provenance.simd_path.as_deref(), &here),
    ))
}

/// Compares the curves step by step, both losses of each point, as `expected` demands.
pub fn compare(recorded: &[CurvePoint], replayed: &[CurvePoint], expected: &Match) -> Verdict {
    let mut largest = 0.0f64;
    let mut within = |a: f64, b: f64| {
        if a.to_bits() == b.to_bits() {
            return true;
        }
        let relative = (a - b).abs() / a.abs().max(1.0);
        largest = largest.max(relative);
        matches!(expected, Match::Within { tolerance, .. } if relative <= *tolerance)
    };
    for (r, p) in recorded.iter().zip(replayed) {
        if !within(r.train_loss, p.train_loss) {
            return Verdict::Diverges { step: r.step, recorded: r.train_loss, replayed: p.train_loss };
        }
        if let (Some(a), Some(b)) = (r.val_loss, p.val_loss) {
            if !within(a, b) {
                return Verdict::Diverges { step: r.step, recorded: a, replayed: b };
            }
        }
    }
    if recorded.len() != replayed.len() {
        return Verdict::LengthDiffers { recorded: recorded.len(), replayed: replayed.len() };
    }
    match expected {
        Match::Within { tolerance, why } if largest > 0.0 => {
            Verdict::Close { steps: recorded.len(), largest, tolerance: *tolerance, why: why.clone() }
        }
        _ => Verdict::Identical { steps: recorded.len() },
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(losses: &[f64]) -> Vec<CurvePoint> {
        losses
            .iter()
            .enumerate()
            .map(|(i, &l)| CurvePoint {
                step: i + 1,
                tokens: (i + 1) as f64,
                lr: 1e-3,
                train_loss: l,
                val_loss: (i == losses.len() - 1).then_some(l),
                val_loss_se: None,
                val_bpb: None,
                task_exact_match: None,
                task_exact_match_se: None,
                val_completion_loss: None,
                val_completion_loss_se: None,
                val_fim_loss: None,
                val_fim_loss_se: None,
                grad_norm: 1.0,
                wall_s: 0.0,
                expert_load: None,
                router_entropy: None,
                dropped_frac: None,
            })
            .collect()
    }

    #[test]
    fn bits_on_one_path_rounding_across_paths_and_never_more() {
        let recorded = curve(&[5.5, 4.0, 3.2]);
        let nudged = curve(&[5.5, 4.0 * (1.0 + 1e-6), 3.2]);
        let moved = curve(&[5.5, 4.0 * (1.0 + 1e-3), 3.2]);
        let here = "x86_64 fma; caches 32K/1024K/32768K";
        let same = expected_match(Backend::Flex, Some(here), here);
        let other = expected_match(Backend::Flex, Some("x86_64 avx512f; caches 48K/2048K/107520K"), here);
        assert_eq!(same, Match::Bits);
        // A record from before the path was recorded is held to bits, as it always was.
        assert_eq!(expected_match(Backend::Flex, None, here), Match::Bits);

        assert_eq!(compare(&recorded, &recorded, &same), Verdict::Identical { steps: 3 });
        assert_eq!(compare(&recorded, &recorded, &other), Verdict::Identical { steps: 3 });
        assert!(matches!(compare(&recorded, &nudged, &same), Verdict::Diverges { step: 2, .. }));
        let close = compare(&recorded, &nudged, &other);
        assert!(
            matches!(close, Verdict::Close { steps: 3, largest, .. } if (largest - 1e-6).abs() < 1e-9),
            "{close:?}"
        );
        assert!(close.reproduced() && close.to_string().contains("another CPU path"), "{close}");
        assert!(matches!(compare(&recorded, &moved, &other), Verdict::Diverges { step: 2, .. }));

        let gpu = expected_match(Backend::Cuda, None, here);
        assert!(matches!(compare(&recorded, &nudged, &gpu), Verdict::Close { .. }));
        assert!(!compare(&recorded, &curve(&[5.5, 4.0]), &gpu).reproduced());
    }
}
