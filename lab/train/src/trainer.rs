//! The training loop: one trial from its config to `trial.json` and `curve.parquet`.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ElementConversion;
use codescale_core::record::{CHECKPOINT_DIR, CURVE_FILE};
use codescale_core::{provenance, BadInput, CorpusKey, CurvePoint, Metrics, Status, TrialConfig, TrialRecord};
use codescale_data::{Corpus, Split};
use indicatif::{ProgressBar, ProgressStyle};

use crate::checkpoint::{self, Checkpoint};
use crate::data::{EvalSet, Sampler};
use crate::kernels::Kernels;
use crate::model::Transformer;
use crate::optim::AdamW;

/// What the caller controls about a run besides the config.
#[derive(Default)]
pub struct RunOptions<'a> {
    pub quiet: bool,
    /// A bar to drive (the sweep scheduler's); otherwise one is made unless `quiet`.
    pub progress: Option<ProgressBar>,
    /// Token counts at which to evaluate and ask `on_rung` whether to go on (ASHA rungs).
    pub rungs: Vec<f64>,
    pub on_rung: Option<&'a (dyn Fn(f64, f64) -> Result<bool> + Sync)>,
    /// Stop (as if killed) after this many optimizer steps, leaving the last checkpoint.
    pub stop_after_steps: Option<usize>,
    /// Keep the checkpoint after a finished run (deleted by default).
    pub keep_checkpoint: bool,
}

/// A training loss this far above a uniform guess (ln V) means the run has blown up even if
/// it is still finite: with clipping and normalisation a run at LR 10 can stay finite for
/// hundreds of steps while learning nothing.
fn divergence_threshold(vocab: usize) -> f64 {
    2.0 * (vocab as f64).ln() + 1.0
}

pub fn train<B>(dir: &Path, config: &TrialConfig, corpus: &Corpus, device: &B::Device, device_name: &str, opts: &RunOptions) -> Result<TrialRecord>
where
    B: AutodiffBackend + Kernels,
    B::InnerBackend: Kernels,
{
    let key = CorpusKey { manifest: corpus.hash().to_string(), tokenizer: corpus.tokenizer_hash().to_string() };
    let config = &match &config.corpus_key {
        None => config.clone().bound_to(key),
        Some(planned) if *planned == key => config.clone(),
        Some(planned) => anyhow::bail!(
            "the corpus changed since this trial was planned (manifest {} then, {} now): plan the sweep again",
            short(&planned.manifest),
            short(&key.manifest)
        ),
    };
    let id = config.trial_id();
    let mut record = TrialRecord::pending(config.clone());
    record.status = Status::Running;
    record.provenance = provenance::current(config.seed);
    record.provenance.backend = config.backend.as_str().to_string();
    record.provenance.device = device_name.to_string();
    record.provenance.threads = rayon::current_num_threads();
    record.provenance.corpus_hash = corpus.hash().to_string();
    record.provenance.tokenizer_hash = corpus.tokenizer_hash().to_string();
    anyhow::ensure!(
        corpus.vocab_size() <= config.vocab_size(),
        BadInput(format!("corpus vocabulary ({}) is larger than the model's ({})", corpus.vocab_size(), config.vocab_size()))
    );

    let params = config.params();
    record.metrics = Metrics { n_params: params.n_params, n_params_total: params.n_params_total, n_params_active: params.n_params_active, ..Default::default() };

    let train_tokens = corpus.shard(&config.language, Split::Train)?;
    let val_tokens = corpus.shard(&config.language, Split::Val)?;
    let val_bytes_per_token = corpus.bytes_per_token(&config.language, Split::Val);
    // Too small a shard for the window fails the same way every time: bad input, not retried.
    let mut sampler = Sampler::new(train_tokens, config.seq_len, config.micro_batch, config.seed).map_err(|e| BadInput(format!("training shard of {}: {e:#}", config.language)))?;
    let mut eval = EvalSet::new(val_tokens, config.seq_len, config.eval_tokens, config.micro_batch).map_err(|e| BadInput(format!("validation shard of {}: {e:#}", config.language)))?;

    let mut model = Transformer::<B>::new(config, device);
    let mut opt = AdamW::<B>::new(config);
    let ckpt_dir = dir.join(CHECKPOINT_DIR);
    let (mut start, mut curve, wall_before, train_before) = match resume::<B>(&ckpt_dir, &id, model.clone(), &mut opt, device) {
        Ok(Some((resumed, step, curve, wall, train))) => {
            model = resumed;
            (step, curve, wall, train)
        }
        Ok(None) => (0, Vec::new(), 0.0, 0.0),
        Err(e) => {
            // A checkpoint that cannot be read is worth nothing: start again rather than fail
            // the trial for good.
            record.notes.push(format!("discarded an unreadable checkpoint ({e:#}); trained from step 0"));
            std::fs::remove_dir_all(&ckpt_dir).with_context(|| format!("removing {}", ckpt_dir.display()))?;
            opt = AdamW::<B>::new(config);
            (0, Vec::new(), 0.0, 0.0)
        }
    };
    record.save(dir)?;

    let steps = config.total_steps();
    let accum = config.accumulation_steps();
    let tokens_per_step = config.tokens_per_step() as f64;
    let eval_every = config.eval_every();
    let threshold = divergence_threshold(config.vocab_size());
    let bar = progress_bar(opts, steps as u64, start as u64);
    let started = Instant::now();
    let mut train_s = train_before;
    let mut rungs: Vec<f64> = opts.rungs.iter().copied().filter(|&r| r > start as f64 * tokens_per_step).collect();
    rungs.sort_by(f64::total_cmp);

    let mut outcome = Status::Done;
    while start < steps {
        let step = start;
        let lr = config.lr_at(step);
        let t0 = Instant::now();
        let mut loss_sum = None;
        let mut dropped_sum = None;
        for micro in 0..accum {
            let batch = sampler.batch::<B>(step, micro, device);
            let (loss, aux) = model.loss(batch.inputs, batch.targets);
            if let Some(dropped) = aux.dropped().map(|d| d.inner()) {
                dropped_sum = Some(match dropped_sum.take() {
                    Some(s) => s + dropped,
                    None => dropped,
                });
            }
            let objective = match aux.loss {
                Some(aux) => loss.clone() + aux,
                None => loss.clone(),
            };
            let objective = if accum > 1 { objective.div_scalar(accum as f64) } else { objective };
            let grads = objective.backward();
            opt.accumulate(&model, &grads);
            let loss = loss.inner();
            loss_sum = Some(match loss_sum {
                Some(s) => s + loss,
                None => loss,
            });
        }
        let train_loss = loss_sum.expect("at least one micro-batch").into_scalar().elem::<f64>() / accum as f64;
        let dropped_frac = dropped_sum.map(|d| d.into_scalar().elem::<f64>() / accum as f64);
        let grad_norm = opt.grad_norm();
        if !train_loss.is_finite() || !grad_norm.is_finite() || train_loss > threshold {
            record.metrics.diverged_at = Some(step);
            record.error = Some(format!("diverged at step {step}: train loss {train_loss}, gradient norm {grad_norm}"));
            outcome = Status::Diverged;
            break;
        }
        model = opt.step(model, lr, grad_norm);
        train_s += t0.elapsed().as_secs_f64();
        start = step + 1;
        let tokens = start as f64 * tokens_per_step;

        let at_rung = rungs.first().is_some_and(|&r| tokens >= r);
        let mut point = CurvePoint { step: start, tokens, lr, train_loss, val_loss: None, val_bpb: None, grad_norm, wall_s: wall_before + started.elapsed().as_secs_f64(), expert_load: None, router_entropy: None, dropped_frac };
        if start % eval_every == 0 || start == steps || at_rung {
            let (val_loss, load, entropy) = evaluate(&model.valid(), &mut eval, device);
            point.val_loss = Some(val_loss);
            point.val_bpb = Some(val_loss / val_bytes_per_token / std::f64::consts::LN_2);
            point.expert_load = load;
            point.router_entropy = entropy;
        }
        bar.set_position(start as u64);
        bar.set_message(format!("loss {train_loss:.3} · {:.0} tok/s", (start as f64 * tokens_per_step) / train_s.max(1e-9)));
        curve.push(point.clone());

        if at_rung {
            while rungs.first().is_some_and(|&r| tokens >= r) {
                rungs.remove(0);
            }
            if let (Some(on_rung), Some(val)) = (opts.on_rung, point.val_loss) {
                if start < steps && !on_rung(tokens, val)? {
                    outcome = Status::Pruned;
                    break;
                }
            }
        }
        let interval = config.checkpoint_interval;
        if interval > 0 && start % interval == 0 && start < steps {
            let wall = wall_before + started.elapsed().as_secs_f64();
            Checkpoint::new(&id, start, opt.t, opt.export_steps(), wall, train_s, curve.clone(), checkpoint::export_params(&model), opt.export_moments()).save(&ckpt_dir)?;
            codescale_table::write_rows(&dir.join(CURVE_FILE), &curve)?;
            // Progress for `sweep status`; the status stays `running`.
            record.metrics.steps = start;
            record.save(dir)?;
        }
        if opts.stop_after_steps.is_some_and(|n| start >= n) && start < steps {
            bar.abandon();
            codescale_table::write_rows(&dir.join(CURVE_FILE), &curve)?;
            record.metrics.steps = start;
            return Ok(record);
        }
    }
    bar.finish_and_clear();

    let wall_s = wall_before + started.elapsed().as_secs_f64();
    let diverged_at = record.metrics.diverged_at;
    record.status = outcome;
    record.metrics = Metrics { diverged_at, ..Metrics::from_curve(config, &curve, wall_s, train_s) };
    record.provenance.finished = Some(provenance::now_rfc3339());
    codescale_table::write_rows(&dir.join(CURVE_FILE), &curve)?;
    record.save(dir)?;
    if !opts.keep_checkpoint && ckpt_dir.exists() {
        std::fs::remove_dir_all(&ckpt_dir).with_context(|| format!("removing {}", ckpt_dir.display()))?;
    }
    Ok(record)
}

/// The model, optimizer state, step, curve and timings of the trial's checkpoint, if it has
/// one of this trial; an error when the checkpoint is there but unreadable or does not fit.
#[allow(clippy::type_complexity)]
fn resume<B: AutodiffBackend + Kernels>(ckpt_dir: &Path, id: &str, model: Transformer<B>, opt: &mut AdamW<B>, device: &B::Device) -> Result<Option<(Transformer<B>, usize, Vec<CurvePoint>, f64, f64)>>
where
    B::InnerBackend: Kernels,
{
    let Some(ck) = Checkpoint::load(ckpt_dir)? else { return Ok(None) };
    if ck.meta.trial_id != id {
        anyhow::bail!("it belongs to trial {}", ck.meta.trial_id);
    }
    anyhow::ensure!(ck.meta.param_steps.len() == ck.moments.len(), "it has no per-parameter step counts");
    let model = checkpoint::import_params(model, ck.params)?;
    opt.import_state(ck.moments, ck.meta.param_steps, ck.meta.adam_t, device);
    Ok(Some((model, ck.meta.step, ck.meta.curve, ck.meta.wall_s, ck.meta.train_s)))
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// Mean validation loss over the fixed windows, and the first MoE layer's routing.
fn evaluate<B: Kernels>(model: &Transformer<B>, eval: &mut EvalSet, device: &B::Device) -> (f64, Option<Vec<f64>>, Option<f64>) {
    let mut total = 0.0;
    let mut rows = 0usize;
    let mut load: Option<Vec<f64>> = None;
    let mut entropy = 0.0;
    for batch in eval.batches::<B>(device) {
        let n = batch.inputs.dims()[0];
        let (loss, aux) = model.loss(batch.inputs, batch.targets);
        total += loss.into_scalar().elem::<f64>() * n as f64;
        if let Some(stats) = aux.router.into_iter().next() {
            let layer_load = crate::optim::to_vec(stats.load.clone());
            let acc = load.get_or_insert_with(|| vec![0.0; layer_load.len()]);
            acc.iter_mut().zip(layer_load).for_each(|(a, l)| *a += l as f64 * n as f64);
            entropy += stats.entropy().into_scalar().elem::<f64>() * n as f64;
        }
        rows += n;
    }
    let rows = rows.max(1) as f64;
    let load = load.map(|l| l.into_iter().map(|v| v / rows).collect());
    let entropy = load.as_ref().map(|_| entropy / rows);
    (total / rows, load, entropy)
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
    bar.set_style(ProgressStyle::with_template("{spinner} step {pos}/{len} [{bar:30}] {msg} · ETA {eta}").expect("valid template").progress_chars("=> "));
    bar
}
