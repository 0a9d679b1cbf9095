//! One row of `results.parquet` (docs/architecture.md, "Data contracts"; docs/guide/files.md).

use serde::{Deserialize, Serialize};

use crate::config::{Arch, Backend, Schedule};
use crate::record::{Status, TrialRecord};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub sweep: String,
    pub trial_id: String,
    pub status: Status,
    pub language: String,
    pub arch: Arch,
    /// The shape's name (`d64-l2`), as the sweep file or the shape ladder named it.
    #[serde(default)]
    pub model: String,
    pub tokenizer: String,
    pub d_model: i64,
    pub n_layers: i64,
    pub n_heads: i64,
    pub d_ff: i64,
    pub n_experts: i64,
    pub top_k: i64,
    /// MoE gating (`softmax`, `softmax_topk`); empty for dense models.
    #[serde(default)]
    pub gate: Option<String>,
    /// MoE expert capacity; empty for dense models and dropless routing.
    #[serde(default)]
    pub capacity_factor: Option<f64>,
    /// Fraction of token-slots dropped over capacity in training; empty when none can be.
    #[serde(default)]
    pub dropped_frac: Option<f64>,
    pub n_params: f64,
    pub n_params_total: f64,
    pub n_params_active: f64,
    /// Active non-embedding parameters plus the output head (Porian et al. 2024 count the head,
    /// whose compute is large in small models; Kaplan et al. leave it out).
    #[serde(default)]
    pub n_params_with_head: f64,
    /// Tokens trained on (the budget for finished trials, fewer for pruned or diverged ones).
    pub tokens: f64,
    pub flops: f64,
    pub seq_len: i64,
    pub batch_size: i64,
    pub lr: f64,
    pub warmup_steps: i64,
    /// The warmup as configured: a fraction of the steps below 1, else steps (what a sweep
    /// varies; `warmup_steps` is what it came to).
    #[serde(default)]
    pub warmup: f64,
    pub schedule: Schedule,
    pub weight_decay: f64,
    pub seed: i64,
    pub train_loss: Option<f64>,
    pub val_loss: Option<f64>,
    /// Standard error of `val_loss` over the evaluation windows.
    #[serde(default)]
    pub val_loss_se: Option<f64>,
    pub val_bpb: Option<f64>,
    /// Infilling loss of FIM trials: the middle span given prefix and suffix (PSM).
    #[serde(default)]
    pub val_fim_loss: Option<f64>,
    #[serde(default)]
    pub val_fim_loss_se: Option<f64>,
    /// The code task's exact-match score (identifier completion) and its standard error.
    #[serde(default)]
    pub task_exact_match: Option<f64>,
    #[serde(default)]
    pub task_exact_match_se: Option<f64>,
    /// Fine-tuning trials: loss per completion token on held-out instruction pairs, and its
    /// standard error.
    #[serde(default)]
    pub val_completion_loss: Option<f64>,
    #[serde(default)]
    pub val_completion_loss_se: Option<f64>,
    /// The finished trial whose weights this one started from (empty: trained from scratch).
    #[serde(default)]
    pub init_from: String,
    /// Fine-tuning data (`functions`), empty for pretraining.
    #[serde(default)]
    pub sft: String,
    /// Fill-in-the-middle training: fraction of fragments transformed, and SPM's share.
    #[serde(default)]
    pub fim_rate: f64,
    #[serde(default)]
    pub fim_spm_rate: f64,
    pub steps: i64,
    pub wall_s: f64,
    pub tokens_per_s: f64,
    pub backend: Backend,
    /// Kept with `--reuse-stale` although its corpus or code version differ from the plan's.
    #[serde(default)]
    pub stale: bool,
    /// The configuration without its seed: replicates (trials that differ only in `seed`)
    /// share it.
    #[serde(default)]
    pub config_id: String,
    /// The cooldown trunk a branch forked from (empty for a trial trained on its own).
    #[serde(default)]
    pub trunk: String,
    /// A held-out target of its sweep: trained, predicted by the fit, never fitted.
    #[serde(default)]
    pub target: bool,
}

impl ResultRow {
    pub fn from_record(sweep: &str, r: &TrialRecord) -> ResultRow {
        let c = &r.config;
        let m = &r.metrics;
        let p = c.params();
        let tokens = if m.tokens > 0.0 { m.tokens } else { c.schedule.tokens };
        ResultRow {
            sweep: sweep.to_string(),
            trial_id: r.id.clone(),
            status: r.status,
            language: c.data.language.clone(),
            arch: c.model.arch,
            model: c.model.name.clone(),
            tokenizer: c.data.tokenizer.clone(),
            d_model: c.model.d_model as i64,
            n_layers: c.model.n_layers as i64,
            n_heads: c.model.n_heads as i64,
            d_ff: c.model.d_ff as i64,
            n_experts: c.model.n_experts as i64,
            top_k: c.model.top_k as i64,
            gate: c.model.gate.map(|g| g.as_str().to_string()),
            capacity_factor: c.model.capacity_factor,
            dropped_frac: m.dropped_frac,
            n_params: p.n_params,
            n_params_total: p.n_params_total,
            n_params_active: p.n_params_active,
            n_params_with_head: p.n_params_active + p.head,
            tokens,
            flops: p.flops_per_token() * tokens,
            seq_len: c.data.seq_len as i64,
            batch_size: c.optimizer.batch_size as i64,
            lr: c.optimizer.lr,
            warmup_steps: c.warmup_steps() as i64,
            warmup: c.schedule.warmup,
            schedule: c.schedule.kind,
            weight_decay: c.optimizer.weight_decay,
            seed: c.runtime.seed as i64,
            train_loss: m.train_loss,
            val_loss: m.val_loss,
            val_loss_se: m.val_loss_se,
            val_bpb: m.val_bpb,
            val_fim_loss: m.val_fim_loss,
            val_fim_loss_se: m.val_fim_loss_se,
            task_exact_match: m.task_exact_match,
            task_exact_match_se: m.task_exact_match_se,
            val_completion_loss: m.val_completion_loss,
            val_completion_loss_se: m.val_completion_loss_se,
            init_from: c.model.init_from.clone().unwrap_or_default(),
            sft: c.data.sft.map(|s| s.as_str().to_string()).unwrap_or_default(),
            fim_rate: c.data.fim_rate,
            fim_spm_rate: c.data.fim_spm_rate,
            steps: m.steps as i64,
            wall_s: m.wall_s,
            tokens_per_s: m.tokens_per_s,
            backend: c.runtime.backend,
            stale: r.stale.is_some(),
            config_id: c.replicate_id(),
            trunk: r.branch.as_ref().map(|b| b.trunk.clone()).unwrap_or_default(),
            target: false,
        }
    }
}
