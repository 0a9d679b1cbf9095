//! `trial.json`: a trial's resolved config, status, final metrics and provenance — everything
//! needed to put it in a results table or to replay it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::TrialConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Running,
    Done,
    Failed,
    Diverged,
    Pruned,
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
    /// A finished trial is never run again.
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
    pub val_bpb: Option<f64>,
    pub wall_s: f64,
    pub tokens_per_s: f64,
    /// Step at which the loss or gradient became NaN/Inf.
    pub diverged_at: Option<usize>,
    /// MoE: the router sent more than 90 % of tokens to one expert at the last evaluation.
    #[serde(default)]
    pub router_collapsed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub codescale_version: String,
    pub git_commit: String,
    pub git_dirty: bool,
    pub rustc: String,
    pub backend: String,
    pub device: String,
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
}

impl TrialRecord {
    pub fn pending(config: TrialConfig) -> TrialRecord {
        TrialRecord { id: config.trial_id(), status: Status::Pending, config, metrics: Metrics::default(), provenance: Provenance::default(), error: None }
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

/// One row of `curve.parquet`. `val_loss` is present only on evaluation steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub step: usize,
    pub tokens: f64,
    pub lr: f64,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    pub val_bpb: Option<f64>,
    pub grad_norm: f64,
    pub wall_s: f64,
    /// MoE routing telemetry at evaluation steps: fraction of tokens per expert (first MoE
    /// layer) and the router entropy in nats.
    #[serde(default)]
    pub expert_load: Option<Vec<f64>>,
    #[serde(default)]
    pub router_entropy: Option<f64>,
}
