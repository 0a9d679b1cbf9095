//! The job script and the arrays that run it.
//!
//! One script, `runs/<sweep>/slurm/job.sh`, serves every array of a submission: it names the
//! submission's task plan, and its first argument is the plan's index of array task 0, so an
//! array whose indices must stay below the cluster's MaxArraySize covers entries
//! `offset + task`. Slurm keeps a copy of the script with each job, so the next submission may
//! rewrite it. Every path in it is absolute, and it changes to the folder the sweep was
//! submitted from, where the plan's relative paths resolve.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::runs::SweepDir;
use crate::spec::SlurmOptions;

/// The script's name in `runs/<sweep>/slurm/`.
pub const SCRIPT: &str = "job.sh";

/// What the script runs, besides the `#SBATCH` options.
pub struct Command<'a> {
    /// The `codescale` binary.
    pub exe: &'a Path,
    /// The folder the sweep was planned from.
    pub submit_dir: &'a Path,
    /// The submission's task plan.
    pub plan: &'a Path,
    /// Tasks train `failed` trials again even when their cause looked permanent.
    pub retry_failed: bool,
}

/// Writes the job script of `dir`'s sweep (atomically) and returns its path.
pub fn write(dir: &SweepDir, sweep: &str, options: &SlurmOptions, command: &Command) -> Result<PathBuf> {
    let sweep_dir = std::path::absolute(&dir.path)?;
    let slurm_dir = sweep_dir.join("slurm");
    let mut script = String::from("#!/bin/bash\n");
    script += &format!("#SBATCH --job-name={}\n", job_name(sweep));
    script += &format!("#SBATCH --output={}/%A_%a.out\n", slurm_dir.display());
    let flags = [
        ("partition", &options.partition),
        ("time", &options.time),
        ("mem", &options.mem),
        ("gres", &options.gres),
        ("account", &options.account),
        ("qos", &options.qos),
        ("constraint", &options.constraint),
    ];
    for (flag, value) in flags {
        if let Some(v) = value {
            script += &format!("#SBATCH --{flag}={v}\n");
        }
    }
    if let Some(c) = options.cpus_per_task {
        script += &format!("#SBATCH --cpus-per-task={c}\n");
    }
    for line in &options.extra {
        script += &format!("#SBATCH {line}\n");
    }
    script += "# Array task k trains entry $1 + k of the task plan (see `sweep run --executor slurm`).\n";
    script += &format!("cd {}\n", quote(&std::path::absolute(command.submit_dir)?.display().to_string()));
    let retry = if command.retry_failed { " --retry-failed" } else { "" };
    script += &format!(
        "exec {} trial run {} --index \"$(( ${{1:-0}} + SLURM_ARRAY_TASK_ID ))\" --plan {}{retry}\n",
        quote(&std::path::absolute(command.exe)?.display().to_string()),
        quote(&sweep_dir.display().to_string()),
        quote(&std::path::absolute(command.plan)?.display().to_string())
    );
    let path = slurm_dir.join(SCRIPT);
    codescale_core::atomic::write_atomic(&path, script.as_bytes())?;
    Ok(path)
}

/// The job name of a sweep's arrays, by which the queue is searched for them.
pub fn job_name(sweep: &str) -> String {
    format!("codescale-{sweep}")
}

/// One array: plan indices `offset + task` for each of `tasks`.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub offset: usize,
    pub tasks: Vec<usize>,
}

/// Cuts sorted plan indices into arrays whose task indices stay below `max_array_size`.
pub fn chunks(indices: &[usize], max_array_size: usize) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    for &i in indices {
        let offset = i / max_array_size * max_array_size;
        match out.last_mut() {
            Some(c) if c.offset == offset => c.tasks.push(i - offset),
            _ => out.push(Chunk { offset, tasks: vec![i - offset] }),
        }
    }
    out
}

/// `--array`'s value: sorted task indices as ranges (`0-3,5,7-9`), then `%N` to run at most
/// N at once.
pub fn array_spec(tasks: &[usize], parallelism: Option<usize>) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for &t in tasks {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == t => *end = t,
            _ => ranges.push((t, t)),
        }
    }
    let mut spec = ranges
        .iter()
        .map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
        .collect::<Vec<_>>()
        .join(",");
    if let Some(n) = parallelism {
        spec += &format!("%{n}");
    }
    spec
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_stay_below_max_array_size() {
        let indices: Vec<usize> = (0..1002).collect();
        let c = chunks(&indices, 1001);
        assert_eq!(
            (c.len(), c[0].offset, c[0].tasks.len(), c[1].offset, c[1].tasks.clone()),
            (2, 0, 1001, 1001, vec![0])
        );
        assert_eq!(
            chunks(&[1, 2, 4, 7, 8], 3),
            vec![
                Chunk { offset: 0, tasks: vec![1, 2] },
                Chunk { offset: 3, tasks: vec![1] },
                Chunk { offset: 6, tasks: vec![1, 2] }
            ]
        );
        assert_eq!(array_spec(&[0, 1, 2, 3, 5, 7, 8, 9], Some(4)), "0-3,5,7-9%4");
        assert_eq!(array_spec(&[2], None), "2");
    }

    #[test]
    fn the_script_asks_for_what_the_sweep_says_with_absolute_paths() {
        let root = tempfile::tempdir().unwrap();
        let dir = SweepDir::new(root.path(), "s");
        let options = SlurmOptions {
            partition: Some("gpu".into()),
            gres: Some("gpu:1".into()),
            cpus_per_task: Some(8),
            account: Some("lab".into()),
            qos: Some("high".into()),
            constraint: Some("a100".into()),
            extra: vec!["--exclusive".into()],
            ..Default::default()
        };
        let path = write(
            &dir,
            "s",
            &options,
            &Command {
                exe: Path::new("/opt/codescale"),
                submit_dir: root.path(),
                plan: &root.path().join("s/plans/0123456789abcdef.json"),
                retry_failed: true,
            },
        )
        .unwrap();
        let script = std::fs::read_to_string(path).unwrap();
        for line in [
            "--partition=gpu",
            "--gres=gpu:1",
            "--cpus-per-task=8",
            "--account=lab",
            "--qos=high",
            "--constraint=a100",
            "#SBATCH --exclusive",
            "--retry-failed",
        ] {
            assert!(script.contains(line), "{line} missing from:\n{script}");
        }
        assert!(script.contains(&format!("cd '{}'", root.path().display())), "{script}");
        assert!(script.contains(&format!("'{}' --index", root.path().join("s").display())), "{script}");
        assert!(
            script.contains(&format!("--plan '{}'", root.path().join("s/plans/0123456789abcdef.json").display())),
            "{script}"
        );
    }
}
