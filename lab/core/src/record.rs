//! `trial.json`: a trial's resolved config, status, final metrics and provenance — everything
//! needed to put it in a results table or to replay it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::TrialConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Pending,
    Running,
    Done,
    Failed,
    Diverged,
    Pruned,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Diverged => "diverged",
            Status::Pruned => "pruned",
        }
    }
    /// A trial that has ended. Ended trials are not run again, except `failed` ones whose cause
    /// can go away ([`TrialRecord::needs_run`]).
    pub fn is_final(self) -> bool {
        matches!(self, Status::Done | Status::Failed | Status::Diverged | Status::Pruned)
    }
}

/// Final numbers of a trial. Losses are in nats per token; `val_bpb` in bits per byte.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub n_params: f64,
    pub n_params_total: f64,
    pub n_params_active: f64,
    /// Training FLOPs for the tokens actually seen (6·N·D plus the attention term).
    pub flops: f64,
    pub flops_with_head: f64,
    pub steps: usize,
    pub tokens: f64,
    pub train_loss: Option<f64>,
    pub val_loss: Option<f64>,
    /// Standard error of `val_loss` over the evaluation windows.
    #[serde(default)]
    pub val_loss_se: Option<f64>,
    pub val_bpb: Option<f64>,
    /// Infilling loss: nats per token of the middle span, given prefix and suffix in PSM order
    /// (trials with `fim_rate` > 0 only).
    #[serde(default)]
    pub val_fim_loss: Option<f64>,
    /// Standard error of `val_fim_loss`.
    #[serde(default)]
    pub val_fim_loss_se: Option<f64>,
    /// The code task's score: the share of identifier completions right by greedy exact match
    /// (`task_examples` of them), at the final evaluation.
    #[serde(default)]
    pub task_exact_match: Option<f64>,
    /// Its binomial standard error.
    #[serde(default)]
    pub task_exact_match_se: Option<f64>,
    /// Fine-tuning trials (`sft`): nats per completion token on the held-out instruction pairs.
    #[serde(default)]
    pub val_completion_loss: Option<f64>,
    /// Its standard error (delta method over pairs).
    #[serde(default)]
    pub val_completion_loss_se: Option<f64>,
    pub wall_s: f64,
    pub tokens_per_s: f64,
    /// Step at which the loss or gradient became NaN/Inf.
    pub diverged_at: Option<usize>,
    /// MoE: the router sent more than 90 % of tokens to one expert at the last evaluation.
    #[serde(default)]
    pub router_collapsed: bool,
    /// MoE with a `capacity_factor`: the fraction of token-slots dropped over capacity in
    /// training, averaged over the steps. Unset when nothing can be dropped.
    #[serde(default)]
    pub dropped_frac: Option<f64>,
}

impl Metrics {
    /// The final numbers of a trial from its curve: the last training loss, the last
    /// evaluation, compute for the tokens seen. `train_s` is time spent in training steps
    /// (evaluation excluded), for `tokens_per_s`.
    pub fn from_curve(config: &TrialConfig, curve: &[CurvePoint], wall_s: f64, train_s: f64) -> Metrics {
        let params = config.params();
        let steps = curve.last().map_or(0, |p| p.step);
        let tokens = steps as f64 * config.tokens_per_step() as f64;
        let last_eval = curve.iter().rev().find(|p| p.val_loss.is_some());
        Metrics {
            n_params: params.n_params,
            n_params_total: params.n_params_total,
            n_params_active: params.n_params_active,
            flops: params.flops_per_token() * tokens,
            flops_with_head: params.flops_per_token_with_head() * tokens,
            steps,
            tokens,
            train_loss: curve.last().map(|p| p.train_loss),
            val_loss: last_eval.and_then(|p| p.val_loss),
            val_loss_se: last_eval.and_then(|p| p.val_loss_se),
            val_bpb: last_eval.and_then(|p| p.val_bpb),
            val_fim_loss: last_eval.and_then(|p| p.val_fim_loss),
            val_fim_loss_se: last_eval.and_then(|p| p.val_fim_loss_se),
            task_exact_match: last_eval.and_then(|p| p.task_exact_match),
            task_exact_match_se: last_eval.and_then(|p| p.task_exact_match_se),
            val_completion_loss: last_eval.and_then(|p| p.val_completion_loss),
            val_completion_loss_se: last_eval.and_then(|p| p.val_completion_loss_se),
            wall_s,
            tokens_per_s: if train_s > 0.0 { tokens / train_s } else { 0.0 },
            diverged_at: None,
            router_collapsed: last_eval
                .and_then(|p| p.expert_load.as_ref())
                .is_some_and(|load| load.len() > 1 && load.iter().any(|&f| f > 0.9)),
            dropped_frac: mean(curve.iter().filter_map(|p| p.dropped_frac)),
        }
    }
}

/// Every step trains on the same number of tokens, so the mean over steps is the token-weighted one.
fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub codescale_version: String,
    /// The commit and dirty flag of the source tree the binary was built from.
    pub git_commit: String,
    pub git_dirty: bool,
    /// The source tree's HEAD when the trial ran, where it was not the build's commit (a pull
    /// after the build).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_head: Option<String>,
    pub rustc: String,
    pub backend: String,
    pub device: String,
    /// The CPU backend's matrix-kernel path (`x86_64 avx512f; caches 48K/2048K/107520K`): a
    /// replay on the same path gives the same bits, on another one the same curve within
    /// rounding. None on the GPU backends, and in records written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simd_path: Option<String>,
    pub threads: usize,
    pub host: String,
    pub started: String,
    pub finished: Option<String>,
    pub corpus_hash: String,
    pub tokenizer_hash: String,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub id: String,
    pub status: Status,
    pub config: TrialConfig,
    #[serde(default)]
    pub metrics: Metrics,
    #[serde(default)]
    pub provenance: Provenance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a `failed` trial: whether the cause can go away (an I/O error, a corrupt corpus
    /// since repaired, a lost lock) so that the next run retries it. Records from before this
    /// field count as retryable.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub retryable: bool,
    /// Set when this result was kept under `--reuse-stale` although its corpus or code differ
    /// from the plan's: what differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<String>,
    /// What happened to the trial besides training: a corrupt checkpoint discarded, a record
    /// rebuilt from its curve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// For a cooldown branch: the shared trunk it forked from, and at which step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<BranchOrigin>,
}

/// Where a cooldown branch left its trunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchOrigin {
    pub trunk: String,
    pub step: usize,
}

fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}

impl TrialRecord {
    pub fn pending(config: TrialConfig) -> TrialRecord {
        TrialRecord {
            id: config.trial_id(),
            status: Status::Pending,
            config,
            metrics: Metrics::default(),
            provenance: Provenance::default(),
            error: None,
            retryable: true,
            stale: None,
            notes: Vec::new(),
            branch: None,
        }
    }
    /// Whether a scheduler should (re)run this trial: it has not ended, or it failed for a
    /// reason that can go away, or it failed and the user asks for a retry.
    pub fn needs_run(&self, retry_failed: bool) -> bool {
        !self.status.is_final() || (self.status == Status::Failed && (self.retryable || retry_failed))
    }
    /// Marks the trial failed with `error`.
    pub fn fail(&mut self, error: String, retryable: bool) {
        self.status = Status::Failed;
        self.error = Some(error);
        self.retryable = retryable;
    }
    pub fn load(dir: &Path) -> anyhow::Result<TrialRecord> {
        crate::atomic::read_json(&dir.join(TRIAL_FILE))
    }
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        crate::atomic::write_json(&dir.join(TRIAL_FILE), self)
    }
}

pub const TRIAL_FILE: &str = "trial.json";
pub const CURVE_FILE: &str = "curve.parquet";
pub const CHECKPOINT_DIR: &str = "checkpoint";

/// A row of `curve.parquet` as written: a point tagged with its trial, so curves globbed
/// together (DuckDB, polars, `export`) keep which trial each row is. Curves are read back as
/// [`CurvePoint`], which ignores the column, so files written before it read alike.
#[derive(Debug, Serialize)]
pub struct CurveRow<'a> {
    pub trial_id: &'a str,
    #[serde(flatten)]
    pub point: &'a CurvePoint,
}

impl<'a> CurveRow<'a> {
    pub fn tag(trial_id: &'a str, curve: &'a [CurvePoint]) -> impl Iterator<Item = CurveRow<'a>> {
        curve.iter().map(move |point| CurveRow { trial_id, point })
    }
}

/// One point of a trial's curve. `val_loss` is present only on evaluation steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub step: usize,
    pub tokens: f64,
    pub lr: f64,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    /// Standard error of `val_loss`: the spread of the per-window losses over √windows.
    #[serde(default)]
    pub val_loss_se: Option<f64>,
    pub val_bpb: Option<f64>,
    /// Infilling loss at evaluation steps of FIM trials (see [`Metrics::val_fim_loss`]).
    #[serde(default)]
    pub val_fim_loss: Option<f64>,
    #[serde(default)]
    pub val_fim_loss_se: Option<f64>,
    /// The code task's score at a trial's final evaluation (see [`Metrics::task_exact_match`]).
    #[serde(default)]
    pub task_exact_match: Option<f64>,
    #[serde(default)]
    pub task_exact_match_se: Option<f64>,
    /// Completion loss of fine-tuning trials at evaluation steps (see
    /// [`Metrics::val_completion_loss`]).
    #[serde(default)]
    pub val_completion_loss: Option<f64>,
    #[serde(default)]
    pub val_completion_loss_se: Option<f64>,
    pub grad_norm: f64,
    pub wall_s: f64,
    /// MoE routing telemetry at evaluation steps: fraction of tokens per expert (first MoE
    /// layer) and the router entropy in nats.
    #[serde(default)]
    pub expert_load: Option<Vec<f64>>,
    #[serde(default)]
    pub router_entropy: Option<f64>,
    /// MoE with a `capacity_factor`: the fraction of token-slots this step's forward passes
    /// dropped over capacity (all MoE layers).
    #[serde(default)]
    pub dropped_frac: Option<f64>,
}

impl CurvePoint {
    /// Drops what an evaluation recorded, keeping the training step's numbers (a branch keeps
    /// only the evaluations of its trunk that it would have made itself).
    pub fn forget_evaluation(&mut self) {
        (self.val_loss, self.val_loss_se, self.val_bpb, self.val_fim_loss, self.val_fim_loss_se) =
            (None, None, None, None, None);
        (self.task_exact_match, self.task_exact_match_se) = (None, None);
        (self.val_completion_loss, self.val_completion_loss_se) = (None, None);
        (self.expert_load, self.router_entropy) = (None, None);
    }
}
