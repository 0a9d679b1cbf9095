//! The runs folder: `runs/<sweep>/{sweep.toml, plan.json, lock, trials/<id>/, results.parquet,
//! index.json}` (the index: [`crate::index`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use codescale_core::atomic::{read_json, write_json};
use codescale_core::record::{CURVE_FILE, TRIAL_FILE};
use codescale_core::{CurvePoint, Metrics, ResultRow, Status, TrialConfig, TrialRecord};
use codescale_train::Branch;

use crate::asha::EarlyStop;
use serde::{Deserialize, Serialize};

pub const PLAN_FILE: &str = "plan.json";
pub const SWEEP_FILE: &str = "sweep.toml";
pub const RESULTS_FILE: &str = "results.parquet";
/// The folder of a sweep's folder that holds its trials.
pub const TRIALS_DIR: &str = "trials";

/// Names a sweep may not have, as its folder is `<runs root>/<name>`: what the runs root
/// holds besides sweeps (trunks shared between sweeps), `trials` so that no path reads as both
/// a sweep and a sweep's trials, and `.`/`..`, which are not folders of the root at all. An
/// entry the runs root gains belongs here.
pub const RESERVED_NAMES: [&str; 4] = [crate::branches::TRUNKS_DIR, TRIALS_DIR, ".", ".."];

/// A sweep's plan (`plan.json`), written once by planning ([`crate::plan::prepare`]) and only
/// read by the executors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub sweep: String,
    pub trials: Vec<TrialConfig>,
    /// Ids of the held-out targets among `trials`: trained, never fitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// The WSD trunk each trial forks from, in plan order, its folder relative to the runs root
    /// (`_trunks/<id>`, so the runs folder may move); `None` for a trial trained alone. Empty
    /// in plans written before it was stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<Option<Branch>>,
    /// The sweep's early-stopping rule: each trial's rungs follow from it and the trial's
    /// config ([`crate::asha::rungs`]), and executors report to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stop: Option<EarlyStop>,
}

impl Plan {
    /// The trunk each trial forks from, under `runs_root`; `None` for a plan written before
    /// branches were stored in it.
    pub fn branches_under(&self, runs_root: &Path) -> Option<Vec<Option<Branch>>> {
        (self.branches.len() == self.trials.len()).then(|| {
            let under = |b: &Branch| Branch { trunk_dir: runs_root.join(&b.trunk_dir), ..b.clone() };
            self.branches.iter().map(|b| b.as_ref().map(under)).collect()
        })
    }
}

pub struct SweepDir {
    pub path: PathBuf,
}

impl SweepDir {
    pub fn new(runs_root: &Path, name: &str) -> SweepDir {
        SweepDir { path: runs_root.join(name) }
    }
    pub fn open(path: &Path) -> Result<SweepDir> {
        anyhow::ensure!(
            path.join(PLAN_FILE).exists(),
            codescale_core::BadInput(format!("{} is not a sweep's runs folder (no {PLAN_FILE})", path.display()))
        );
        Ok(SweepDir { path: path.to_path_buf() })
    }
    pub fn name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
    pub fn trial_dir(&self, id: &str) -> PathBuf {
        self.path.join(TRIALS_DIR).join(id)
    }
    pub fn plan(&self) -> Result<Plan> {
        read_json(&self.path.join(PLAN_FILE))
    }
    pub fn write_plan(&self, plan: &Plan) -> Result<()> {
        write_json(&self.path.join(PLAN_FILE), plan)
    }
    /// The record of every planned trial (pending ones made up from the plan, unreadable ones
    /// recovered as [`SweepDir::record`] says).
    pub fn records(&self) -> Result<Vec<TrialRecord>> {
        let plan = self.plan()?;
        plan.trials.into_iter().map(|c| self.record(&c)).collect()
    }
    /// A planned trial's record. A `trial.json` that cannot be read (truncated by a disk that
    /// filled up, say) is recovered in memory: rebuilt from a complete `curve.parquet`, or
    /// else the trial is pending again (it resumes from its checkpoint or retrains). The
    /// scheduler saves what was recovered; readers only see it.
    pub fn record(&self, config: &TrialConfig) -> Result<TrialRecord> {
        Ok(self.read_record(config)?.0)
    }
    /// [`SweepDir::record`], and whether it was recovered from an unreadable `trial.json`.
    pub fn read_record(&self, config: &TrialConfig) -> Result<(TrialRecord, bool)> {
        let dir = self.trial_dir(&config.trial_id());
        if !dir.join(TRIAL_FILE).exists() {
            return Ok((TrialRecord::pending(config.clone()), false));
        }
        match TrialRecord::load(&dir) {
            Ok(r) => Ok((r, false)),
            Err(e) => Ok((recover(&dir, config, &format!("{e:#}")), true)),
        }
    }
    /// One row per planned trial, flat columns, from the records as they are now; writes
    /// nothing, so readers (fit, report, export) can use it on a folder a scheduler is writing.
    pub fn result_rows(&self) -> Result<Vec<ResultRow>> {
        let name = self.name();
        let targets = self.plan()?.targets;
        Ok(self
            .records()?
            .iter()
            .map(|r| ResultRow { target: targets.contains(&r.id), ..ResultRow::from_record(&name, r) })
            .collect())
    }
    /// Writes [`SweepDir::result_rows`] to `results.parquet` (atomically). Only for the holder of
    /// the sweep's [`crate::lock::SweepLock`], so two writers never race on the file.
    pub fn write_results(&self) -> Result<Vec<ResultRow>> {
        let rows = self.result_rows()?;
        codescale_table::write_rows(&self.path.join(RESULTS_FILE), &rows).context("writing results.parquet")?;
        Ok(rows)
    }
}

/// The record of a trial whose `trial.json` is unreadable.
fn recover(dir: &Path, config: &TrialConfig, why: &str) -> TrialRecord {
    let mut record = TrialRecord::pending(config.clone());
    let curve: Option<Vec<CurvePoint>> = codescale_table::read_rows(&dir.join(CURVE_FILE)).ok();
    let complete = curve
        .as_ref()
        .is_some_and(|c| c.last().is_some_and(|p| p.step == config.total_steps() && p.val_loss.is_some()));
    match curve.filter(|_| complete) {
        Some(curve) => {
            let wall = curve.last().map_or(0.0, |p| p.wall_s);
            record.status = Status::Done;
            record.metrics = Metrics::from_curve(config, &curve, wall, wall);
            record.provenance.finished = Some(codescale_core::provenance::now_rfc3339());
            if let Some(key) = &config.corpus_key {
                record.provenance.corpus_hash = key.manifest.clone();
                record.provenance.tokenizer_hash = key.tokenizer.clone();
            }
            record.notes.push(format!("trial.json was unreadable ({why}); rebuilt from curve.parquet, which is complete (provenance other than the corpus was lost)"));
        }
        None => record
            .notes
            .push(format!("trial.json was unreadable ({why}) and the curve is incomplete; the trial runs again")),
    }
    record
}

/// What differs between a finished record `r` of `config`'s configuration and `config`.
pub(crate) fn stale_difference(r: &TrialRecord, config: &TrialConfig) -> String {
    let mut differs = Vec::new();
    if let Some(key) = &config.corpus_key {
        if r.provenance.corpus_hash != key.manifest || r.provenance.tokenizer_hash != key.tokenizer {
            differs.push(format!(
                "trained on corpus {} (now {})",
                short(&r.provenance.corpus_hash),
                short(&key.manifest)
            ));
        }
    }
    if r.id != r.config.trial_id() || r.config.corpus_key.is_none() {
        differs.push("trained by an earlier numerics version".to_string());
    }
    if differs.is_empty() {
        differs.push(format!("recorded as trial {}", r.id));
    }
    differs.join("; ")
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// Copies a finished trial's files; the record goes last, so a crash mid-copy leaves a
/// trial that is simply not done yet. `edit` adjusts the record on the way (a stale copy is
/// re-keyed to the plan's config and marked).
pub fn copy_trial(from: &Path, to: &Path, edit: impl FnOnce(&mut TrialRecord)) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if entry.file_type()?.is_file() && name != TRIAL_FILE && !name.to_string_lossy().ends_with(".tmp") {
            codescale_core::atomic::write_atomic(&to.join(&name), &std::fs::read(entry.path())?)?;
        }
    }
    let mut record = TrialRecord::load(from)?;
    edit(&mut record);
    record.save(to)
}
