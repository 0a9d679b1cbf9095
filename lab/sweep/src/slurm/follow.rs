//! `--wait`: follows a sweep's arrays until none of their tasks is queued or running and no
//! live process holds one of its trials, with a bar of the trials done, running, pending and
//! failed, then writes `results.parquet`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{cluster, script, ArrayTrials};
use crate::lock::SweepLock;
use crate::options::Summary;
use crate::runs::SweepDir;
use crate::status::{shown, Shown, LOST};

/// How often the queue and the records are read.
const POLL: Duration = Duration::from_secs(2);
/// How long the queue may stay unreadable (a restarting controller) before following stops.
const QUEUE_PATIENCE: Duration = Duration::from_secs(300);

/// Follows the arrays of `dir`'s sweep to their end and returns the sweep's summary (with
/// `results.parquet` written), or `None` as soon as `interrupted()` says so: the arrays go on.
pub fn follow(dir: &SweepDir, quiet: bool, interrupted: &dyn Fn() -> bool) -> Result<Option<Summary>> {
    let trials_of = ArrayTrials::read(dir)?;
    let jobs = trials_of.jobs();
    let name = script::job_name(&dir.name());
    let plan = dir.plan()?;
    let bar = ProgressBar::with_draw_target(
        Some(plan.trials.len() as u64),
        if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() },
    );
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} trials ended · {msg} · {elapsed}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar.set_prefix(dir.name());
    let mut unreadable_since: Option<Instant> = None;
    loop {
        let queue = cluster::queued(&name, &jobs);
        let trials = shown(dir)?;
        bar.set_position(trials.iter().filter(|t| t.record.status.is_final()).count() as u64);
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &trials {
            *counts.entry(t.state).or_default() += 1;
        }
        let mut message = ["done", "pruned", "diverged", "running", "pending", "failed", LOST]
            .iter()
            .filter_map(|k| counts.get(k).map(|n| format!("{n} {k}")))
            .collect::<Vec<_>>()
            .join(", ");
        match queue {
            Ok(tasks) => {
                unreadable_since = None;
                // A trial a live process holds when none of our tasks is left (trained by an
                // array sent by hand, or a local run of the same sweep) is still part of the
                // sweep's end: wait for it rather than call it unfinished.
                if tasks.is_empty() && !counts.contains_key("running") {
                    break;
                }
                let mut states: BTreeMap<String, usize> = BTreeMap::new();
                for t in &tasks {
                    *states.entry(t.state.to_lowercase()).or_default() += 1;
                }
                message += &format!(
                    " · tasks: {}",
                    states.iter().map(|(s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", ")
                );
            }
            Err(e) => {
                let since = *unreadable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > QUEUE_PATIENCE {
                    bar.abandon();
                    return Err(e.context(format!("the queue has been unreadable for {} s", QUEUE_PATIENCE.as_secs())));
                }
                message += &format!(" · queue unreadable: {e:#}");
            }
        }
        bar.set_message(message);
        let wake = Instant::now() + POLL;
        while Instant::now() < wake {
            if interrupted() {
                bar.abandon();
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    bar.finish_and_clear();

    let mut notes = unfinished_notes(dir, &trials_of)?;
    // Written under the sweep lock, as a local run writes it; a scheduler holding the lock
    // writes the file itself when it ends, so we only read the rows then.
    let rows = match SweepLock::acquire(&dir.path) {
        Ok(_lock) => dir.write_results()?,
        Err(e) => {
            notes.push(format!("results.parquet left to the lock's holder: {e:#}"));
            dir.result_rows()?
        }
    };
    Ok(Some(Summary { dir: dir.path.clone(), rows, trained: 0, skipped: 0, notes }))
}

/// Why each trial the arrays left unfinished did not end: how its last task ended when
/// accounting says, else what its record and lease say.
fn unfinished_notes(dir: &SweepDir, trials_of: &ArrayTrials) -> Result<Vec<String>> {
    let unfinished: Vec<Shown> = shown(dir)?.into_iter().filter(|t| !t.record.status.is_final()).collect();
    if unfinished.is_empty() {
        return Ok(Vec::new());
    }
    // Each trial's last task (arrays are listed oldest first, tasks in order).
    let mut last_task: BTreeMap<String, (String, usize, String)> = BTreeMap::new();
    let accounting = cluster::accounting(&trials_of.jobs());
    for t in accounting.iter().flatten() {
        if let Some(id) = trials_of.of(&t.job, t.task) {
            last_task.insert(id, (t.job.clone(), t.task, t.state.clone()));
        }
    }
    Ok(unfinished
        .iter()
        .map(|t| {
            let how = match last_task.get(&t.record.id) {
                Some((job, task, state)) => format!("its task {job}_{task} ended {state}"),
                None if accounting.is_none() => {
                    format!("it is {} (the cluster keeps no accounting to say how its task ended)", t.state)
                }
                None => format!("it is {} and no task of these arrays ran it", t.state),
            };
            format!("trial {} did not finish: {how}; submit again to resume it from its checkpoint", t.record.id)
        })
        .collect())
}
