//! The Slurm executor against a real cluster: `scripts/local-slurm` starts a one-node one (CI
//! runs it before the tests). Each test submits tiny trials with the built `codescale`, as a
//! user would, and checks what a user relies on: every trial ends, none is trained by two
//! tasks (counted from what each task printed in its `<job>_<task>.out`), a cancelled task is
//! `lost` and its trial resumes from its checkpoint, ASHA prunes on Slurm what it prunes here.
//!
//! Without Slurm's commands on this machine the tests skip, loudly, unless
//! `CODESCALE_REQUIRE_ALL=1` (CI sets it, so a CI machine without Slurm fails instead of
//! passing untested); with them but no cluster answering they fail, saying how to start one.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use codescale_core::{ResultRow, Status, TrialRecord};
use common::{text, Lab};
use serde_json::Value;

/// The tests share one small cluster and two of them depend on timing (a task cancelled
/// mid-trial, two tasks racing for one trial), so they run one at a time.
static CLUSTER: Mutex<()> = Mutex::new(());

/// The cluster, held for one test; `None` (after saying so) where Slurm is not installed.
fn cluster() -> Option<MutexGuard<'static, ()>> {
    if Command::new("sinfo").arg("--version").output().is_err() {
        assert!(
            std::env::var("CODESCALE_REQUIRE_ALL").as_deref() != Ok("1"),
            "`sinfo` is not on PATH and CODESCALE_REQUIRE_ALL=1 forbids skipping the Slurm tests: run scripts/local-slurm to start a one-node cluster"
        );
        // Straight to the stream, not `eprintln!`, which the test harness swallows when a test passes.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: `sinfo` is not on PATH, so the Slurm executor is NOT tested. Run scripts/local-slurm to start a one-node cluster. ***\n");
        return None;
    }
    let guard = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new("sinfo").args(["-h", "-o", "%T"]).output().unwrap();
    let states = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && states.lines().any(|s| ["idle", "mixed", "allocated", "completing"].contains(&s.trim())),
        "no Slurm node accepts jobs (sinfo: {}{}): start the test cluster with scripts/local-slurm",
        states.trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Some(guard)
}

/// A scratch lab whose sweeps run on the cluster. Sweep names carry this process's id, so
/// their jobs (named `codescale-<sweep>`) are never confused with another run's; whatever a
/// test leaves queued (it failed half-way) is cancelled when the lab goes, before its folder
/// is removed under the tasks' feet.
struct SlurmLab {
    lab: Lab,
    names: Mutex<Vec<String>>,
}

impl SlurmLab {
    fn new() -> SlurmLab {
        SlurmLab { lab: Lab::new(), names: Mutex::new(Vec::new()) }
    }

    fn path(&self) -> &Path {
        self.lab.path()
    }

    /// Writes `<name>.toml`: tiny trials (d16-l1, bytes, 32-token windows) on the lab's corpus.
    /// `top` goes before `[base]`, `body` after its keys. Returns the file and the sweep's name.
    fn sweep(&self, name: &str, top: &str, body: &str) -> (PathBuf, String) {
        let name = format!("{name}-{}", std::process::id());
        let path = self.path().join(format!("{name}.toml"));
        let text = format!(
            "name = \"{name}\"\ncorpus = \"recipe.toml\"\n{top}[base]\nlanguage = \"rust\"\nmodel = \"d16-l1\"\ntokenizer = \"bytes\"\nseq_len = 32\nbatch_size = 8\neval_tokens = 1024\nwarmup = 0.1\n{body}"
        );
        std::fs::write(&path, text).unwrap();
        self.names.lock().unwrap().push(name.clone());
        (path, name)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.lab.run(args)
    }

    fn sweep_dir(&self, name: &str) -> PathBuf {
        self.path().join("runs").join(name)
    }
}

impl Drop for SlurmLab {
    fn drop(&mut self) {
        for name in self.names.lock().unwrap().iter() {
            let _ = Command::new("scancel").args(["--name", &format!("codescale-{name}")]).output();
        }
    }
}

fn results(sweep_dir: &Path) -> Vec<ResultRow> {
    codescale_table::read_rows(&sweep_dir.join("results.parquet")).unwrap()
}

/// The array jobs a sweep's submissions recorded: (job id, plan index of task 0, `--array`).
fn arrays(sweep_dir: &Path) -> Vec<(String, usize, String)> {
    let jobs: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(sweep_dir.join("slurm/jobs.json")).unwrap()).unwrap();
    jobs.iter()
        .map(|a| {
            (
                a["job"].as_str().unwrap().to_string(),
                a["offset"].as_u64().unwrap() as usize,
                a["tasks"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// What the sweep's tasks printed, by `<job>_<task>`.
fn task_outputs(sweep_dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(sweep_dir.join("slurm"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let task = name.strip_suffix(".out")?.to_string();
            Some((task, std::fs::read_to_string(e.path()).unwrap()))
        })
        .collect()
}

/// How many tasks trained each trial to an end (`trial <id> done: …`, as `trial run` prints
/// when it trained), and how many found their trial taken (held by another task, or ended).
fn trainings(outputs: &BTreeMap<String, String>) -> (BTreeMap<String, usize>, usize) {
    let mut trained = BTreeMap::new();
    let mut taken = 0;
    for line in outputs.values().flat_map(|o| o.lines()) {
        let Some(rest) = line.strip_prefix("trial ") else { continue };
        let (id, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if ["done:", "pruned:", "diverged:", "failed:"].iter().any(|s| rest.starts_with(s)) {
            *trained.entry(id.to_string()).or_default() += 1;
        } else if rest.starts_with("is being trained by") || rest.starts_with("had already ended") {
            taken += 1;
        }
    }
    (trained, taken)
}

fn record(sweep_dir: &Path, id: &str) -> TrialRecord {
    TrialRecord::load(&sweep_dir.join("trials").join(id)).unwrap()
}

/// The sweep's trial ids in plan order (array task k of offset o trains index o + k).
fn plan_ids(sweep_dir: &Path) -> Vec<String> {
    codescale_sweep::SweepDir::open(sweep_dir).unwrap().plan().unwrap().trials.iter().map(|t| t.trial_id()).collect()
}

fn status_json(lab: &SlurmLab, sweep: &Path) -> Value {
    let out = lab.run(&["sweep", "status", sweep.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits (up to `limit`) until none of the given jobs is queued or running.
fn wait_for_jobs(jobs: &[&str], limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let out = Command::new("squeue")
            .args(["--noheader", "--array", "--jobs", &jobs.join(","), "--format=%i"])
            .output()
            .unwrap();
        // squeue fails on job ids the controller has already forgotten: those are over.
        if !out.status.success() || out.stdout.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "jobs {jobs:?} still queued after {limit:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_sweep_runs_to_its_end_with_wait_and_is_fitted_and_reported_afterwards() {
    let Some(_cluster) = cluster() else { return };
    let lab = SlurmLab::new();
    // A ladder the fitter can use; `executor` in the file is what `codescale run` goes by.
    let (sweep, name) = lab.sweep(
        "ladder",
        "executor = \"slurm\"\n",
        "[parameters]\nmodel = { values = [\"d16-l1\", \"d32-l1\"] }\ntokens = { values = [8192, 16384, 32768] }\n",
    );
    let sweep = sweep.to_str().unwrap();
    let out = lab.run(&["sweep", "run", sweep, "--executor", "slurm", "--wait", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("submitted 6 trials"), "{}", text(&out));

    let dir = lab.sweep_dir(&name);
    let rows = results(&dir);
    assert_eq!(
        rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
        ["done"; 6],
        "results.parquet is written when --wait returns"
    );
    let (trained, taken) = trainings(&task_outputs(&dir));
    assert_eq!(trained, plan_ids(&dir).into_iter().map(|id| (id, 1)).collect(), "each trial trained by one task");
    assert_eq!(taken, 0);
    let status = status_json(&lab, Path::new(sweep));
    assert_eq!((status["counts"]["done"].as_u64(), status["counts"]["lost"].as_u64()), (Some(6), Some(0)), "{status}");
    // The job script names everything absolutely: tasks may start anywhere.
    let script = std::fs::read_to_string(dir.join("slurm/job.sh")).unwrap();
    assert!(
        script.contains(&format!("cd '{}'", lab.path().display()))
            && script.contains(&format!("'{}' --index", dir.display())),
        "{script}"
    );

    // Afterwards, fit and report read the Slurm sweep's folder like any other.
    let runs_dir = format!("runs/{name}");
    let out = lab.run(&["fit", &runs_dir, "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(lab.path().join(format!("fits/{name}.json")).exists(), "{}", text(&out));
    let out = lab.run(&["report", &runs_dir]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(lab.path().join(format!("reports/{name}/index.html")).exists(), "{}", text(&out));

    // `codescale run` on the same file goes to Slurm (the file says so), finds nothing left
    // to train, and fits and reports.
    let out = lab.run(&["run", sweep, "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing to submit") && text(&out).contains("index.html"), "{}", text(&out));
    assert_eq!(trainings(&task_outputs(&dir)).0.values().sum::<usize>(), 6, "nothing trained again");
}

#[test]
fn a_cancelled_task_is_lost_and_resubmission_resumes_its_trial_from_the_checkpoint() {
    let Some(_cluster) = cluster() else { return };
    let lab = SlurmLab::new();
    // Long enough (seconds) to be cancelled between checkpoints; one task at a time.
    let (sweep, name) = lab.sweep(
        "cancel",
        "",
        "tokens = 600000\n[parameters]\nlr = { values = [3e-3, 1e-2] }\n[slurm]\narray_parallelism = 1\n",
    );
    let sweep = sweep.to_str().unwrap();
    let out = lab.run(&["sweep", "run", sweep, "--executor", "slurm", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("--wait"), "says how to follow the jobs: {}", text(&out));
    let dir = lab.sweep_dir(&name);
    let ids = plan_ids(&dir);
    let (job, ..) = arrays(&dir).remove(0);

    // Cancel task 0 once its trial has saved a checkpoint.
    let deadline = Instant::now() + Duration::from_secs(60);
    let steps_then = loop {
        if let Ok(r) = TrialRecord::load(&dir.join("trials").join(&ids[0])) {
            assert_ne!(r.status, Status::Done, "the trial finished before it could be cancelled");
            if r.status == Status::Running && r.metrics.steps > 0 {
                break r.metrics.steps;
            }
        }
        assert!(Instant::now() < deadline, "task {job}_0 never checkpointed");
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Command::new("scancel").arg(format!("{job}_0")).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // `sweep status` shows it lost (its holder is gone), naming the task that held it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let lost = loop {
        let status = status_json(&lab, Path::new(sweep));
        if let Some(lost) = status["lost"].as_array().and_then(|l| l.first()).cloned() {
            break lost;
        }
        assert!(Instant::now() < deadline, "the cancelled trial never showed as lost: {status}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(lost["id"], ids[0].as_str());
    assert!(lost["holder"].as_str().unwrap().contains(&format!("Slurm job {job}_0")), "{lost}");
    let out = lab.run(&["sweep", "status", sweep]);
    assert!(text(&out).contains("lost") && text(&out).contains("resumes it"), "{}", text(&out));

    // Submitting again sends the lost trial (not the other, which task 1 has or had) and
    // follows every array to the end.
    let out = lab.run(&["sweep", "run", sweep, "--executor", "slurm", "--wait", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("submitted 1 trials"), "{}", text(&out));
    assert_eq!(results(&dir).iter().map(|r| r.status.as_str()).collect::<Vec<_>>(), ["done", "done"]);

    let outputs = task_outputs(&dir);
    assert!(
        !outputs[&format!("{job}_0")].contains(&format!("trial {} done", ids[0])),
        "the cancelled task did not finish it"
    );
    let (trained, _) = trainings(&outputs);
    assert_eq!(trained, ids.iter().map(|id| (id.clone(), 1)).collect(), "{outputs:#?}");
    // It went on from its checkpoint (at or after the step seen before the cancel), not from 0.
    let resumed = record(&dir, &ids[0]).notes;
    let at: usize = resumed
        .iter()
        .find_map(|n| n.strip_prefix("resumed from its checkpoint at step ")?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("not resumed: {resumed:?}"));
    assert!(at >= steps_then, "resumed at step {at}, but step {steps_then} had been checkpointed");
    assert!(record(&dir, &ids[1]).notes.is_empty(), "the other trial was trained once, straight through");
}

#[test]
fn a_sweep_submitted_twice_trains_each_trial_once() {
    let Some(_cluster) = cluster() else { return };
    let lab = SlurmLab::new();
    // One task at a time in the sweep's own array, so the duplicate array below (unthrottled)
    // runs beside it and its tasks meet trials being trained.
    let (sweep, name) = lab.sweep(
        "twice",
        "",
        "tokens = 400000\n[parameters]\nlr = { values = [3e-3, 1e-2, 2e-2] }\n[slurm]\narray_parallelism = 1\n",
    );
    let sweep = sweep.to_str().unwrap();
    let out = lab.run(&["sweep", "run", sweep, "--executor", "slurm", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    // The same command again: every trial is queued, running or done, so nothing is sent.
    let out = lab.run(&["sweep", "run", sweep, "--executor", "slurm", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing to submit"), "{}", text(&out));
    // A duplicate that the queue check cannot see (the job script sent again by hand, as from
    // another login node): only the trials' leases keep it from training them a second time.
    let dir = lab.sweep_dir(&name);
    let out = Command::new("sbatch")
        .args(["--parsable", "--array=0-2"])
        .arg(dir.join("slurm/job.sh"))
        .arg("0")
        .current_dir(lab.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let duplicate = String::from_utf8_lossy(&out.stdout).trim().split(';').next().unwrap().to_string();

    let out = lab.run(&["sweep", "run", sweep, "--executor", "slurm", "--wait", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_for_jobs(&[&duplicate], Duration::from_secs(120));

    let outputs = task_outputs(&dir);
    assert_eq!(outputs.len(), 6, "three tasks of each array ran: {:?}", outputs.keys());
    let (trained, taken) = trainings(&outputs);
    assert_eq!(trained, plan_ids(&dir).into_iter().map(|id| (id, 1)).collect(), "{outputs:#?}");
    assert_eq!(taken, 3, "every other task found its trial taken: {outputs:#?}");
    assert_eq!(results(&dir).iter().filter(|r| r.status == Status::Done).count(), 3);
}

#[test]
fn asha_on_slurm_prunes_what_a_local_run_prunes() {
    let Some(_cluster) = cluster() else { return };
    let lab = SlurmLab::new();
    // Good learning rates first, so the rungs have something to prune the bad ones against;
    // one task at a time, in plan order, as the local run with one job goes.
    let (sweep, name) = lab.sweep(
        "asha",
        "",
        "tokens = 65536\n[parameters]\nlr = { values = [3e-3, 1e-2, 1e-6, 3e-7, 1e-7] }\n[early_stop]\nmin_tokens = 16384\nreduction = 2\n[slurm]\narray_parallelism = 1\n",
    );
    let sweep = sweep.to_str().unwrap();
    let local = lab.run(&["sweep", "run", sweep, "--executor", "local", "--jobs", "1", "--runs", "local", "--quiet"]);
    assert!(local.status.success(), "{}", text(&local));
    let out = lab.run(&["sweep", "run", sweep, "--executor", "slurm", "--wait", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));

    let outcome = |rows: Vec<ResultRow>| rows.into_iter().map(|r| (r.trial_id, r.status, r.tokens)).collect::<Vec<_>>();
    let on_slurm = outcome(results(&lab.sweep_dir(&name)));
    assert_eq!(on_slurm, outcome(results(&lab.path().join("local").join(&name))));
    assert!(on_slurm.iter().filter(|(_, status, _)| *status == Status::Pruned).count() >= 3, "{on_slurm:?}");
    // The tasks decided on rungs kept in the shared runs folder.
    let rungs: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.sweep_dir(&name).join("asha.json")).unwrap()).unwrap();
    assert!(rungs.as_object().is_some_and(|g| !g.is_empty()), "{rungs}");
}

#[test]
fn arrays_are_cut_under_max_array_size() {
    let Some(_cluster) = cluster() else { return };
    let lab = SlurmLab::new();
    // As on a cluster whose MaxArraySize is 2: five trials need three arrays.
    let (sweep, name) = lab.sweep("chunks", "", "tokens = 8192\n[parameters]\nlr = { values = [1e-3, 2e-3, 3e-3, 4e-3, 5e-3] }\n[slurm]\nmax_array_size = 2\narray_parallelism = 2\n");
    let out = lab.run(&["sweep", "run", sweep.to_str().unwrap(), "--executor", "slurm", "--wait", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));

    let dir = lab.sweep_dir(&name);
    let arrays = arrays(&dir);
    assert_eq!(
        arrays.iter().map(|(_, offset, tasks)| (*offset, tasks.as_str())).collect::<Vec<_>>(),
        [(0, "0-1%2"), (2, "0-1%2"), (4, "0%2")]
    );
    // Task k of the array at offset o trained the trial at plan index o + k, and only it.
    let ids = plan_ids(&dir);
    let outputs = task_outputs(&dir);
    assert_eq!(outputs.len(), 5, "{:?}", outputs.keys());
    for (job, offset, _) in &arrays {
        for (task, output) in
            outputs.iter().filter_map(|(t, o)| Some((t.strip_prefix(&format!("{job}_"))?.parse::<usize>().unwrap(), o)))
        {
            assert!(task < 2, "task index {task} is not below MaxArraySize 2");
            assert!(output.starts_with(&format!("trial {} done", ids[offset + task])), "{job}_{task}: {output}");
        }
    }
    assert_eq!(trainings(&outputs).0.len(), 5);
    assert_eq!(results(&dir).iter().filter(|r| r.status == Status::Done).count(), 5);
}

/// An array queued before its sweep is edited and run again trains the trials it was
/// submitted for, from the task plan it was submitted with: the replanned sweep moves every
/// trial to another plan index, and the new submission sends only the trial the queued array
/// does not cover. Nothing is trained twice, nothing is lost.
#[test]
fn replanning_while_an_array_is_queued_trains_what_each_task_was_submitted_for() {
    let Some(_cluster) = cluster() else { return };
    let lab = SlurmLab::new();
    // Submitted held (`--hold`): the array stays queued while the sweep changes.
    let body =
        |lrs: &str, slurm: &str| format!("tokens = 8192\n[parameters]\nlr = {{ values = [{lrs}] }}\n[slurm]\n{slurm}");
    let (sweep, name) = lab.sweep("replan", "", &body("1e-3, 2e-3", "extra = [\"--hold\"]\n"));
    let out = lab.run(&["sweep", "run", sweep.to_str().unwrap(), "--executor", "slurm", "--quiet"]);
    assert!(out.status.success() && text(&out).contains("submitted 2 trials"), "{}", text(&out));
    let dir = lab.sweep_dir(&name);
    let submitted = plan_ids(&dir);
    let (held, ..) = arrays(&dir).remove(0);

    // Edited: a new learning rate first, so both queued trials move to other plan indices.
    let text_before = std::fs::read_to_string(&sweep).unwrap();
    let edited = text_before.replace(&body("1e-3, 2e-3", "extra = [\"--hold\"]\n"), &body("5e-3, 1e-3, 2e-3", ""));
    assert_ne!(edited, text_before);
    std::fs::write(&sweep, edited).unwrap();
    let out = lab.run(&["sweep", "run", sweep.to_str().unwrap(), "--executor", "slurm", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("submitted 1 trials"), "only the new trial is sent: {}", text(&out));
    let replanned = plan_ids(&dir);
    assert_eq!(replanned[1..], submitted[..], "the edit moved the submitted trials");

    let out = Command::new("scontrol").args(["release", &held]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = lab.run(&["sweep", "run", sweep.to_str().unwrap(), "--executor", "slurm", "--wait", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing to submit"), "{}", text(&out));

    let outputs = task_outputs(&dir);
    assert_eq!(outputs.len(), 3, "{:?}", outputs.keys());
    for (task, id) in submitted.iter().enumerate() {
        let output = &outputs[&format!("{held}_{task}")];
        assert!(
            output.starts_with(&format!("trial {id} done")),
            "held task {task} trains {id}, as submitted: {output}"
        );
    }
    let (trained, taken) = trainings(&outputs);
    assert_eq!(trained, replanned.iter().map(|id| (id.clone(), 1)).collect(), "{outputs:#?}");
    assert_eq!(taken, 0);
    assert_eq!(results(&dir).iter().filter(|r| r.status == Status::Done).count(), 3);
}

/// A fine-tuning trial's task must not start before its base's: the bases go in one array, the
/// trials that start from them in another that waits for it, so one submission trains both.
#[test]
fn fine_tuning_tasks_wait_for_their_base_s_array() {
    let Some(_cluster) = cluster() else { return };
    let lab = SlurmLab::new();
    let (sweep, name) = lab.sweep(
        "finetune",
        "[pretrain.b]\nlanguage = \"rust\"\nmodel = \"d16-l1\"\nseq_len = 32\nbatch_size = 8\ntokens = 16384\neval_tokens = 1024\n",
        "tokens = 4096\nsft = \"functions\"\ninit_from = \"b\"\n[parameters]\nlr = { values = [1e-3, 3e-3] }\n",
    );
    let out = lab.run(&["sweep", "run", sweep.to_str().unwrap(), "--executor", "slurm", "--wait", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = lab.sweep_dir(&name);
    let rows = results(&dir);
    assert_eq!(rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(), ["done"; 3], "{}", text(&out));
    let base = rows.iter().find(|r| r.init_from.is_empty()).unwrap();
    assert!(rows.iter().filter(|r| !r.init_from.is_empty()).all(|r| r.init_from == base.trial_id));
    let arrays = arrays(&dir);
    assert_eq!(arrays.iter().map(|a| (a.1, a.2.as_str())).collect::<Vec<_>>(), [(0, "0"), (0, "1-2")], "{arrays:?}");
}
