//! WSD trunks: the constant-rate prefix that trials differing only in budget share (Hägele et
//! al. 2024, "Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations").
//!
//! A trunk lives in its own folder (`<runs>/_trunks/<trunk id>/`), shared by every sweep under
//! the runs folder:
//!
//! ```text
//! lock                 flock held while the trunk trains (threads, processes and sweeps wait)
//! trunk.json           how far it got, its forks, and a divergence if it blew up
//! forks/<step>.bin     the full training state after <step> steps: where branches start
//! checkpoint/state.bin the furthest state, saved periodically while training (for kill -9)
//! ```
//!
//! A branch asks for the state at its cooldown's first step. The trunk trains from its nearest
//! saved state at or before that step (a fork, its checkpoint, or step 0), evaluating where any
//! planned branch evaluates, and saves the fork. The trunk's schedule equals every branch's
//! until that branch's cooldown, and batches are a pure function of (seed, step), so a branch
//! continues exactly as a standalone trial would.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use codescale_core::atomic::{read_json, write_json};
use codescale_core::record::CHECKPOINT_DIR;
use codescale_core::{CurvePoint, TrialConfig};
use codescale_data::Corpus;
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::kernels::Kernels;
use crate::run::{Run, Stepped};

/// Where a trial forks from a shared trunk (given to the trainer by the scheduler; stored in
/// a Slurm submission's task plan).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Branch {
    /// `<runs>/_trunks/<trunk id>`.
    pub trunk_dir: PathBuf,
    /// Steps at which the trunk evaluates: every step at or before its fork at which any planned
    /// branch of this trunk evaluates, so each branch's curve holds its own evaluations (sorted).
    pub eval_steps: Vec<usize>,
    /// Every planned branch's fork step (sorted): the trunk saves its state at each one it
    /// passes, so branches may ask in any order without training the trunk twice.
    pub fork_steps: Vec<usize>,
}

/// The trunk's state at a branch's fork, or how it blew up before.
pub enum Fork {
    At(Box<Checkpoint>),
    Diverged { step: usize, message: String, curve: Vec<CurvePoint> },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TrunkRecord {
    id: String,
    /// The furthest step trained.
    steps: usize,
    /// Steps with a saved fork.
    forks: Vec<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    diverged: Option<Diverged>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Diverged {
    step: usize,
    message: String,
    curve: Vec<CurvePoint>,
}

const RECORD: &str = "trunk.json";

fn fork_path(dir: &Path, step: usize) -> PathBuf {
    dir.join("forks").join(format!("{step}.bin"))
}

/// The trunk's state after `config.decay_start()` steps, training it there if needed.
pub fn fork<B: AutodiffBackend + Kernels>(
    branch: &Branch,
    config: &TrialConfig,
    corpus: &Corpus,
    device: &B::Device,
) -> Result<Fork>
where
    B::InnerBackend: Kernels,
{
    let id = config.trunk_id().context("only WSD trials have a trunk")?;
    let dir = &branch.trunk_dir;
    let at = config.decay_start();
    std::fs::create_dir_all(dir.join("forks")).with_context(|| format!("creating {}", dir.display()))?;
    let lock = File::options().create(true).truncate(false).write(true).open(dir.join("lock"))?;
    lock.lock().with_context(|| format!("locking trunk {}", dir.display()))?;
    codescale_core::atomic::remove_stale_temps(dir);

    let mut record: TrunkRecord =
        read_json(&dir.join(RECORD)).unwrap_or_else(|_| TrunkRecord { id: id.clone(), ..Default::default() });
    if let Some(d) = record.diverged.clone().filter(|d| d.step < at) {
        return Ok(Fork::Diverged { step: d.step, message: d.message, curve: d.curve });
    }
    if let Ok(Some(ck)) = Checkpoint::load_file(&fork_path(dir, at)) {
        if ck.meta.trial_id == id && ck.meta.step == at {
            return Ok(Fork::At(Box::new(ck)));
        }
    }

    let mut run = start::<B>(dir, &id, config.trunk_config(at), at, corpus, device)?;
    let furthest = record.steps;
    let interval = config.checkpoint_every();
    while run.steps < at {
        if let Stepped::Diverged(message) = run.step() {
            let d = Diverged { step: run.steps, message, curve: run.curve.clone() };
            record.diverged = Some(d.clone());
            write_json(&dir.join(RECORD), &record)?;
            return Ok(Fork::Diverged { step: d.step, message: d.message, curve: d.curve });
        }
        // A trunk never reaches a trial's last step: its evaluations are all along the way.
        if branch.eval_steps.binary_search(&run.steps).is_ok() {
            run.evaluate(false);
        }
        if run.steps < at && branch.fork_steps.binary_search(&run.steps).is_ok() {
            save_fork(dir, &mut record, &run.checkpoint(&id))?;
        }
        // Periodic state for a killed run to resume from; only ever moving forward.
        if run.steps % interval == 0 && run.steps > furthest && run.steps < at {
            run.checkpoint(&id).save(&dir.join(CHECKPOINT_DIR))?;
        }
    }
    let ck = run.checkpoint(&id);
    save_fork(dir, &mut record, &ck)?;
    Ok(Fork::At(Box::new(ck)))
}

/// Saves `ck` as the fork at its step and notes it in the trunk's record.
fn save_fork(dir: &Path, record: &mut TrunkRecord, ck: &Checkpoint) -> Result<()> {
    let step = ck.meta.step;
    ck.save_file(&fork_path(dir, step))?;
    record.steps = record.steps.max(step);
    if !record.forks.contains(&step) {
        record.forks.push(step);
        record.forks.sort_unstable();
    }
    write_json(&dir.join(RECORD), record)
}

/// A run of `trunk_config` from the trunk's furthest saved state at or before `at` (an
/// unreadable one is skipped), or from step 0.
fn start<'d, B: AutodiffBackend + Kernels>(
    dir: &Path,
    id: &str,
    trunk_config: TrialConfig,
    at: usize,
    corpus: &Corpus,
    device: &'d B::Device,
) -> Result<Run<'d, B>>
where
    B::InnerBackend: Kernels,
{
    // The latest fork at or before `at` (named by its step), and the periodic checkpoint.
    let fork = std::fs::read_dir(dir.join("forks"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".bin")?.parse::<usize>().ok())
        .filter(|&step| step <= at)
        .max()
        .map(|step| fork_path(dir, step));
    let candidates = fork.into_iter().chain([dir.join(CHECKPOINT_DIR).join(crate::checkpoint::FILE)]);
    let best = candidates
        .filter_map(|p| Checkpoint::load_file(&p).ok().flatten())
        .filter(|ck| ck.meta.trial_id == id && ck.meta.step <= at)
        .max_by_key(|ck| ck.meta.step);
    let mut run = Run::new(&trunk_config, corpus, device)?;
    if let Some(ck) = best {
        if run.restore(ck).is_err() {
            run = Run::new(&trunk_config, corpus, device)?;
        }
    }
    Ok(run)
}
