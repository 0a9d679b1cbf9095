//! The local executor: trials in parallel, each with its share of the cores and (from the CLI)
//! in a process of its own ([`crate::child`]), largest first, that survives being killed at any
//! moment.
//!
//! Every state change is an atomic write of `trial.json`, so after a crash the folder tells
//! exactly what happened: `done` (and every other final status) is never run again, `running`
//! resumes from its checkpoint, `pending` starts. Each trial runs under its lease
//! ([`crate::trial`]), so a Slurm array task training the same sweep never trains it too.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::Result;
use codescale_core::TrialConfig;
use codescale_train::Branch;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::asha::Asha;
use crate::child::{train_in_child, Reported};
use crate::lock::SweepLock;
use crate::options::{RunConfig, Summary};
use crate::plan::{prepare, Planned};
use crate::spec::Sweep;
use crate::tasks::TaskPlan;
use crate::triage::{triage, Triage};
use crate::trial::{Outcome, TrialRun};

pub fn run_sweep(sweep: &Sweep, cfg: &RunConfig) -> Result<Summary> {
    let (dir, plan, Planned { corpora, notes: planning_notes, .. }) = prepare(sweep, cfg)?;
    let lock = SweepLock::acquire(&dir.path)?;
    let Triage { mut queue, skipped, notes: triage_notes } = triage(&dir, &plan, cfg)?;
    longest_first(&mut queue, &plan.trials);
    let notes = Mutex::new(planning_notes.into_iter().chain(triage_notes).collect::<Vec<_>>());

    let jobs = cfg.jobs.or(sweep.jobs).unwrap_or(1).max(1).min(queue.len().max(1));
    let cores = cfg.cores.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let threads = (cores / jobs).max(1);
    let asha = plan.early_stop.clone().map(|rule| Asha::in_sweep_dir(rule, &dir.path));
    let branches = plan.branches_under(&cfg.runs_root).expect("prepare stores the branches");
    // The plan index of each trial's fine-tuning base, where the base is a trial of this plan.
    let bases: Vec<Option<usize>> = plan
        .trials
        .iter()
        .map(|c| c.model.init_from.as_ref().and_then(|id| plan.trials.iter().position(|b| b.trial_id() == *id)))
        .collect();
    // Child processes train from a task plan of the queue, as Slurm tasks do: they plan nothing.
    let children = match &cfg.trial_exe {
        Some(exe) if !queue.is_empty() => {
            let task_plan = TaskPlan::of(&plan, &queue, &branches, |c| Ok(corpora.get(c)?.dir.clone()))?;
            let entries: HashMap<usize, usize> = queue.iter().enumerate().map(|(entry, &i)| (i, entry)).collect();
            Some((exe, task_plan.write(&dir)?, entries))
        }
        _ => None,
    };

    let multi = MultiProgress::with_draw_target(if cfg.quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    let overall = multi.add(ProgressBar::new(queue.len() as u64));
    overall.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} trials · {msg} · ETA {eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    overall.set_prefix(sweep.name.clone());
    let queue = Mutex::new(Dispatch { queue: VecDeque::from(queue), busy: Vec::new(), running: Vec::new() });
    let outcomes: Mutex<BTreeMap<&'static str, usize>> = Mutex::new(BTreeMap::new());
    let (trained, ended) = (AtomicUsize::new(0), AtomicUsize::new(0));

    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                if lock.lost() {
                    break;
                }
                let next = queue.lock().unwrap().next(&branches, &bases);
                let i = match next {
                    Next::Start(i) => i,
                    // Every trial left waits for a base that a running trial trains.
                    Next::Wait => {
                        std::thread::sleep(std::time::Duration::from_millis(200));
                        continue;
                    }
                    Next::Empty => break,
                };
                let mut config = plan.trials[i].clone();
                config.runtime.threads = Some(threads);
                config.runtime.checkpoint_interval = config.checkpoint_every();
                let id = config.trial_id();
                let bar = multi.insert_before(&overall, ProgressBar::new(config.total_steps() as u64));
                bar.set_style(
                    ProgressStyle::with_template("  {prefix:16} {pos}/{len} steps [{bar:20}] {msg}")
                        .expect("template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(format!("{} {}", config.data.language, config.model.name));
                let outcome = match &children {
                    Some((exe, task_plan, entries)) => {
                        train_in_child(exe, &dir.path, task_plan, entries[&i], threads, cfg.retry_failed, &bar)
                    }
                    None => TrialRun {
                        dir: &dir,
                        asha: asha.as_ref(),
                        branch: branches[i].clone(),
                        retry_failed: cfg.retry_failed,
                        progress: Some(bar.clone()),
                        quiet: true,
                    }
                    .run(&config, || corpora.get(&config))
                    .map(|o| match o {
                        Outcome::Trained(record) => Reported::Trained(record.status),
                        Outcome::Ended(status) => Reported::Ended(status),
                        Outcome::Busy(owner) => {
                            Reported::Busy(owner.map_or("another process".into(), |o| o.describe()))
                        }
                    }),
                };
                let label = match outcome {
                    Ok(Reported::Trained(status)) => {
                        trained.fetch_add(1, Ordering::Relaxed);
                        status.as_str()
                    }
                    Ok(Reported::Ended(status)) => {
                        ended.fetch_add(1, Ordering::Relaxed);
                        status.as_str()
                    }
                    Ok(Reported::Busy(owner)) => {
                        notes.lock().unwrap().push(format!("trial {id} is being trained by {owner}; left to it"));
                        "busy elsewhere"
                    }
                    Err(e) => {
                        notes.lock().unwrap().push(format!("trial {id} could not be run: {e:#}"));
                        "not run"
                    }
                };
                queue.lock().unwrap().done(i, &branches[i]);
                bar.finish_and_clear();
                multi.remove(&bar);
                *outcomes.lock().unwrap().entry(label).or_default() += 1;
                overall.set_message(
                    outcomes.lock().unwrap().iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", "),
                );
                overall.inc(1);
            });
        }
    });
    overall.finish_and_clear();
    let mut notes = notes.into_inner().unwrap();
    if lock.lost() {
        notes.push("the sweep lock was taken over by another scheduler; this one stopped starting trials".into());
    }

    let rows = dir.write_results()?;
    Ok(Summary {
        dir: dir.path.clone(),
        rows,
        trained: trained.into_inner(),
        skipped: skipped + ended.into_inner(),
        notes,
    })
}

/// Orders `queue` (plan indices) by each trial's training compute, largest first, plan order
/// among equals. The big trials (held-out targets, each trunk's longest budget, which trains
/// the trunk and leaves its siblings only their cooldowns) then start while every job still has
/// work, and small ones fill the end, instead of one long trial on one core while the others
/// idle.
fn longest_first(queue: &mut [usize], trials: &[TrialConfig]) {
    let compute = |c: &TrialConfig| c.params().flops_per_token() * (c.tokens_per_step() * c.total_steps()) as f64;
    queue.sort_by(|&a, &b| compute(&trials[b]).total_cmp(&compute(&trials[a])));
}

/// The local executor's queue, in the order trials should start, the WSD trunks its running
/// trials branch from, and the trials running.
struct Dispatch {
    queue: VecDeque<usize>,
    busy: Vec<PathBuf>,
    running: Vec<usize>,
}

/// What a job does next.
#[derive(Debug, PartialEq)]
enum Next {
    Start(usize),
    /// Trials are left, but each waits for its fine-tuning base, which a running trial trains.
    Wait,
    Empty,
}

impl Dispatch {
    /// The next trial to start: of those whose fine-tuning base (`bases`) has ended, the first
    /// whose trunk no running trial branches from, so that a job never waits on the trunk's lock
    /// with its cores idle while another trunk could train; the first of them when every trunk
    /// left is busy.
    fn next(&mut self, branches: &[Option<Branch>], bases: &[Option<usize>]) -> Next {
        if self.queue.is_empty() {
            return Next::Empty;
        }
        let ready = |i: usize| bases[i].is_none_or(|b| !self.queue.contains(&b) && !self.running.contains(&b));
        let free = |i: usize| branches[i].as_ref().is_none_or(|b| !self.busy.contains(&b.trunk_dir));
        let pick =
            self.queue.iter().position(|&i| ready(i) && free(i)).or_else(|| self.queue.iter().position(|&i| ready(i)));
        let Some(at) = pick else { return Next::Wait };
        let i = self.queue.remove(at).expect("a position in the queue");
        if let Some(b) = &branches[i] {
            self.busy.push(b.trunk_dir.clone());
        }
        self.running.push(i);
        Next::Start(i)
    }

    fn done(&mut self, i: usize, branch: &Option<Branch>) {
        self.running.retain(|&r| r != i);
        if let Some(at) = branch.as_ref().and_then(|b| self.busy.iter().position(|t| *t == b.trunk_dir)) {
            self.busy.swap_remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use codescale_core::{DataSpec, ModelSpec, OptimizerSpec, ScheduleSpec};
    use std::path::Path;

    fn branch(trunk: &str) -> Option<Branch> {
        Some(Branch { trunk_dir: PathBuf::from(trunk), eval_steps: Vec::new(), fork_steps: Vec::new() })
    }

    #[test]
    fn the_largest_trials_start_first_and_equals_keep_plan_order() {
        let trial = |model: &str, tokens: f64| {
            codescale_core::TrialSpec {
                data: DataSpec { language: Some("go".into()), seq_len: Some(16), ..Default::default() },
                model: ModelSpec { name: Some(model.into()), ..Default::default() },
                optimizer: OptimizerSpec { batch_size: Some(4), ..Default::default() },
                schedule: ScheduleSpec { tokens: Some(tokens), ..Default::default() },
                ..Default::default()
            }
            .resolve()
            .unwrap()
        };
        let trials = [
            trial("d32-l2", 1e4),
            trial("d128-l2", 1e4),
            trial("d32-l2", 2e4),
            trial("d32-l2", 1e4),
            trial("d128-l2", 2e4),
        ];
        let mut queue = vec![0, 1, 2, 3, 4];
        longest_first(&mut queue, &trials);
        assert_eq!(queue, [4, 1, 2, 0, 3]);
    }

    #[test]
    fn two_jobs_never_start_on_one_trunk_while_another_is_free() {
        // Plan order: three budgets of trunk a, three of trunk b, one trial without a trunk.
        let branches = [branch("a"), branch("a"), branch("a"), branch("b"), branch("b"), branch("b"), None];
        let mut d = Dispatch { queue: (0..7).collect(), busy: Vec::new(), running: Vec::new() };
        let bases = [None; 7];
        assert_eq!(d.next(&branches, &bases), Next::Start(0));
        assert_eq!(d.next(&branches, &bases), Next::Start(3), "the second job skips to trunk b");
        d.done(0, &branches[0]);
        assert_eq!(d.next(&branches, &bases), Next::Start(1), "trunk a is free again");
        assert_eq!(d.next(&branches, &bases), Next::Start(6), "a and b busy: the lone trial");
        d.done(6, &branches[6]);
        assert_eq!(d.next(&branches, &bases), Next::Start(2), "every trunk left is busy: the first in order");
        assert_eq!(d.busy.iter().filter(|t| t.as_path() == Path::new("a")).count(), 2);
        d.done(1, &branches[1]);
        d.done(3, &branches[3]);
        assert_eq!(d.next(&branches, &bases), Next::Start(4));
    }

    /// A fine-tuning trial starts only once its base has ended; jobs wait while the base trains
    /// rather than stop, and a base that ended before this run (not queued) holds nothing up.
    #[test]
    fn fine_tuning_trials_wait_for_their_base() {
        let branches = [None, None, None, None];
        // 0 is the base of 1 and 2; 3's base (plan index 9) is not queued.
        let bases = [None, Some(0), Some(0), Some(9)];
        let mut d = Dispatch { queue: VecDeque::from([1, 0, 2, 3]), busy: Vec::new(), running: Vec::new() };
        assert_eq!(d.next(&branches, &bases), Next::Start(0), "the base first, though queued after");
        assert_eq!(d.next(&branches, &bases), Next::Start(3), "a trial whose base ended earlier");
        assert_eq!(d.next(&branches, &bases), Next::Wait, "1 and 2 wait while 0 trains");
        d.done(0, &branches[0]);
        assert_eq!(d.next(&branches, &bases), Next::Start(1));
        assert_eq!(d.next(&branches, &bases), Next::Start(2));
        assert_eq!(d.next(&branches, &bases), Next::Empty);
    }
}
