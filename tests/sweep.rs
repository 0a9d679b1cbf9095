//! The sweep scheduler end to end, on real (tiny) trials.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use codescale_core::{ResultRow, Status, TrialRecord};
use common::{bin, text, Lab};

fn results(runs: &Path, sweep: &str) -> Vec<ResultRow> {
    codescale_table::read_rows(&runs.join(sweep).join("results.parquet")).unwrap()
}

fn done_trials(sweep_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(sweep_dir.join("trials")) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| TrialRecord::load(&e.path()).is_ok_and(|r| r.status == Status::Done))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Every file of a trial folder with its bytes and modification time.
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                (std::fs::read(e.path()).unwrap(), e.metadata().unwrap().modified().unwrap()),
            )
        })
        .collect()
}

const LADDER: &str =
    "[parameters]\nmodel = { values = [\"d32-l1\", \"d64-l1\"] }\ntokens = { values = [16384, 24576, 32768] }\n";

#[test]
fn killed_scheduler_resumes_without_redoing_finished_trials() {
    let lab = Lab::new();
    let sweep = lab.sweep("ladder", LADDER);
    let sweep = sweep.to_str().unwrap();

    // Reference: the same sweep, uninterrupted, in another runs folder.
    let out = lab.run(&["sweep", "run", sweep, "--runs", "reference", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    let reference = results(&lab.path().join("reference"), "ladder");
    assert_eq!(reference.len(), 6);
    assert!(reference.iter().all(|r| r.status == Status::Done));

    let mut child =
        bin().args(["sweep", "run", sweep, "--runs", "runs", "--quiet"]).current_dir(lab.path()).spawn().unwrap();
    let sweep_dir = lab.path().join("runs/ladder");
    let deadline = Instant::now() + Duration::from_secs(300);
    while done_trials(&sweep_dir).is_empty() {
        assert!(Instant::now() < deadline, "no trial finished");
        assert!(child.try_wait().unwrap().is_none(), "the sweep finished before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A moment into the next trial, chosen from the clock so runs differ.
    let jitter = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_millis() as u64 % 400;
    std::thread::sleep(Duration::from_millis(jitter));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let finished = done_trials(&sweep_dir);
    assert!(!finished.is_empty() && finished.len() < 6, "killed with {} of 6 done", finished.len());
    let before: BTreeMap<String, _> =
        finished.iter().map(|id| (id.clone(), snapshot(&sweep_dir.join("trials").join(id)))).collect();

    let out = lab.run(&["sweep", "run", sweep, "--runs", "runs", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("{} already finished", finished.len())), "{}", text(&out));
    for (id, files) in &before {
        assert_eq!(&snapshot(&sweep_dir.join("trials").join(id)), files, "finished trial {id} was touched");
    }

    let key = |rows: &[ResultRow]| {
        rows.iter()
            .map(|r| (r.trial_id.clone(), r.status, r.val_loss.map(f64::to_bits), r.train_loss.map(f64::to_bits)))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&results(&lab.path().join("runs"), "ladder")), key(&reference));
}

#[test]
fn a_second_scheduler_on_the_same_sweep_is_refused() {
    let lab = Lab::new();
    let sweep = lab.sweep("busy", "[parameters]\ntokens = { values = [200000, 300000] }\n");
    let sweep = sweep.to_str().unwrap();
    let mut first = bin().args(["sweep", "run", sweep, "--quiet"]).current_dir(lab.path()).spawn().unwrap();
    let lock = lab.path().join("runs/busy/lock");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !lock.exists() {
        assert!(
            Instant::now() < deadline && first.try_wait().unwrap().is_none(),
            "the first scheduler never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = lab.run(&["sweep", "run", sweep, "--quiet"]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert!(text(&second).contains("another scheduler"), "{}", text(&second));

    // The killed scheduler's lock is stale now: a new scheduler takes it over.
    let status = lab.run(&["sweep", "status", sweep, "--json"]);
    assert!(status.status.success(), "{}", text(&status));
}

#[test]
fn a_diverging_trial_is_recorded_and_the_sweep_goes_on() {
    let lab = Lab::new();
    let sweep =
        lab.sweep("diverge", "grad_clip = 0.0\ntokens = 40960\n[parameters]\nlr = { values = [3e-3, 10.0, 1e-2] }\n");
    let out = lab.run(&["sweep", "run", sweep.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "diverged trials are results, not failures: {}", text(&out));
    let rows = results(&lab.path().join("runs"), "diverge");
    let status: Vec<(f64, &str)> = rows.iter().map(|r| (r.lr, r.status.as_str())).collect();
    assert_eq!(status, vec![(3e-3, "done"), (10.0, "diverged"), (1e-2, "done")]);
}

#[test]
fn asha_prunes_bad_learning_rates_and_keeps_the_best() {
    let lab = Lab::new();
    // Good learning rates first, so the rungs have something to compare the bad ones with.
    let sweep = lab.sweep(
        "asha",
        "tokens = 65536\n[parameters]\nlr = { values = [3e-3, 1e-2, 1e-6, 3e-7, 1e-7] }\n[early_stop]\nmin_tokens = 16384\nreduction = 2\n",
    );
    let out = lab.run(&["sweep", "run", sweep.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows = results(&lab.path().join("runs"), "asha");
    let by_lr: BTreeMap<String, &ResultRow> = rows.iter().map(|r| (format!("{:e}", r.lr), r)).collect();
    for bad in ["1e-6", "3e-7", "1e-7"] {
        let r = by_lr[bad];
        assert_eq!(r.status, Status::Pruned, "lr {bad}");
        assert!(r.tokens < 65536.0, "a pruned trial stops early");
    }
    let best = rows
        .iter()
        .filter(|r| r.status == Status::Done)
        .min_by(|a, b| a.val_loss.unwrap().total_cmp(&b.val_loss.unwrap()))
        .unwrap();
    assert!(best.lr >= 3e-3, "best trial has lr {}", best.lr);
    assert!(lab.path().join("runs/asha/asha.json").exists(), "rungs are kept on disk");
}

#[test]
fn dense_and_moe_of_equal_active_size_finish_in_one_sweep() {
    let lab = Lab::new();
    let sweep = lab.sweep("family", "tokens = 16384\n[parameters]\nfamily = { values = [{ arch = \"dense\" }, { arch = \"moe\", n_experts = 4, top_k = 1 }] }\n");
    let out = lab.run(&["sweep", "run", sweep.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows = results(&lab.path().join("runs"), "family");
    assert_eq!(
        rows.iter().map(|r| (r.arch.as_str(), r.status.as_str())).collect::<Vec<_>>(),
        vec![("dense", "done"), ("moe", "done")]
    );
    let (dense, moe) = (&rows[0], &rows[1]);
    // Top-1 of 4 experts as wide as the dense MLP: a token touches the dense model's
    // parameters plus the router's.
    assert_eq!(moe.n_params_active - dense.n_params_active, 32.0 * 4.0);
    assert!(moe.n_params_total > dense.n_params_total);
}

/// `trial run --corpus` (what the local executor gives its child processes) trains from the
/// given corpus only if it is the trial's: another corpus, or a folder that is none, is a
/// mistake in the command (exit 2, nothing written), not a failure recorded against the trial.
#[test]
fn trial_run_refuses_a_corpus_the_trial_was_not_planned_against() {
    let lab = Lab::new();
    let sweep = lab.sweep("given", "tokens = 2560\n");
    let out = lab.run(&["sweep", "run", sweep.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    // The local executor's child processes trained from a task plan of its queue, as Slurm
    // tasks do: the trials with their corpus folder, planned once by the scheduler.
    let plans: Vec<_> =
        std::fs::read_dir(lab.path().join("runs/given/plans")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(plans.len(), 1, "{plans:?}");
    let written = codescale_sweep::tasks::TaskPlan::read(&plans[0]).unwrap();
    let planned = codescale_sweep::SweepDir::open(&lab.path().join("runs/given")).unwrap().plan().unwrap();
    assert_eq!(
        written.tasks.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        planned.trials.iter().map(|t| t.trial_id()).collect::<Vec<_>>()
    );
    let trials = lab.path().join("runs/given/trials");
    std::fs::remove_dir_all(&trials).unwrap();
    let corpus = std::fs::read_dir(lab.path().join("corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("manifest.json").exists())
        .expect("the sweep built its corpus");
    // The same shards under a manifest that names other contents.
    let other = lab.path().join("other-corpus");
    common::copy_tree(&corpus, &other);
    let manifest = std::fs::read_to_string(other.join("manifest.json")).unwrap();
    let hash = serde_json::from_str::<serde_json::Value>(&manifest).unwrap()["hash"].as_str().unwrap().to_string();
    std::fs::write(other.join("manifest.json"), manifest.replace(&hash, &"0".repeat(hash.len()))).unwrap();
    for (given, says) in [
        (other.as_path(), "is not the corpus trial"),
        (lab.path().join("nowhere").as_path(), "is not a corpus directory"),
    ] {
        let out = lab.run(&["trial", "run", "runs/given", "--index", "0", "--corpus", given.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(says), "{}", text(&out));
        assert!(!trials.exists(), "nothing is written for a refused command");
    }
    let out = lab.run(&[
        "trial",
        "run",
        "runs/given",
        "--index",
        "0",
        "--corpus",
        corpus.to_str().unwrap(),
        "--threads",
        "1",
    ]);
    assert!(out.status.success() && text(&out).contains(" done: "), "{}", text(&out));

    // A Slurm task trains from the corpus folder its task plan names, never builds one: a folder
    // that holds another corpus (a node whose copy differs) fails the trial for good, naming
    // both manifests, and the trial is not retried.
    std::fs::remove_dir_all(&trials).unwrap();
    let sweep_dir = codescale_sweep::SweepDir::open(&lab.path().join("runs/given")).unwrap();
    let config = sweep_dir.plan().unwrap().trials[0].clone();
    let planned = config.corpus_key.clone().unwrap().manifest;
    let task = codescale_sweep::tasks::Task { id: config.trial_id(), config, branch: None, corpus: other.clone() };
    let plan = codescale_sweep::tasks::TaskPlan { sweep: "given".into(), early_stop: None, tasks: vec![task] };
    let plan_path = plan.write(&sweep_dir).unwrap();
    let corpora = || std::fs::read_dir(lab.path().join("corpus")).unwrap().count();
    let before = corpora();
    let out = lab.run(&["trial", "run", "runs/given", "--index", "0", "--plan", plan_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let record = TrialRecord::load(&trials.join(&plan.tasks[0].id)).unwrap();
    let error = record.error.clone().unwrap_or_default();
    assert_eq!((record.status, record.retryable), (Status::Failed, false), "{error}");
    assert!(error.contains(&planned) && error.contains(&"0".repeat(planned.len())), "names both manifests: {error}");
    assert_eq!(corpora(), before, "no corpus built or rebuilt");
}
