//! `codescale sweep status`: what a sweep's folder says right now.

use std::collections::BTreeMap;

use anyhow::Result;
use codescale_core::Status;
use serde::Serialize;

use crate::runs::SweepDir;

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub sweep: String,
    pub total: usize,
    pub counts: BTreeMap<String, usize>,
    pub running: Vec<RunningTrial>,
    pub best: Option<BestTrial>,
    pub problems: Vec<(String, String)>,
    /// Repairs and reuse worth knowing about: discarded checkpoints, rebuilt records, stale
    /// results kept with `--reuse-stale`.
    pub notes: Vec<(String, String)>,
}

#[derive(Debug, Serialize)]
pub struct RunningTrial {
    pub id: String,
    pub language: String,
    pub model: String,
    /// Steps done at the last checkpoint, of the total.
    pub steps: usize,
    pub total_steps: usize,
}

#[derive(Debug, Serialize)]
pub struct BestTrial {
    pub id: String,
    pub language: String,
    pub model: String,
    pub tokens: f64,
    pub val_loss: f64,
}

pub fn status(dir: &SweepDir) -> Result<StatusReport> {
    let records = dir.records()?;
    let mut counts = BTreeMap::new();
    for s in [Status::Pending, Status::Running, Status::Done, Status::Failed, Status::Diverged, Status::Pruned] {
        counts.insert(s.as_str().to_string(), 0);
    }
    for r in &records {
        *counts.entry(r.status.as_str().to_string()).or_default() += 1;
    }
    let running = records
        .iter()
        .filter(|r| r.status == Status::Running)
        .map(|r| RunningTrial { id: r.id.clone(), language: r.config.language.clone(), model: r.config.model.clone(), steps: r.metrics.steps, total_steps: r.config.total_steps() })
        .collect();
    let best = records
        .iter()
        .filter(|r| r.status == Status::Done)
        .filter_map(|r| r.metrics.val_loss.map(|l| (r, l)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(r, l)| BestTrial { id: r.id.clone(), language: r.config.language.clone(), model: r.config.model.clone(), tokens: r.config.tokens, val_loss: l });
    let problems = records
        .iter()
        .filter_map(|r| {
            let retry = match r.status {
                Status::Failed if r.retryable => " (retried on the next run)",
                Status::Failed => " (retried only with --retry-failed)",
                _ => "",
            };
            r.error.clone().map(|e| (r.id.clone(), format!("{e}{retry}")))
        })
        .collect();
    let notes = records
        .iter()
        .flat_map(|r| r.notes.iter().cloned().chain(r.stale.iter().map(|why| format!("stale result kept with --reuse-stale: {why}"))).map(|n| (r.id.clone(), n)))
        .collect();
    Ok(StatusReport { sweep: dir.name(), total: records.len(), counts, running, best, problems, notes })
}

pub fn render(s: &StatusReport) -> String {
    let mut out = format!("sweep {}: {} trials\n", s.sweep, s.total);
    let counts: Vec<String> = s.counts.iter().filter(|(_, &n)| n > 0).map(|(k, n)| format!("{n} {k}")).collect();
    out += &format!("  {}\n", counts.join(", "));
    for r in &s.running {
        out += &format!("  running {} {} {}: step {}/{}\n", r.id, r.language, r.model, r.steps, r.total_steps);
    }
    if let Some(b) = &s.best {
        out += &format!("  best so far: {} ({} {}, {:.3e} tokens) val_loss {:.4}\n", b.id, b.language, b.model, b.tokens, b.val_loss);
    }
    for (id, e) in &s.problems {
        out += &format!("  {id}: {e}\n");
    }
    for (id, n) in &s.notes {
        out += &format!("  {id}: note: {n}\n");
    }
    out
}
