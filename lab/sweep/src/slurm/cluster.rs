//! What the executor asks of Slurm's commands: submit an array (`sbatch`), list a sweep's
//! tasks still queued or running (`squeue`), how finished tasks ended (`sacct`, when the
//! cluster keeps accounting) and the cluster's MaxArraySize (`scontrol show config`).

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Slurm's default MaxArraySize.
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program} (is this a Slurm login node?)"))?;
    if !out.status.success() {
        bail!("{program} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Submits `script` as the array `array` (an `--array` value) whose task 0 trains plan index
/// `offset`, after the jobs of `after` (ids joined by `:`) have ended when given; returns the
/// job id.
pub fn sbatch(script: &Path, array: &str, offset: usize, after: Option<&str>) -> Result<String> {
    let array = format!("--array={array}");
    let dependency = after.map(|job| format!("--dependency=afterany:{job}"));
    let script = script.display().to_string();
    let offset = offset.to_string();
    let mut args = vec!["--parsable", array.as_str()];
    args.extend(dependency.as_deref());
    args.extend([script.as_str(), offset.as_str()]);
    let out = run("sbatch", &args)?;
    // `--parsable` prints `<job id>` or `<job id>;<cluster>`.
    let id = out.trim().split(';').next().unwrap_or_default().to_string();
    anyhow::ensure!(!id.is_empty() && id.chars().all(|c| c.is_ascii_digit()), "sbatch printed no job id: {out:?}");
    Ok(id)
}

/// Whether sbatch's error refuses what the job asks for (a partition, account, QOS, GRES,
/// feature, size or array the cluster does not have: the sweep's `[slurm]` table is wrong), as
/// opposed to a controller that could not be reached, which may go away.
pub fn refused_request(message: &str) -> bool {
    const REFUSALS: [&str; 5] = [
        "Batch job submission failed: Invalid",
        "Requested node configuration is not available",
        "Memory specification can not be satisfied",
        "Job violates accounting/QOS policy",
        "Requested time limit is invalid",
    ];
    REFUSALS.iter().any(|r| message.contains(r))
}

/// The cluster's MaxArraySize, from `scontrol show config`.
pub fn max_array_size() -> Result<usize> {
    let config = run("scontrol", &["show", "config"])?;
    parse_max_array_size(&config).context("scontrol show config does not say MaxArraySize")
}

fn parse_max_array_size(config: &str) -> Option<usize> {
    config.lines().find_map(|l| {
        let (key, value) = l.split_once('=')?;
        (key.trim() == "MaxArraySize").then(|| value.trim().parse().ok()).flatten()
    })
}

/// A task of one of our arrays, as the queue shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub job: String,
    pub task: usize,
    /// `PENDING`, `RUNNING`, `COMPLETING`, …
    pub state: String,
}

/// The tasks of the arrays `jobs` still in the queue (pending, running or ending). Searched
/// by the sweep's job name, since `squeue -j` fails on ids the controller has forgotten.
pub fn queued(job_name: &str, jobs: &[&str]) -> Result<Vec<Task>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let out = run("squeue", &["--noheader", "--array", "--name", job_name, "--format=%F|%K|%T"])?;
    Ok(parse_tasks(&out).into_iter().filter(|t| jobs.contains(&t.job.as_str())).collect())
}

/// `<array job>|<task>|<state>` lines; tasks an array has not split off yet may show as a
/// range (`4-7%2`), each of which is listed.
fn parse_tasks(out: &str) -> Vec<Task> {
    let mut tasks = Vec::new();
    for line in out.lines() {
        let mut fields = line.trim().split('|');
        let (Some(job), Some(index), Some(state)) = (fields.next(), fields.next(), fields.next()) else { continue };
        for task in expand(index) {
            tasks.push(Task { job: job.to_string(), task, state: state.to_string() });
        }
    }
    tasks
}

/// `3`, `4-7`, `[1,3-5%2]` as indices.
fn expand(spec: &str) -> Vec<usize> {
    let spec = spec.trim_matches(|c| c == '[' || c == ']');
    let spec = spec.split('%').next().unwrap_or_default();
    let mut out = Vec::new();
    for part in spec.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<usize>().ok()),
        }
    }
    out
}

/// How the tasks of `jobs` ended, from accounting: `None` when the cluster keeps none (then
/// the trial records are all there is to go by).
pub fn accounting(jobs: &[&str]) -> Option<Vec<Task>> {
    if jobs.is_empty() {
        return Some(Vec::new());
    }
    let ids = jobs.join(",");
    let out =
        run("sacct", &["--noheader", "--parsable2", "--allocations", "--jobs", &ids, "--format=JobID,State"]).ok()?;
    // `<job>_<task>|<state>`; a state may carry who did it (`CANCELLED by 0`).
    let tasks = out
        .lines()
        .filter_map(|l| {
            let (id, state) = l.split_once('|')?;
            let (job, task) = id.split_once('_')?;
            let state = state.split_whitespace().next()?.to_string();
            Some(expand(task).into_iter().map(move |t| Task { job: job.to_string(), task: t, state: state.clone() }))
        })
        .flatten()
        .collect();
    Some(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_slurm_prints() {
        assert_eq!(
            parse_max_array_size("JobAcctGatherType       = jobacct_gather/none\nMaxArraySize            = 1001\n"),
            Some(1001)
        );
        assert_eq!(parse_max_array_size("MaxJobCount = 10000\n"), None);
        let tasks = parse_tasks("12|3|RUNNING\n12|4-6%2|PENDING\n13|N/A|PENDING\n");
        assert_eq!(
            tasks.iter().map(|t| (t.job.as_str(), t.task, t.state.as_str())).collect::<Vec<_>>(),
            [("12", 3, "RUNNING"), ("12", 4, "PENDING"), ("12", 5, "PENDING"), ("12", 6, "PENDING")]
        );
        assert_eq!(expand("[0,2-3%1]"), vec![0, 2, 3]);
        assert!(refused_request("sbatch: error: invalid partition specified: gpu\nsbatch: error: Batch job submission failed: Invalid partition name specified"));
        assert!(!refused_request(
            "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)"
        ));
    }
}
