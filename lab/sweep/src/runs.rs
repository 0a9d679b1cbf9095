//! The runs folder: `runs/<sweep>/{sweep.toml, plan.json, lock, trials/<id>/, results.parquet}`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use codescale_core::atomic::{read_json, write_json};
use codescale_core::{ResultRow, TrialConfig, TrialRecord};
use serde::{Deserialize, Serialize};

pub const PLAN_FILE: &str = "plan.json";
pub const SWEEP_FILE: &str = "sweep.toml";
pub const RESULTS_FILE: &str = "results.parquet";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub sweep: String,
    pub trials: Vec<TrialConfig>,
}

impl Plan {
    pub fn ids(&self) -> Vec<String> {
        self.trials.iter().map(TrialConfig::trial_id).collect()
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
        anyhow::ensure!(path.join(PLAN_FILE).exists(), codescale_core::BadInput(format!("{} is not a sweep's runs folder (no {PLAN_FILE})", path.display())));
        Ok(SweepDir { path: path.to_path_buf() })
    }
    pub fn name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
    pub fn trial_dir(&self, id: &str) -> PathBuf {
        self.path.join("trials").join(id)
    }
    pub fn plan(&self) -> Result<Plan> {
        read_json(&self.path.join(PLAN_FILE))
    }
    pub fn write_plan(&self, plan: &Plan) -> Result<()> {
        write_json(&self.path.join(PLAN_FILE), plan)
    }
    /// The record of every planned trial (pending ones made up from the plan).
    pub fn records(&self) -> Result<Vec<TrialRecord>> {
        let plan = self.plan()?;
        plan.trials.into_iter().map(|c| self.record(&c)).collect()
    }
    pub fn record(&self, config: &TrialConfig) -> Result<TrialRecord> {
        let dir = self.trial_dir(&config.trial_id());
        if dir.join(codescale_core::record::TRIAL_FILE).exists() {
            TrialRecord::load(&dir)
        } else {
            Ok(TrialRecord::pending(config.clone()))
        }
    }
    /// Writes `results.parquet`: one row per planned trial, flat columns.
    pub fn write_results(&self) -> Result<Vec<ResultRow>> {
        let name = self.name();
        let rows: Vec<ResultRow> = self.records()?.iter().map(|r| ResultRow::from_record(&name, r)).collect();
        codescale_table::write_rows(&self.path.join(RESULTS_FILE), &rows).context("writing results.parquet")?;
        Ok(rows)
    }
}

/// A finished copy of a trial in another sweep under the same runs root, so a trial is never
/// trained twice.
pub fn find_done_elsewhere(runs_root: &Path, id: &str, except: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(runs_root).ok()?;
    entries.flatten().map(|e| e.path().join("trials").join(id)).find(|dir| {
        !dir.starts_with(except) && TrialRecord::load(dir).is_ok_and(|r| r.status == codescale_core::Status::Done)
    })
}

/// Copies a finished trial's files; the record goes last, so a crash mid-copy leaves a
/// trial that is simply not done yet.
pub fn copy_trial(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if entry.file_type()?.is_file() && name != codescale_core::record::TRIAL_FILE {
            codescale_core::atomic::write_atomic(&to.join(&name), &std::fs::read(entry.path())?)?;
        }
    }
    let record = std::fs::read(from.join(codescale_core::record::TRIAL_FILE))?;
    codescale_core::atomic::write_atomic(&to.join(codescale_core::record::TRIAL_FILE), &record)
}
