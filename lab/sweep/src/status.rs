//! `codescale sweep status`: what a sweep's folder says right now.

use std::collections::BTreeMap;

use anyhow::Result;
use codescale_core::{Status, TrialRecord};
use serde::Serialize;

use crate::lease::{holder, Holder, Owner, LEASE_FILE};
use crate::runs::SweepDir;

/// The state of a trial whose record says `running` but whose lease no live process holds
/// (a killed scheduler, a cancelled task, a lost node): the next run resumes it.
pub const LOST: &str = "lost";

/// A planned trial's record and the state it is shown in.
pub struct Shown {
    pub record: TrialRecord,
    /// The record's status, or [`LOST`].
    pub state: &'static str,
    /// Who holds its lease, alive or not.
    pub holder: Option<Owner>,
}

/// Every planned trial, in plan order, as shown: its record's status, except that an
/// unfinished trial a live process holds is `running` (its record may not say so yet), and one
/// whose record says `running` with nobody alive holding it is [`LOST`].
pub fn shown(dir: &SweepDir) -> Result<Vec<Shown>> {
    let records = dir.records()?;
    Ok(records
        .into_iter()
        .map(|record| {
            let lease = holder(&dir.trial_dir(&record.id).join(LEASE_FILE));
            let state = match (&lease, record.status) {
                (_, s) if s.is_final() => s.as_str(),
                (Some(Holder::Live(_)), _) => Status::Running.as_str(),
                (_, Status::Running) => LOST,
                (_, s) => s.as_str(),
            };
            let holder = match lease {
                Some(Holder::Live(o) | Holder::Gone(o)) => o,
                None => None,
            };
            Shown { record, state, holder }
        })
        .collect())
}

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub sweep: String,
    pub total: usize,
    pub counts: BTreeMap<String, usize>,
    pub running: Vec<RunningTrial>,
    /// Trials whose holder is gone, resumed from their checkpoint by the next run.
    pub lost: Vec<RunningTrial>,
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
    /// Who holds (or held) its lease: `pid 12 on node3 (Slurm job 40_2), since …`.
    pub holder: Option<String>,
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
    let shown = shown(dir)?;
    let mut counts = BTreeMap::new();
    for s in [
        Status::Pending.as_str(),
        Status::Running.as_str(),
        LOST,
        Status::Done.as_str(),
        Status::Failed.as_str(),
        Status::Diverged.as_str(),
        Status::Pruned.as_str(),
    ] {
        counts.insert(s.to_string(), 0);
    }
    for t in &shown {
        *counts.entry(t.state.to_string()).or_default() += 1;
    }
    let in_state = |state: &str| -> Vec<RunningTrial> {
        shown
            .iter()
            .filter(|t| t.state == state)
            .map(|t| {
                let r = &t.record;
                RunningTrial {
                    id: r.id.clone(),
                    language: r.config.data.language.clone(),
                    model: r.config.model.name.clone(),
                    steps: r.metrics.steps,
                    total_steps: r.config.total_steps(),
                    holder: t.holder.as_ref().map(Owner::describe),
                }
            })
            .collect()
    };
    let (running, lost) = (in_state(Status::Running.as_str()), in_state(LOST));
    let records: Vec<TrialRecord> = shown.into_iter().map(|t| t.record).collect();
    let best = records
        .iter()
        .filter(|r| r.status == Status::Done)
        .filter_map(|r| r.metrics.val_loss.map(|l| (r, l)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(r, l)| BestTrial {
            id: r.id.clone(),
            language: r.config.data.language.clone(),
            model: r.config.model.name.clone(),
            tokens: r.config.schedule.tokens,
            val_loss: l,
        });
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
        .flat_map(|r| {
            r.notes
                .iter()
                .cloned()
                .chain(r.stale.iter().map(|why| format!("stale result kept with --reuse-stale: {why}")))
                .map(|n| (r.id.clone(), n))
        })
        .collect();
    Ok(StatusReport { sweep: dir.name(), total: records.len(), counts, running, lost, best, problems, notes })
}

pub fn render(s: &StatusReport) -> String {
    let mut out = format!("sweep {}: {} trials\n", s.sweep, s.total);
    let counts: Vec<String> = s.counts.iter().filter(|(_, &n)| n > 0).map(|(k, n)| format!("{n} {k}")).collect();
    out += &format!("  {}\n", counts.join(", "));
    for r in &s.running {
        let by = r.holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default();
        out += &format!("  running {} {} {}: step {}/{}{by}\n", r.id, r.language, r.model, r.steps, r.total_steps);
    }
    for r in &s.lost {
        let by = r.holder.as_ref().map(|h| format!(" by {h}")).unwrap_or_default();
        out += &format!(
            "  lost {} {} {}: held{by}, which is gone; the next run resumes it from step {}/{}\n",
            r.id, r.language, r.model, r.steps, r.total_steps
        );
    }
    if let Some(b) = &s.best {
        out += &format!(
            "  best so far: {} ({} {}, {:.3e} tokens) val_loss {:.4}\n",
            b.id, b.language, b.model, b.tokens, b.val_loss
        );
    }
    for (id, e) in &s.problems {
        out += &format!("  {id}: {e}\n");
    }
    for (id, n) in &s.notes {
        out += &format!("  {id}: note: {n}\n");
    }
    out
}
