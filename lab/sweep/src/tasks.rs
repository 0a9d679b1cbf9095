//! The trials one Slurm submission sends (or one local run trains in child processes), as an
//! immutable, content-addressed file: `runs/<sweep>/plans/<hash>.json`, named by the hash of its
//! bytes.
//!
//! It holds everything a task needs to train its trial without planning anything: the trial's
//! resolved config (bound to its corpus), the trunk it branches from, the built corpus folder it
//! trains from, and the sweep's early-stopping rule. Array task k of an array at offset o trains
//! entry o + k. Replanning the sweep (an edited sweep file, run again while arrays are queued)
//! writes another file and never this one, so a queued task trains the trial it was submitted
//! for; a file that no longer matches its name (edited by hand, truncated) is refused, and so is
//! an entry whose config no longer hashes to its id.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use codescale_core::{BadInput, TrialConfig};
use codescale_train::Branch;
use serde::{Deserialize, Serialize};

use crate::asha::EarlyStop;
use crate::runs::{Plan, SweepDir};

/// The folder of a sweep's folder that holds its submissions' task plans.
pub const PLANS_DIR: &str = "plans";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskPlan {
    pub sweep: String,
    /// The sweep's early-stopping rule, which the tasks report their rungs to.
    pub early_stop: Option<EarlyStop>,
    pub tasks: Vec<Task>,
}

/// One trial as its task trains it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub config: TrialConfig,
    /// The trunk it forks from, if the sweep branches.
    pub branch: Option<Branch>,
    /// The built corpus folder it trains from (absolute), which its config's corpus key names.
    pub corpus: PathBuf,
}

impl TaskPlan {
    /// The trials of `plan` at `indices`, in that order, each with its trunk (`branches`, by plan
    /// index, under the caller's runs root) and the built corpus folder `corpus_of` names for it,
    /// made absolute so that a task may start in any folder; the plan's early-stopping rule.
    pub fn of(
        plan: &Plan,
        indices: &[usize],
        branches: &[Option<Branch>],
        corpus_of: impl Fn(&TrialConfig) -> Result<PathBuf>,
    ) -> Result<TaskPlan> {
        let tasks = indices
            .iter()
            .map(|&i| {
                let config = plan.trials[i].clone();
                let corpus = std::path::absolute(corpus_of(&config)?)?;
                Ok(Task { id: config.trial_id(), config, branch: branches[i].clone(), corpus })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TaskPlan { sweep: plan.sweep.clone(), early_stop: plan.early_stop.clone(), tasks })
    }

    /// Writes the plan under `dir`'s `plans/` (atomically; a plan with the same bytes is
    /// already there and kept) and returns its path.
    pub fn write(&self, dir: &SweepDir) -> Result<PathBuf> {
        let bytes = serde_json::to_vec_pretty(self)?;
        let path = dir.path.join(PLANS_DIR).join(format!("{}.json", content_hash(&bytes)));
        if !path.exists() {
            codescale_core::atomic::write_atomic(&path, &bytes)?;
        }
        Ok(std::path::absolute(&path)?)
    }

    /// The plan at `path`, refused (bad input naming the file) unless its bytes still hash to
    /// its name.
    pub fn read(path: &Path) -> Result<TaskPlan> {
        let bytes = std::fs::read(path).map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
        let named = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let hash = content_hash(&bytes);
        if hash != named {
            return Err(BadInput(format!(
                "{}: the task plan changed after it was submitted (its contents hash to {hash}, its name says {named}): refusing to train from it",
                path.display()
            ))
            .into());
        }
        serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))
    }

    /// Entry `index`, checked to be the trial it was submitted as (its config hashes to its id).
    pub fn task(&self, path: &Path, index: usize) -> Result<&Task> {
        let task = self.tasks.get(index).ok_or_else(|| {
            BadInput(format!("{}: the plan has {} tasks; there is no index {index}", path.display(), self.tasks.len()))
        })?;
        let id = task.config.trial_id();
        if id != task.id {
            return Err(BadInput(format!(
                "{}: task {index} was submitted as trial {} but its config is trial {id}: refusing to train it",
                path.display(),
                task.id
            ))
            .into());
        }
        Ok(task)
    }
}

fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use codescale_core::{DataSpec, ModelSpec, OptimizerSpec, ScheduleSpec};

    fn plan() -> TaskPlan {
        let config = codescale_core::TrialSpec {
            data: DataSpec { language: Some("go".into()), seq_len: Some(16), ..Default::default() },
            model: ModelSpec { name: Some("d32-l1".into()), ..Default::default() },
            optimizer: OptimizerSpec { batch_size: Some(4), ..Default::default() },
            schedule: ScheduleSpec { tokens: Some(4096.0), ..Default::default() },
            ..Default::default()
        }
        .resolve()
        .unwrap();
        let branch = Branch { trunk_dir: "/runs/_trunks/t".into(), eval_steps: vec![4, 8], fork_steps: vec![8] };
        TaskPlan {
            sweep: "s".into(),
            early_stop: None,
            tasks: vec![Task { id: config.trial_id(), config, branch: Some(branch), corpus: "/corpus/x".into() }],
        }
    }

    #[test]
    fn a_plan_reads_back_only_as_written() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SweepDir::new(tmp.path(), "s");
        let path = plan().write(&dir).unwrap();
        assert_eq!(path, plan().write(&dir).unwrap(), "the same plan, the same file");
        let read = TaskPlan::read(&path).unwrap();
        assert_eq!(read, plan());
        assert_eq!(read.task(&path, 0).unwrap().id, plan().tasks[0].id);
        let err = format!("{:#}", read.task(&path, 1).unwrap_err());
        assert!(err.contains("no index 1"), "{err}");

        // Edited after submission: the bytes no longer hash to the name.
        let text = std::fs::read_to_string(&path).unwrap().replace("d32-l1", "d64-l1");
        std::fs::write(&path, text).unwrap();
        let err = TaskPlan::read(&path).unwrap_err();
        assert!(codescale_core::is_bad_input(&err) && format!("{err:#}").contains("changed after it was submitted"));

        // A config that is not the trial its entry names, in a file named by its bytes.
        let mut forged = plan();
        forged.tasks[0].config.optimizer.lr *= 2.0;
        let path = forged.write(&dir).unwrap();
        let err = format!("{:#}", TaskPlan::read(&path).unwrap().task(&path, 0).unwrap_err());
        assert!(err.contains("was submitted as trial"), "{err}");
    }
}
