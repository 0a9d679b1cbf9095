//! Cooldown branches: a ladder of WSD budgets trains one trunk and forks each cooldown from it.
//! Branching is an optimisation, never a different experiment: every branch equals, bit for bit,
//! the same trial trained alone, and survives kill -9 like any trial.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use codescale_core::{CurvePoint, ResultRow, Status, TrialRecord};
use common::{bin, text, Lab};

/// Four budgets of one model, plus a second learning rate (its own trunk) and ASHA rungs, so
/// branches also settle rung decisions from their trunk's evaluations.
fn sweep(lab: &Lab, name: &str, extra: &str) -> PathBuf {
    let path = lab.path().join(format!("{name}.toml"));
    let text = format!(
        "name = \"{name}\"\ncorpus = \"recipe.toml\"\n{extra}\n[base]\nlanguage = \"rust\"\nmodel = \"d32-l1\"\nseq_len = 32\nbatch_size = 8\neval_tokens = 1024\nschedule = \"wsd\"\nwarmup = 10\ndecay_frac = 0.25\ndecay_shape = \"1-sqrt\"\n[parameters]\nlr = {{ values = [3e-3, 1e-2] }}\ntokens = {{ values = [16384, 32768, 49152, 65536] }}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn results(runs: &Path, name: &str) -> Vec<ResultRow> {
    codescale_table::read_rows(&runs.join(name).join("results.parquet")).unwrap()
}

fn curve(runs: &Path, name: &str, id: &str) -> Vec<CurvePoint> {
    codescale_table::read_rows(&runs.join(name).join("trials").join(id).join("curve.parquet")).unwrap()
}

/// Losses of a curve as bits: (step, train loss, validation loss).
fn bits(c: &[CurvePoint]) -> Vec<(usize, u64, Option<u64>)> {
    c.iter().map(|p| (p.step, p.train_loss.to_bits(), p.val_loss.map(f64::to_bits))).collect()
}

fn run(lab: &Lab, path: &Path, runs: &str) -> String {
    let out = lab.run(&["sweep", "run", path.to_str().unwrap(), "--runs", runs, "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    text(&out)
}

#[test]
fn every_branch_equals_its_trial_trained_alone() {
    let lab = Lab::new();
    // One job, so that ASHA sees the rungs in the same order in both sweeps.
    let asha = "jobs = 1\n[early_stop]\nmin_tokens = 4096\nreduction = 2\n";
    let branched = sweep(&lab, "ladder", asha);
    let alone = sweep(&lab, "ladder-alone", &format!("branches = false\n{asha}"));
    let plan = lab.run(&["sweep", "plan", branched.to_str().unwrap()]);
    assert!(text(&plan).contains("8 trials fork from 2 shared trunks"), "{}", text(&plan));
    run(&lab, &branched, "runs");
    // In another runs folder: under the same one, the finished branches would be reused, as the
    // same trials.
    run(&lab, &alone, "alone");
    let runs = lab.path().join("runs");
    let (a, b) = (results(&runs, "ladder"), results(&lab.path().join("alone"), "ladder-alone"));
    assert_eq!(a.len(), 8);
    assert!(
        a.iter().any(|r| r.status == Status::Pruned),
        "a rung settled by the trunk's evaluations prunes: {:?}",
        a.iter().map(|r| &r.status).collect::<Vec<_>>()
    );
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.status, y.status);
        assert_eq!(x.trial_id, y.trial_id, "branching does not change what a trial is");
        assert!(!x.trunk.is_empty() && y.trunk.is_empty());
        assert_eq!(
            bits(&curve(&runs, "ladder", &x.trial_id)),
            bits(&curve(&lab.path().join("alone"), "ladder-alone", &y.trial_id)),
            "trial {} (lr {}, {} tokens)",
            x.trial_id,
            x.lr,
            x.tokens
        );
        assert!(x.val_loss_se.is_some_and(|se| se > 0.0));
    }
    let trunks: Vec<_> = std::fs::read_dir(runs.join("_trunks")).unwrap().flatten().collect();
    assert_eq!(trunks.len(), 2);

    // A second sweep over the same trunk trains no trunk step again: its forks are all there.
    let again = sweep(&lab, "ladder-again", "");
    let before: Vec<_> =
        trunks.iter().map(|t| std::fs::metadata(t.path().join("trunk.json")).unwrap().modified().unwrap()).collect();
    run(&lab, &again, "runs");
    let log = run(&lab, &again, "runs");
    assert!(log.contains("trained 0 now"), "{log}");
    let after: Vec<_> =
        trunks.iter().map(|t| std::fs::metadata(t.path().join("trunk.json")).unwrap().modified().unwrap()).collect();
    assert_eq!(before, after, "the shared trunks were not trained again");
}

/// Kills the sweep once `ready` holds, waiting at most five minutes.
fn kill_when(lab: &Lab, path: &Path, ready: impl Fn() -> bool) {
    let mut child =
        bin().args(["sweep", "run", path.to_str().unwrap(), "--quiet"]).current_dir(lab.path()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !ready() {
        assert!(Instant::now() < deadline, "never reached the moment to kill");
        assert!(child.try_wait().unwrap().is_none(), "the sweep finished before it could be killed");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn killed_during_a_trunk_and_during_a_branch_resumes_to_the_same_results() {
    let lab = Lab::new();
    let path = sweep(&lab, "kill", "jobs = 1");
    run(&lab, &path, "reference");
    let runs = lab.path().join("runs");
    let trunks = runs.join("_trunks");
    // During a trunk: its periodic checkpoint exists, no branch has finished.
    kill_when(&lab, &path, || {
        std::fs::read_dir(&trunks)
            .into_iter()
            .flatten()
            .flatten()
            .any(|t| t.path().join("checkpoint/state.bin").exists())
    });
    // During a branch: a branch has its own checkpoint.
    let trials = runs.join("kill/trials");
    kill_when(&lab, &path, || {
        std::fs::read_dir(&trials)
            .into_iter()
            .flatten()
            .flatten()
            .any(|t| t.path().join("checkpoint/state.bin").exists())
    });
    let done_before: Vec<String> = std::fs::read_dir(&trials)
        .unwrap()
        .flatten()
        .filter(|t| TrialRecord::load(&t.path()).is_ok_and(|r| r.status == codescale_core::Status::Done))
        .map(|t| t.file_name().to_string_lossy().into_owned())
        .collect();
    let log = run(&lab, &path, "runs");
    assert!(log.contains(&format!("{} already finished", done_before.len())), "{log}");
    let reference = lab.path().join("reference");
    for (x, y) in results(&runs, "kill").iter().zip(results(&reference, "kill")) {
        assert_eq!(x.status, Status::Done);
        assert_eq!(
            bits(&curve(&runs, "kill", &x.trial_id)),
            bits(&curve(&reference, "kill", &y.trial_id)),
            "trial {}",
            x.trial_id
        );
    }
}

#[test]
fn replicates_are_repeated_measurements_of_one_configuration() {
    let lab = Lab::new();
    let path = lab.path().join("reps.toml");
    std::fs::write(&path, "name = \"reps\"\ncorpus = \"recipe.toml\"\nreplicates = 3\n[base]\nlanguage = \"rust\"\nseq_len = 32\nbatch_size = 8\neval_tokens = 1024\n[parameters]\nmodel = { values = [\"d32-l1\", \"d48-l1\", \"d64-l1\"] }\ntokens = { values = [8192, 16384] }\n").unwrap();
    let out = lab.run(&["run", path.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows = results(&lab.path().join("runs"), "reps");
    assert_eq!(rows.len(), 18);
    let configs: std::collections::BTreeSet<_> = rows.iter().map(|r| r.config_id.clone()).collect();
    assert_eq!(configs.len(), 6, "three seeds of each configuration share its id");
    let seeds: std::collections::BTreeSet<_> = rows.iter().map(|r| r.seed).collect();
    assert_eq!(seeds.len(), 3);
    let fit: codescale_fit::FitFile =
        serde_json::from_slice(&std::fs::read(lab.path().join("fits/reps.json")).unwrap()).unwrap();
    let group = &fit.groups[0];
    assert_eq!(group.n_points, 18, "the law is fitted on every replicate");
    assert_eq!(group.replicates.len(), 6, "one spread per configuration");
    for r in &group.replicates {
        assert_eq!(r.count, 3);
        assert!(r.sd > 0.0 && r.sd < 0.1 * r.mean, "{r:?}");
    }
}

/// The whole-curve law is fitted from every evaluation of a WSD ladder (a trunk's evaluations
/// once, though each branch's curve repeats them) and predicts the held-out target from its
/// config; `--no-curves` leaves it out.
#[test]
fn whole_curve_law_uses_every_evaluation_once() {
    let lab = Lab::new();
    let path = lab.path().join("curves.toml");
    std::fs::write(
        &path,
        "name = \"curves\"\ncorpus = \"recipe.toml\"\n[base]\nlanguage = \"rust\"\nseq_len = 32\nbatch_size = 8\neval_tokens = 1024\nschedule = \"wsd\"\nwarmup = 10\ndecay_frac = 0.25\nlr = 3e-3\n[parameters]\nmodel = { values = [\"d16-l1\", \"d32-l1\", \"d48-l1\"] }\ntokens = { values = [16384, 32768] }\n[targets]\nmodel = { values = [\"d64-l1\"] }\ntokens = { values = [32768] }\n",
    )
    .unwrap();
    let out = lab.run(&["run", path.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    let runs = lab.path().join("runs");
    let rows = results(&runs, "curves");
    let evaluations: usize = rows
        .iter()
        .filter(|r| !r.target)
        .map(|r| curve(&runs, "curves", &r.trial_id).iter().filter(|p| p.val_loss.is_some()).count())
        .sum();
    let fit: codescale_fit::FitFile =
        serde_json::from_slice(&std::fs::read(lab.path().join("fits/curves.json")).unwrap()).unwrap();
    let law = fit.groups[0]
        .curve_law
        .as_ref()
        .unwrap_or_else(|| panic!("no whole-curve law: {:?}", fit.groups[0].curve_law_skipped));
    assert_eq!(law.runs, 6);
    assert!(law.evaluations > 2 * law.runs, "intermediate evaluations are fitted: {}", law.evaluations);
    assert!(law.evaluations < evaluations, "a trunk's evaluations count once: {} of {evaluations}", law.evaluations);
    assert_eq!(law.targets.len(), 1);
    let t = &law.targets[0];
    assert!(t.predicted.value.is_finite() && t.predicted.lo.is_some() && t.error.abs() < 0.2, "{t:?}");
    let table = lab.run(&["fit", runs.join("curves").to_str().unwrap(), "--bootstrap", "20"]);
    assert!(text(&table).contains("whole-curve law E + A/N^α + B/S₁^β − C·S₂"), "{}", text(&table));
    let bare = lab.run(&["fit", runs.join("curves").to_str().unwrap(), "--bootstrap", "20", "--no-curves", "--json"]);
    assert!(bare.status.success() && !text(&bare).contains("curve_law"), "{}", text(&bare));
    // `codescale run` wrote the report: the law's own table, and the target predicted by both laws.
    let html = std::fs::read_to_string(lab.path().join("reports/curves/index.html")).unwrap();
    assert!(html.contains("id=\"curves\">Whole-curve law"), "no whole-curve section");
    assert!(html.contains("<td>whole-curve</td>"), "the target's whole-curve prediction is missing");
}
