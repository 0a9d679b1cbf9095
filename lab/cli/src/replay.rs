//! `replay`: one trial or a sweep's, a verdict per trial. The replaying is `codescale::replay`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use codescale::replay::{replay_trial, replayable, Verdict};

pub fn replay(path: &Path, sample: Option<usize>, force: bool, quiet: bool) -> Result<ExitCode> {
    if codescale::trial::is_trial_dir(path) {
        let verdict = replay_trial(path, force, quiet)?;
        println!("{}: {verdict}", path.display());
        return Ok(exit(&[verdict]));
    }
    let trials = replayable(path, sample)?;
    let mut verdicts = Vec::new();
    println!("{:<18} verdict", "trial");
    for (id, dir) in trials {
        let verdict = replay_trial(&dir, force, quiet)?;
        println!("{id:<18} {verdict}");
        verdicts.push(verdict);
    }
    Ok(exit(&verdicts))
}

/// Success only when every curve was reproduced: bit for bit, or within the tolerance its
/// conditions allow (another CPU path, a GPU backend), which the verdict names.
fn exit(verdicts: &[Verdict]) -> ExitCode {
    if verdicts.iter().all(Verdict::reproduced) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
