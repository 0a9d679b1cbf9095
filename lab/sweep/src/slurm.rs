//! The Slurm executor: one `sbatch --array` job whose tasks each run one planned trial
//! against the shared runs folder. Resubmitting sends only the unfinished indices.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::runs::{Plan, SweepDir};
use crate::spec::SlurmOptions;

/// Writes `runs/<sweep>/slurm/job.sh` for the unfinished trials and returns it with their
/// indices (empty when everything is finished).
pub fn write_job(dir: &SweepDir, plan: &Plan, options: Option<&SlurmOptions>, exe: &Path) -> Result<(PathBuf, Vec<usize>)> {
    let mut indices = Vec::new();
    for (i, config) in plan.trials.iter().enumerate() {
        if dir.record(config)?.needs_run(false) {
            indices.push(i);
        }
    }
    let slurm_dir = dir.path.join("slurm");
    let array = indices.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let mut script = String::from("#!/bin/bash\n");
    script += &format!("#SBATCH --job-name=codescale-{}\n", plan.sweep);
    script += &format!("#SBATCH --array={array}\n");
    script += &format!("#SBATCH --output={}/%A_%a.out\n", slurm_dir.display());
    if let Some(o) = options {
        if let Some(p) = &o.partition {
            script += &format!("#SBATCH --partition={p}\n");
        }
        if let Some(t) = &o.time {
            script += &format!("#SBATCH --time={t}\n");
        }
        if let Some(c) = o.cpus_per_task {
            script += &format!("#SBATCH --cpus-per-task={c}\n");
        }
        if let Some(m) = &o.mem {
            script += &format!("#SBATCH --mem={m}\n");
        }
        for line in &o.extra {
            script += &format!("#SBATCH {line}\n");
        }
    }
    script += &format!("exec {} trial run {} --index \"$SLURM_ARRAY_TASK_ID\"\n", shell_quote(&exe.display().to_string()), shell_quote(&dir.path.display().to_string()));
    let path = slurm_dir.join("job.sh");
    codescale_core::atomic::write_atomic(&path, script.as_bytes())?;
    Ok((path, indices))
}

pub fn submit(job: &Path) -> Result<String> {
    let out = Command::new("sbatch").arg(job).output().context("running sbatch (is this a Slurm login node?)")?;
    if !out.status.success() {
        bail!("sbatch failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
