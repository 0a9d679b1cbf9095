//! A model in training: weights, optimizer, data and the curve so far, advanced one optimizer
//! step at a time along its config's learning-rate schedule. The trainer (one trial) and the
//! trunk (shared WSD prefixes) both drive one of these.

use std::time::Instant;

use anyhow::Result;
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use codescale_core::{BadInput, CurvePoint, TrialConfig};
use codescale_data::pairs::function_pairs;
use codescale_data::task::Task;
use codescale_data::{Corpus, Fim, Split};

use crate::checkpoint::{self, Checkpoint};
use crate::data::{pair_rows, EvalSet, PairSampler, Sampler, ScoredSet};
use crate::kernels::Kernels;
use crate::model::Transformer;
use crate::optim::{to_vec, AdamW};

pub struct Run<'d, B: AutodiffBackend + Kernels>
where
    B::InnerBackend: Kernels,
{
    /// The schedule followed (a trial's, or a trunk's constant-rate one).
    pub config: TrialConfig,
    device: &'d B::Device,
    /// Taken out while the optimizer updates it: a clone would hold a second reference to every
    /// weight and turn the in-place updates into copies.
    model: Option<Transformer<B>>,
    opt: AdamW<B>,
    training: Training,
    eval: EvalSet,
    /// The code task scored at the final evaluation; `None` with `task_examples = 0`.
    task: Option<Task>,
    val_bytes_per_token: f64,
    /// Optimizer steps done.
    pub steps: usize,
    pub curve: Vec<CurvePoint>,
    /// Seconds spent before this process took over (restored from a checkpoint).
    wall_before: f64,
    started: Instant,
    /// Seconds spent in training steps (evaluation excluded), all processes together.
    pub train_s: f64,
}

/// Evaluations before the last step read about this many tokens (evenly spaced windows of the
/// full set), at most all `eval_tokens`.
pub const CURVE_EVAL_TOKENS: usize = 32_768;

/// How a step ended.
pub enum Stepped {
    Ok,
    /// The loss or the gradient blew up before the update; nothing was changed.
    Diverged(String),
}

/// What a run trains on: pretraining windows of a shard, or fine-tuning pairs.
enum Training {
    Windows(Sampler),
    Pairs(PairSampler),
}

impl Training {
    fn batch<B: burn::tensor::backend::Backend>(
        &mut self,
        step: usize,
        micro: usize,
        device: &B::Device,
    ) -> crate::data::Batch<B> {
        match self {
            Training::Windows(s) => s.batch(step, micro, device),
            Training::Pairs(p) => p.batch(step, micro, device),
        }
    }
}

/// A training loss this far above a uniform guess (ln V) means the run has blown up even if
/// it is still finite: with clipping and normalisation a run at LR 10 can stay finite for
/// hundreds of steps while learning nothing.
fn divergence_threshold(vocab: usize) -> f64 {
    2.0 * (vocab as f64).ln() + 1.0
}

impl<'d, B: AutodiffBackend + Kernels> Run<'d, B>
where
    B::InnerBackend: Kernels,
{
    /// A fresh model at step 0, with the config's data.
    pub fn new(config: &TrialConfig, corpus: &Corpus, device: &'d B::Device) -> Result<Self> {
        let language = &config.data.language;
        let train_tokens = corpus.shard(language, Split::Train)?;
        let val_tokens = corpus.shard(language, Split::Val)?;
        let (seq_len, micro_batch, seed) = (config.data.seq_len, config.optimizer.micro_batch, config.runtime.seed);
        let task = match config.eval.task_examples {
            0 => None,
            n => {
                let task = Task::identifier_completion(corpus.tokenizer(), &val_tokens, seq_len, n);
                anyhow::ensure!(
                    !task.examples.is_empty(),
                    BadInput(format!(
                        "task_examples: the validation files of {language} hold no identifier to complete within a \
                         window of {seq_len} tokens (set task_examples = 0 to train without the task metric)"
                    ))
                );
                Some(task)
            }
        };
        // Fine-tuning pairs for evaluation from the held-out files, for training from the
        // training files: the completions scored are of functions neither the base nor the
        // fine-tuning saw.
        let held_out = match config.data.sft {
            Some(_) => {
                let at_most = (config.eval.eval_tokens / seq_len).max(1);
                Some(pairs(corpus, language, &val_tokens, seq_len, at_most, "validation")?)
            }
            None => None,
        };
        let eval = EvalSet::new(val_tokens, seq_len, config.eval.eval_tokens, micro_batch)
            .map_err(|e| BadInput(format!("validation shard of {language}: {e:#}")))?;
        // A FIM trial is evaluated on infilling whatever it trains on; fine-tuning pairs are
        // never put in FIM form (its `fim_rate` then only gives the model its sentinels, to take
        // a FIM base's weights).
        let fim = config
            .data
            .fim()
            .then(|| Fim::new(corpus.tokenizer().clone(), config.data.fim_rate, config.data.fim_spm_rate));
        let eval = match &fim {
            Some(fim) => eval.with_infilling(fim),
            None => eval,
        };
        let (training, eval) = match held_out {
            Some(held_out) => {
                let train = pairs(corpus, language, &train_tokens, seq_len, usize::MAX, "training")?;
                let sampler =
                    PairSampler::new(train, micro_batch, seed).map_err(|e| BadInput(format!("sft: {e:#}")))?;
                (Training::Pairs(sampler), eval.with_completions(held_out))
            }
            None => {
                // Too small a shard for the window fails the same way every time: bad input.
                let sampler = Sampler::new(train_tokens, seq_len, micro_batch, seed)
                    .map_err(|e| BadInput(format!("training shard of {language}: {e:#}")))?;
                (
                    Training::Windows(match fim {
                        Some(fim) => sampler.with_fim(fim),
                        None => sampler,
                    }),
                    eval,
                )
            }
        };
        Ok(Run {
            config: config.clone(),
            device,
            model: Some(Transformer::for_trial(config, device)),
            opt: AdamW::new(config),
            training,
            eval,
            task,
            val_bytes_per_token: corpus.bytes_per_token(&config.data.language, Split::Val),
            steps: 0,
            curve: Vec::new(),
            wall_before: 0.0,
            started: Instant::now(),
            train_s: 0.0,
        })
    }

    fn model(&self) -> &Transformer<B> {
        self.model.as_ref().expect("the model is only out during an update")
    }

    /// Starts from another trial's final weights (fine-tuning): the weights only, with the
    /// optimizer, step and curve of a fresh run. An error when the shapes differ.
    pub fn start_from(&mut self, weights: Vec<Vec<f32>>) -> Result<()> {
        self.model = Some(checkpoint::import_params(self.model.take().expect("model present"), weights)?);
        Ok(())
    }

    /// The weights as they are now, as host vectors (what `weights.bin` stores).
    pub fn weights(&self) -> Vec<Vec<f32>> {
        checkpoint::export_params(self.model())
    }

    /// Takes over a checkpoint's state: weights, optimizer, step, curve and timings. On error
    /// the run is left unusable: start a new one.
    pub fn restore(&mut self, ck: Checkpoint) -> Result<()> {
        anyhow::ensure!(ck.meta.param_steps.len() == ck.moments.len(), "it has no per-parameter step counts");
        self.model = Some(checkpoint::import_params(self.model.take().expect("model present"), ck.params)?);
        self.opt.import_state(ck.moments, ck.meta.param_steps, ck.meta.adam_t, self.device);
        self.steps = ck.meta.step;
        self.curve = ck.meta.curve;
        self.wall_before = ck.meta.wall_s;
        self.started = Instant::now();
        self.train_s = ck.meta.train_s;
        Ok(())
    }

    /// The state to resume from, labelled with its owner's id.
    pub fn checkpoint(&self, owner: &str) -> Checkpoint {
        Checkpoint::new(
            owner,
            self.steps,
            self.opt.t,
            self.opt.export_steps(),
            self.wall_s(),
            self.train_s,
            self.curve.clone(),
            checkpoint::export_params(self.model()),
            self.opt.export_moments(),
        )
    }

    pub fn wall_s(&self) -> f64 {
        self.wall_before + self.started.elapsed().as_secs_f64()
    }

    /// One optimizer step (all its micro-batches) at the schedule's rate; its curve point is
    /// pushed. Batches are a pure function of (seed, step), so a restored run continues exactly.
    pub fn step(&mut self) -> Stepped {
        let step = self.steps;
        let lr = self.config.lr_at(step);
        let accum = self.config.accumulation_steps();
        let t0 = Instant::now();
        let mut loss_sum = None;
        let mut dropped_sum = None;
        for micro in 0..accum {
            let batch = self.training.batch::<B>(step, micro, self.device);
            let (loss, aux) = self.model().loss(batch.inputs, batch.targets, batch.scored);
            if let Some(dropped) = aux.dropped() {
                add(&mut dropped_sum, dropped.inner());
            }
            let objective = match aux.loss {
                Some(aux) => loss.clone() + aux,
                None => loss.clone(),
            };
            let objective = if accum > 1 { objective.div_scalar(accum as f64) } else { objective };
            let grads = objective.backward();
            self.opt.accumulate(self.model.as_ref().expect("model present"), &grads);
            add(&mut loss_sum, loss.inner());
        }
        // The loss and the gradient's norm come to the host in one read: on CUDA a read waits
        // for the device to finish everything queued before it, and leaves it idle until the
        // next work is queued. The values are the same as read one by one.
        let sq_sum = self.opt.grad_sq_sum().expect("a model with parameters has gradients");
        let read = to_vec(Tensor::cat(
            [loss_sum.expect("at least one micro-batch"), sq_sum].into_iter().chain(dropped_sum).collect(),
            0,
        ));
        let train_loss = read[0] as f64 / accum as f64;
        let grad_norm = (read[1] as f64).sqrt();
        let dropped_frac = read.get(2).map(|&d| d as f64 / accum as f64);
        if !train_loss.is_finite()
            || !grad_norm.is_finite()
            || train_loss > divergence_threshold(self.config.vocab_size())
        {
            return Stepped::Diverged(format!(
                "diverged at step {step}: train loss {train_loss}, gradient norm {grad_norm}"
            ));
        }
        let model = self.model.take().expect("model present");
        self.model = Some(self.opt.step(model, lr, grad_norm));
        self.train_s += t0.elapsed().as_secs_f64();
        self.steps = step + 1;
        let tokens = (self.steps * self.config.tokens_per_step()) as f64;
        self.curve.push(CurvePoint {
            step: self.steps,
            tokens,
            lr,
            train_loss,
            val_loss: None,
            val_loss_se: None,
            val_bpb: None,
            task_exact_match: None,
            task_exact_match_se: None,
            val_completion_loss: None,
            val_completion_loss_se: None,
            val_fim_loss: None,
            val_fim_loss_se: None,
            grad_norm,
            wall_s: self.wall_s(),
            expert_load: None,
            router_entropy: None,
            dropped_frac,
        });
        Stepped::Ok
    }

    /// Evaluates the model as it is now on the fixed validation windows and records the loss,
    /// its standard error, the routing (and for FIM trials the infilling loss) in the last curve
    /// point; the final evaluation also scores the code task. A trial's final evaluation
    /// (`full`) reads all `eval_tokens`; those along the way read about [`CURVE_EVAL_TOKENS`],
    /// since a ladder's points are its final losses and a full evaluation costs about a third of
    /// training on as many tokens.
    pub fn evaluate(&mut self, full: bool) {
        let stride = if full { 1 } else { self.config.eval.eval_tokens.div_ceil(CURVE_EVAL_TOKENS) };
        let model = self.model().valid();
        let e = evaluate(&model, &mut self.eval, self.device, stride);
        let infill =
            self.eval.infill_batches::<B::InnerBackend>(self.device, stride).and_then(|b| evaluate_scored(&model, b));
        let completion = self
            .eval
            .completion_batches::<B::InnerBackend>(self.device, stride)
            .and_then(|b| evaluate_scored(&model, b));
        let point = self.curve.last_mut().expect("evaluation after a step");
        (point.val_fim_loss, point.val_fim_loss_se) = (infill.map(|i| i.0), infill.map(|i| i.1));
        (point.val_completion_loss, point.val_completion_loss_se) = (completion.map(|c| c.0), completion.map(|c| c.1));
        // The task only at the final evaluation: decoding costs a few evaluations' worth.
        if let Some(task) = self.task.as_ref().filter(|_| full) {
            let score = crate::task::exact_match(&model, task, self.device, self.config.optimizer.micro_batch);
            (point.task_exact_match, point.task_exact_match_se) = (Some(score.rate()), Some(score.se()));
        }
        point.val_loss = Some(e.loss);
        point.val_loss_se = Some(e.se);
        point.val_bpb = Some(e.loss / self.val_bytes_per_token / std::f64::consts::LN_2);
        point.expert_load = e.load;
        point.router_entropy = e.entropy;
    }

    /// Tokens per second of training so far.
    pub fn tokens_per_s(&self) -> f64 {
        (self.steps * self.config.tokens_per_step()) as f64 / self.train_s.max(1e-9)
    }
}

/// `sum += x`, where an empty sum is `x` itself (a sum of device tensors, read once per step).
fn add<T: std::ops::Add<Output = T>>(sum: &mut Option<T>, x: T) {
    *sum = Some(match sum.take() {
        Some(s) => s + x,
        None => x,
    });
}

/// One evaluation: the mean loss over the windows, its standard error, and the first MoE
/// layer's routing.
struct Evaluation {
    loss: f64,
    se: f64,
    load: Option<Vec<f64>>,
    entropy: Option<f64>,
}

/// The model's loss at every position of a batch, on the host (rows × time, row by row), with
/// what the forward pass reports besides (MoE routing).
fn token_losses<B: Kernels>(model: &Transformer<B>, batch: crate::data::Batch<B>) -> (Vec<f32>, crate::model::Aux<B>) {
    let [rows, time] = batch.inputs.dims();
    let (logits, aux) = model.forward(batch.inputs);
    let losses = B::token_losses(logits, batch.targets.reshape([rows * time]))
        .into_data()
        .convert::<f32>()
        .to_vec()
        .expect("f32 losses");
    (losses, aux)
}

/// The loss on scored spans (infilling middles, pair completions): nats per scored token over
/// all examples (a ratio of sums, so that long spans weigh by their tokens), and its standard
/// error by the delta method over examples. `None` when no token is scored.
fn evaluate_scored<B: Kernels>(
    model: &Transformer<B>,
    batches: Vec<(crate::data::Batch<B>, Vec<f32>)>,
) -> Option<(f64, f64)> {
    let (mut sums, mut counts) = (Vec::new(), Vec::new());
    for (batch, mask) in batches {
        let time = batch.inputs.dims()[1];
        let (losses, _) = token_losses(model, batch);
        for (l, m) in losses.chunks(time).zip(mask.chunks(time)) {
            sums.push(l.iter().zip(m).map(|(&l, &m)| (l * m) as f64).sum::<f64>());
            counts.push(m.iter().map(|&m| m as f64).sum::<f64>());
        }
    }
    let (total, tokens, n) = (sums.iter().sum::<f64>(), counts.iter().sum::<f64>(), sums.len() as f64);
    if tokens == 0.0 {
        return None;
    }
    let loss = total / tokens;
    let spread = sums.iter().zip(&counts).map(|(s, c)| (s - loss * c).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    Some((loss, (spread / n).sqrt() / (tokens / n)))
}

/// Every window is one sample of the validation set: the loss is the mean of the windows'
/// mean token losses, and its standard error their standard deviation over √windows.
fn evaluate<B: Kernels>(model: &Transformer<B>, eval: &mut EvalSet, device: &B::Device, stride: usize) -> Evaluation {
    let mut windows: Vec<f64> = Vec::new();
    let mut load: Option<Vec<f64>> = None;
    let mut entropy = 0.0;
    for batch in eval.batches::<B>(device, stride) {
        let [rows, time] = batch.inputs.dims();
        let (losses, aux) = token_losses(model, batch);
        windows.extend(losses.chunks(time).map(|w| w.iter().map(|&l| l as f64).sum::<f64>() / time as f64));
        if let Some(stats) = aux.router.into_iter().next() {
            let layer_load = to_vec(stats.load.clone());
            let acc = load.get_or_insert_with(|| vec![0.0; layer_load.len()]);
            acc.iter_mut().zip(layer_load).for_each(|(a, l)| *a += l as f64 * rows as f64);
            entropy += stats.entropy().into_scalar().elem::<f64>() * rows as f64;
        }
    }
    let n = windows.len().max(1) as f64;
    let loss = windows.iter().sum::<f64>() / n;
    let var = windows.iter().map(|w| (w - loss).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let load = load.map(|l| l.into_iter().map(|v| v / n).collect());
    let entropy = load.as_ref().map(|_| entropy / n);
    Evaluation { loss, se: (var / n).sqrt(), load, entropy }
}

/// The instruction pairs of a shard as scored rows of one window, at most `at_most` of them,
/// evenly spaced over all that fit; bad input naming `sft` when none does.
fn pairs(
    corpus: &Corpus,
    language: &str,
    shard: &[u16],
    seq_len: usize,
    at_most: usize,
    files: &str,
) -> Result<ScoredSet> {
    let rows = pair_rows(&function_pairs(corpus.tokenizer(), shard, language), seq_len, corpus.eod_token());
    anyhow::ensure!(
        !rows.is_empty(),
        BadInput(format!(
            "sft: the {files} files of {language} hold no documented function (a doc comment right above \
             a function's signature) to fine-tune on"
        ))
    );
    let step = (rows.len() as f64 / at_most as f64).max(1.0);
    let picked = (0..at_most.min(rows.len())).map(|i| rows[(i as f64 * step) as usize].clone()).collect();
    Ok(ScoredSet::new(picked, seq_len, corpus.eod_token()))
}
