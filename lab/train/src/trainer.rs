//! One trial from its config to `trial.json` and `curve.parquet`: start (fresh, from the
//! trial's own checkpoint, or from a shared trunk's fork), then step, evaluate, consult the ASHA
//! rungs and checkpoint until the budget is spent.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use codescale_core::record::{CHECKPOINT_DIR, CURVE_FILE};
use codescale_core::{provenance, BadInput, BranchOrigin, CorpusKey, Metrics, Status, TrialConfig, TrialRecord};
use codescale_data::Corpus;
use indicatif::{ProgressBar, ProgressStyle};

use crate::checkpoint::{self, Checkpoint};
use crate::kernels::Kernels;
use crate::run::{Run, Stepped};
use crate::trunk::{self, Branch, Fork};

/// What the caller controls about a run besides the config.
#[derive(Default, Clone)]
pub struct RunOptions<'a> {
    pub quiet: bool,
    /// A bar to drive (the sweep scheduler's); otherwise one is made unless `quiet`.
    pub progress: Option<ProgressBar>,
    /// Token counts at which to evaluate and ask `on_rung` whether to go on (ASHA rungs).
    pub rungs: Vec<f64>,
    pub on_rung: Option<&'a (dyn Fn(f64, f64) -> Result<bool> + Sync)>,
    /// Start from this shared WSD trunk's state at the cooldown instead of from step 0.
    pub branch: Option<Branch>,
    /// Stop (as if killed) after this many optimizer steps, leaving the last checkpoint.
    pub stop_after_steps: Option<usize>,
    /// Keep the checkpoint after a finished run (deleted by default).
    pub keep_checkpoint: bool,
    /// The folder of the finished trial that the config's `init_from` names: the run starts
    /// from its final weights.
    pub init_from: Option<PathBuf>,
}

/// The steps at which the trial meets its ASHA rungs: the first step whose tokens reach each.
pub fn rung_steps(config: &TrialConfig, rungs: &[f64]) -> Vec<usize> {
    let per_step = config.tokens_per_step() as f64;
    let mut steps: Vec<usize> = rungs.iter().map(|&r| (r / per_step).ceil().max(1.0) as usize).collect();
    steps.sort_unstable();
    steps.dedup();
    steps
}

pub fn train<B>(
    dir: &Path,
    config: &TrialConfig,
    corpus: &Corpus,
    device: &B::Device,
    device_name: &str,
    opts: &RunOptions,
) -> Result<TrialRecord>
where
    B: AutodiffBackend + Kernels,
    B::InnerBackend: Kernels,
{
    let config = &bind(config, corpus)?;
    let id = config.trial_id();
    let mut record = TrialRecord::pending(config.clone());
    record.status = Status::Running;
    record.provenance = provenance::current(config.runtime.seed);
    record.provenance.backend = config.runtime.backend.as_str().to_string();
    record.provenance.device = device_name.to_string();
    record.provenance.simd_path =
        (config.runtime.backend == codescale_core::Backend::Flex).then(crate::kernels::gemm::simd_path);
    record.provenance.threads = rayon::current_num_threads();
    record.provenance.corpus_hash = corpus.hash().to_string();
    record.provenance.tokenizer_hash = corpus.tokenizer_hash().to_string();
    anyhow::ensure!(
        corpus.vocab_size() <= config.vocab_size(),
        BadInput(format!(
            "corpus vocabulary ({}) is larger than the model's ({})",
            corpus.vocab_size(),
            config.vocab_size()
        ))
    );
    let params = config.params();
    record.metrics = Metrics {
        n_params: params.n_params,
        n_params_total: params.n_params_total,
        n_params_active: params.n_params_active,
        ..Default::default()
    };

    if opts.branch.is_some() {
        record.branch = Some(BranchOrigin {
            trunk: config.trunk_id().context("a branch needs `schedule = \"wsd\"`")?,
            step: config.decay_start(),
        });
    }
    let rungs = rung_steps(config, &opts.rungs);
    let ckpt_dir = dir.join(CHECKPOINT_DIR);
    let mut run = Run::<B>::new(config, corpus, device)?;
    match resume(&mut run, &ckpt_dir, &id) {
        Ok(resumed) => {
            // Said in the record so whoever reads it (`sweep status`, a test) can tell a run
            // that went on from its checkpoint from one that started again.
            if resumed {
                record.notes.push(format!(
                    "resumed from its checkpoint at step {} of {}",
                    run.steps,
                    config.total_steps()
                ));
            }
            if !resumed {
                if let Some(base) = &config.model.init_from {
                    start_from_base(&mut run, base, opts.init_from.as_deref(), corpus)?;
                    record.notes.push(format!("started from the final weights of trial {base}"));
                }
            }
            if !resumed && opts.branch.is_some() {
                if let Some(outcome) = fork(&mut run, &mut record, opts, &rungs, corpus, device)? {
                    return finish(dir, config, run, record, outcome, opts);
                }
            }
        }
        Err(e) => {
            // A checkpoint that cannot be read is worth nothing: start again rather than fail
            // the trial for good.
            record.notes.push(format!("discarded an unreadable checkpoint ({e:#}); trained from step 0"));
            std::fs::remove_dir_all(&ckpt_dir).with_context(|| format!("removing {}", ckpt_dir.display()))?;
            run = Run::new(config, corpus, device)?;
        }
    }
    record.save(dir)?;

    let total = config.total_steps();
    let bar = progress_bar(opts, total as u64, run.steps as u64);
    let mut outcome = Status::Done;
    while run.steps < total {
        if let Stepped::Diverged(message) = run.step() {
            record.metrics.diverged_at = Some(run.steps);
            record.error = Some(message);
            outcome = Status::Diverged;
            break;
        }
        let step = run.steps;
        if config.evaluates_at(step, &rungs) {
            run.evaluate(step == total);
        }
        bar.set_position(step as u64);
        bar.set_message(format!(
            "loss {:.3} · {:.0} tok/s",
            run.curve.last().map_or(f64::NAN, |p| p.train_loss),
            run.tokens_per_s()
        ));
        if rungs.contains(&step) && step < total && !go_on(opts, &run, step)? {
            outcome = Status::Pruned;
            break;
        }
        if config.runtime.checkpoint_interval > 0 && step % config.runtime.checkpoint_interval == 0 && step < total {
            save_progress(dir, &run, &id, &mut record)?;
        }
        if opts.stop_after_steps.is_some_and(|n| step >= n) && step < total {
            bar.abandon();
            codescale_table::write_curve(&dir.join(CURVE_FILE), &id, &run.curve)?;
            record.metrics.steps = step;
            return Ok(record);
        }
    }
    bar.finish_and_clear();
    finish(dir, config, run, record, outcome, opts)
}

/// The config bound to this corpus; one planned against another corpus is refused.
fn bind(config: &TrialConfig, corpus: &Corpus) -> Result<TrialConfig> {
    let key = CorpusKey { manifest: corpus.hash().to_string(), tokenizer: corpus.tokenizer_hash().to_string() };
    match &config.corpus_key {
        None => Ok(config.clone().bound_to(key)),
        Some(planned) if *planned == key => Ok(config.clone()),
        Some(planned) => anyhow::bail!(
            "the corpus changed since this trial was planned (manifest {} then, {} now): plan the sweep again",
            short(&planned.manifest),
            short(&key.manifest)
        ),
    }
}

/// Loads the final weights of `base`, the finished trial in folder `dir`. A base that is not
/// finished is an error that may go away (its sweep may still be training it); one without
/// weights, or whose shape or tokenizer differs, is bad input.
fn start_from_base<B: AutodiffBackend + Kernels>(
    run: &mut Run<B>,
    base: &str,
    dir: Option<&Path>,
    corpus: &Corpus,
) -> Result<()>
where
    B::InnerBackend: Kernels,
{
    let dir = dir.with_context(|| format!("`init_from`: the folder of trial {base} was not found"))?;
    let record = TrialRecord::load(dir).with_context(|| format!("`init_from`: reading trial {base}"))?;
    anyhow::ensure!(
        record.id == base && record.status == Status::Done,
        "`init_from`: trial {base} ({}) is {}, not done",
        dir.display(),
        record.status.as_str()
    );
    anyhow::ensure!(
        record.provenance.tokenizer_hash == corpus.tokenizer_hash(),
        BadInput(format!("`init_from`: trial {base} was trained with another tokenizer than this trial's corpus"))
    );
    let weights = checkpoint::load_weights(dir, base)?;
    run.start_from(weights)
        .map_err(|e| BadInput(format!("`init_from`: the weights of trial {base} do not fit this model: {e:#}")).into())
}

/// Restores the trial's own checkpoint, if it has one; an error when it is there but
/// unreadable, belongs to another trial or does not fit the model.
fn resume<B: AutodiffBackend + Kernels>(run: &mut Run<B>, ckpt_dir: &Path, id: &str) -> Result<bool>
where
    B::InnerBackend: Kernels,
{
    let Some(ck) = Checkpoint::load(ckpt_dir)? else { return Ok(false) };
    anyhow::ensure!(ck.meta.trial_id == id, "it belongs to trial {}", ck.meta.trial_id);
    run.restore(ck)?;
    Ok(true)
}

/// Starts a branch from its trunk's fork: the trunk's curve, keeping only the evaluations this
/// trial would have made itself, then the rung decisions those evaluations settle. `Some`
/// outcome when the trial ends there (the trunk diverged, or a rung pruned it).
fn fork<B: AutodiffBackend + Kernels>(
    run: &mut Run<B>,
    record: &mut TrialRecord,
    opts: &RunOptions,
    rungs: &[usize],
    corpus: &Corpus,
    device: &B::Device,
) -> Result<Option<Status>>
where
    B::InnerBackend: Kernels,
{
    let branch = opts.branch.as_ref().expect("called for branches");
    let config = run.config.clone();
    let diverged = match trunk::fork::<B>(branch, &config, corpus, device)? {
        Fork::At(ck) => {
            run.restore(*ck)?;
            None
        }
        Fork::Diverged { step, message, curve } => {
            run.curve = curve;
            Some((step, message))
        }
    };
    for point in &mut run.curve {
        if !config.evaluates_at(point.step, rungs) {
            point.forget_evaluation();
        }
    }
    if let Some((step, message)) = diverged {
        record.metrics.diverged_at = Some(step);
        record.error = Some(format!("{message} (in the shared trunk)"));
        return Ok(Some(Status::Diverged));
    }
    for &step in rungs.iter().filter(|&&s| s <= run.steps) {
        if !go_on(opts, run, step)? {
            run.curve.truncate(step);
            run.steps = step;
            return Ok(Some(Status::Pruned));
        }
    }
    Ok(None)
}

/// Asks the rung whether the trial goes on, with its validation loss after `step` steps.
fn go_on<B: AutodiffBackend + Kernels>(opts: &RunOptions, run: &Run<B>, step: usize) -> Result<bool>
where
    B::InnerBackend: Kernels,
{
    let point = run.curve.iter().find(|p| p.step == step);
    match (opts.on_rung, point.and_then(|p| p.val_loss)) {
        (Some(on_rung), Some(val)) => on_rung((step * run.config.tokens_per_step()) as f64, val),
        _ => Ok(true),
    }
}

/// Checkpoint, curve so far and the record's step count (for `sweep status`; the status stays
/// `running`).
fn save_progress<B: AutodiffBackend + Kernels>(
    dir: &Path,
    run: &Run<B>,
    id: &str,
    record: &mut TrialRecord,
) -> Result<()>
where
    B::InnerBackend: Kernels,
{
    run.checkpoint(id).save(&dir.join(CHECKPOINT_DIR))?;
    codescale_table::write_curve(&dir.join(CURVE_FILE), id, &run.curve)?;
    record.metrics.steps = run.steps;
    record.save(dir)
}

/// The final record and curve; the checkpoint goes unless asked to stay.
fn finish<B: AutodiffBackend + Kernels>(
    dir: &Path,
    config: &TrialConfig,
    run: Run<B>,
    mut record: TrialRecord,
    outcome: Status,
    opts: &RunOptions,
) -> Result<TrialRecord>
where
    B::InnerBackend: Kernels,
{
    let diverged_at = record.metrics.diverged_at;
    record.status = outcome;
    record.metrics = Metrics { diverged_at, ..Metrics::from_curve(config, &run.curve, run.wall_s(), run.train_s) };
    record.provenance.finished = Some(provenance::now_rfc3339());
    codescale_table::write_curve(&dir.join(CURVE_FILE), &config.trial_id(), &run.curve)?;
    // The final weights stay (without the optimizer's state): a later trial may start from
    // them (`init_from`). Written before the record says done, so a done trial has them.
    if outcome == Status::Done {
        checkpoint::save_weights(dir, &config.trial_id(), run.steps, run.weights())?;
    }
    record.save(dir)?;
    let ckpt_dir = dir.join(CHECKPOINT_DIR);
    if !opts.keep_checkpoint && ckpt_dir.exists() {
        std::fs::remove_dir_all(&ckpt_dir).with_context(|| format!("removing {}", ckpt_dir.display()))?;
    }
    Ok(record)
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

fn progress_bar(opts: &RunOptions, steps: u64, start: u64) -> ProgressBar {
    if let Some(bar) = &opts.progress {
        bar.set_length(steps);
        bar.set_position(start);
        return bar.clone();
    }
    if opts.quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps).with_position(start);
    bar.set_style(
        ProgressStyle::with_template("{spinner} step {pos}/{len} [{bar:30}] {msg} · ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}
