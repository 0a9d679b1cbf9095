//! Fine-tuning bases: what a trial's `init_from` names, and where executors find it.
//!
//! In a sweep, `init_from` names a `[pretrain.<name>]` table (a trial of the same sweep, trained
//! first) or the folder of a finished trial. Planning replaces either by the base's trial id, so
//! the base's id is part of the fine-tuned trial's, and refuses a base whose weights the trial's
//! model cannot take. The local executor starts a fine-tuning trial only once its base has
//! ended ([`crate::scheduler`]); the trainer reads the base's `weights.bin` from the folder
//! [`locate`] finds.

use std::path::{Path, PathBuf};

use anyhow::Result;
use codescale_core::record::TRIAL_FILE;
use codescale_core::{BadInput, Status, TrialConfig, TrialRecord};
use codescale_train::checkpoint;

use crate::runs::TRIALS_DIR;
use crate::spec::Sweep;

/// The sweep's `[pretrain.*]` trials, resolved, in file order with their names.
pub fn plan_pretrain(sweep: &Sweep) -> Result<Vec<(String, TrialConfig)>> {
    sweep
        .pretrain
        .iter()
        .map(|(name, (spec, line))| {
            let config = spec.resolve().map_err(|e| {
                BadInput(format!("{}:{line}: `pretrain.{name}.{}`: {}", sweep.path.display(), e.key, e.message))
            })?;
            Ok((name.clone(), config))
        })
        .collect()
}

/// `trials` with every `init_from` replaced by its base's trial id: a `[pretrain.*]` name by
/// the id of that trial in `bases` (bound to its corpus), a folder by the id of the finished
/// trial in it. Bad input at the line of `init_from` when it names neither, or a base whose
/// weights the trial's model cannot take.
pub fn resolve(sweep: &Sweep, bases: &[(String, TrialConfig)], trials: Vec<TrialConfig>) -> Result<Vec<TrialConfig>> {
    let line = sweep.line_of_key("init_from").unwrap_or(1);
    let refuse = |message: String| -> anyhow::Error {
        BadInput(format!("{}:{line}: `init_from`: {message}", sweep.path.display())).into()
    };
    trials
        .into_iter()
        .map(|mut trial| {
            let Some(named) = trial.model.init_from.clone() else { return Ok(trial) };
            let base = match bases.iter().find(|(name, _)| *name == named) {
                Some((_, base)) => base.clone(),
                None => {
                    finished_trial(Path::new(&named))
                        .map_err(|why| {
                            let tables = bases.iter().map(|(n, _)| format!("`{n}`")).collect::<Vec<_>>().join(", ");
                            let tables = if tables.is_empty() { "none".into() } else { tables };
                            refuse(format!("`{named}` is no `[pretrain.*]` table of this sweep ({tables}), and {why}"))
                        })?
                        .config
                }
            };
            if let Some(why) = trial.weights_mismatch(&base) {
                return Err(refuse(format!(
                    "`{named}` cannot start a {} {} trial: {why}",
                    trial.data.language, trial.model.name
                )));
            }
            trial.model.init_from = Some(base.trial_id());
            Ok(trial)
        })
        .collect()
}

/// The record of the finished trial in folder `dir`, with its final weights, or why there is
/// none.
pub fn finished_trial(dir: &Path) -> Result<TrialRecord, String> {
    if !dir.join(TRIAL_FILE).is_file() {
        return Err(format!("{} is not a trial's folder (no {TRIAL_FILE})", dir.display()));
    }
    let record = TrialRecord::load(dir).map_err(|e| format!("{}: {e:#}", dir.display()))?;
    if record.status != Status::Done {
        return Err(format!("trial {} in {} is {}, not done", record.id, dir.display(), record.status.as_str()));
    }
    if !dir.join(checkpoint::WEIGHTS_FILE).is_file() {
        return Err(checkpoint::no_weights(dir));
    }
    Ok(record)
}

/// The folder of trial `id` under the runs folder `runs_root`: in `sweep_dir` (the sweep being
/// run) first, then in any sweep of the root, then where `codescale train` puts trials
/// (`<root>/trials/<id>`).
pub fn locate(runs_root: &Path, sweep_dir: Option<&Path>, id: &str) -> Option<PathBuf> {
    let own = sweep_dir.map(|d| d.join(TRIALS_DIR).join(id));
    let sweeps =
        std::fs::read_dir(runs_root).into_iter().flatten().flatten().map(|e| e.path().join(TRIALS_DIR).join(id));
    own.into_iter()
        .chain(sweeps)
        .chain([runs_root.join(TRIALS_DIR).join(id)])
        .find(|dir| dir.join(TRIAL_FILE).is_file())
}

/// The folder of trial `id` as seen from another trial's folder `trial_dir`
/// (`<root>/<sweep>/trials/<trial>`, or `<root>/trials/<trial>` for `codescale train`): its
/// sweep first, then the rest of its runs folder ([`locate`]).
pub fn locate_beside(trial_dir: &Path, id: &str) -> Option<PathBuf> {
    let sweep_dir = trial_dir.parent().and_then(Path::parent);
    let runs_root = sweep_dir.and_then(Path::parent).unwrap_or(Path::new("."));
    locate(runs_root, sweep_dir, id).or_else(|| sweep_dir.and_then(|root| locate(root, None, id)))
}
