//! Results you can trust: a result is reused only when everything that determines it is the
//! same, bad values are refused before anything is written, and every file the lab wrote itself
//! is recovered from when it is damaged.

mod common;

use std::path::PathBuf;

use codescale_core::{ResultRow, Status, TrialRecord};
use common::{text, Lab};

const TWO: &str = "[parameters]\ntokens = { values = [8192, 16384] }\n";

fn results(lab: &Lab, sweep: &str) -> Vec<ResultRow> {
    codescale_table::read_rows(&lab.path().join("runs").join(sweep).join("results.parquet")).unwrap()
}

fn trial_dir(lab: &Lab, sweep: &str, id: &str) -> PathBuf {
    lab.path().join("runs").join(sweep).join("trials").join(id)
}

fn run_ok(lab: &Lab, args: &[&str]) -> String {
    let out = lab.run(args);
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    text(&out)
}

fn manifest_hash(lab: &Lab) -> String {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.path().join("corpus/recipe-bytes/manifest.json")).unwrap()).unwrap();
    m["hash"].as_str().unwrap().to_string()
}

#[test]
fn a_changed_corpus_is_never_mistaken_for_the_old_one() {
    let lab = Lab::new();
    let sweep = lab.sweep("two", TWO);
    let sweep = sweep.to_str().unwrap();
    run_ok(&lab, &["sweep", "run", sweep, "--quiet"]);
    let before = results(&lab, "two");
    let old_hash = manifest_hash(&lab);

    // The corpus grows by one file: every trial is a new experiment.
    std::fs::write(lab.path().join("src/core/extra.rs"), "pub fn added() -> u32 { 40 + 2 }\n".repeat(50)).unwrap();
    let log = run_ok(&lab, &["sweep", "run", sweep, "--quiet"]);
    assert!(log.contains("trained 2 now, 0 already finished"), "{log}");
    let after = results(&lab, "two");
    let new_hash = manifest_hash(&lab);
    assert_ne!(old_hash, new_hash);
    for (a, b) in before.iter().zip(&after) {
        assert_ne!(a.trial_id, b.trial_id, "same id for a different corpus");
        let record = TrialRecord::load(&trial_dir(&lab, "two", &b.trial_id)).unwrap();
        assert_eq!(record.provenance.corpus_hash, new_hash);
        assert!(!b.stale);
    }

    // Another sweep with the same trials on the same (new) corpus reuses them; one planned
    // before the change would not (its ids differ), as the first rerun showed.
    let copy = lab.sweep("copy", TWO);
    let log = run_ok(&lab, &["sweep", "run", copy.to_str().unwrap(), "--quiet"]);
    assert!(log.contains("trained 0 now, 2 already finished"), "{log}");

    // --reuse-stale keeps the finished results of an older corpus, marked.
    std::fs::remove_file(lab.path().join("src/core/extra.rs")).unwrap();
    std::fs::write(lab.path().join("src/core/extra2.rs"), "pub const X: u8 = 7;\n".repeat(80)).unwrap();
    let log = run_ok(&lab, &["sweep", "run", sweep, "--quiet", "--reuse-stale"]);
    assert!(log.contains("trained 0 now, 2 already finished"), "{log}");
    assert!(log.contains("kept a stale result"), "{log}");
    let rows = results(&lab, "two");
    assert!(rows.iter().all(|r| r.stale && r.status == Status::Done), "{rows:?}");
    let status = run_ok(&lab, &["sweep", "status", sweep]);
    assert!(status.contains("stale result"), "{status}");
}

#[test]
fn one_recipe_is_one_set_of_trials_however_its_path_is_spelled() {
    // The recipe enters a trial's id as the file it names, not as its path is spelled: the
    // trials of a sweep spelled another way are the ones already trained.
    let lab = Lab::new();
    let log = run_ok(&lab, &["sweep", "run", lab.sweep("plain", TWO).to_str().unwrap(), "--quiet"]);
    assert!(log.contains("trained 2 now, 0 already finished"), "{log}");
    let absolute = lab.path().join("recipe.toml").display().to_string();
    for (name, spelling) in [("dotted", "./recipe.toml"), ("absolute", absolute.as_str())] {
        let path = lab.sweep(name, TWO);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("corpus = \"recipe.toml\"", &format!("corpus = {spelling:?}"));
        std::fs::write(&path, text).unwrap();
        let log = run_ok(&lab, &["sweep", "run", path.to_str().unwrap(), "--quiet"]);
        assert!(log.contains("trained 0 now, 2 already finished"), "{spelling}: {log}");
        let ids = |sweep: &str| results(&lab, sweep).into_iter().map(|r| r.trial_id).collect::<Vec<_>>();
        assert_eq!(ids(name), ids("plain"), "{spelling}");
    }
}

#[test]
fn impossible_values_are_refused_before_anything_is_written() {
    let lab = Lab::new();
    // (body after the base settings, key, line of the key)
    let cases: &[(&str, &str, usize)] = &[
        ("lr = nan", "lr", 10),
        ("lr = inf", "lr", 10),
        ("lr = -inf", "lr", 10),
        ("tokens = nan", "tokens", 10),
        ("tokens = inf", "tokens", 10),
        ("[parameters]\nwarmup = { values = [nan] }", "warmup", 11),
        ("[parameters]\nwarmup = { values = [inf] }", "warmup", 11),
        ("tokens = 1e30", "tokens", 10),
        ("beta1 = 1.0", "beta1", 10),
        ("beta2 = 1", "beta2", 10),
        ("[parameters]\nlanguage = { values = [\"rust\", \"cobol\"] }", "language", 11),
    ];
    for (i, (line, key, at)) in cases.iter().enumerate() {
        let name = format!("bad{i}");
        let path = lab.sweep(&name, line);
        for verb in ["plan", "run"] {
            let out = lab.run(&["sweep", verb, path.to_str().unwrap()]);
            let msg = text(&out);
            assert_eq!(out.status.code(), Some(2), "{line} ({verb}) should exit 2: {msg}");
            assert!(
                msg.contains(&format!("{name}.toml:{at}: `{key}`")),
                "{line} ({verb}): expected file, line and key in: {msg}"
            );
        }
    }
    // A value in a list of values, and a whole grid, too.
    let path = lab.sweep("badlist", "[parameters]\nlr = { values = [1e-3, nan] }\n");
    let out = lab.run(&["sweep", "run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("badlist.toml:11: `lr`"), "{}", text(&out));
    assert!(!lab.path().join("runs").exists(), "nothing may be written for a refused sweep");

    // `--set` on a trial file takes the same checks.
    std::fs::write(
        lab.path().join("t.toml"),
        "language = \"rust\"\nmodel = \"d32-l1\"\nseq_len = 32\nbatch_size = 8\ntokens = 8192\n",
    )
    .unwrap();
    for set in ["lr=nan", "beta2=1.0", "tokens=1e30"] {
        let out = lab.run(&["train", "t.toml", "--set", set, "--quiet"]);
        assert_eq!(out.status.code(), Some(2), "--set {set}: {}", text(&out));
    }
    assert!(!lab.path().join("runs").exists());
}

#[test]
fn a_plan_longer_than_a_day_needs_yes() {
    let lab = Lab::new();
    let path = lab.sweep("huge", "[parameters]\nmodel = { values = [\"d512-l8\"] }\ntokens = { values = [1e12] }\n");
    let out = lab.run(&["sweep", "run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    assert!(!lab.path().join("runs").exists());
    let plan = run_ok(&lab, &["sweep", "plan", path.to_str().unwrap()]);
    assert!(plan.contains("--yes"), "{plan}");
}

#[test]
fn fit_table_refuses_bad_rows_or_skips_them_when_asked() {
    let lab = Lab::new();
    let mut csv = String::from("n,tokens,loss\n");
    for (i, n) in [1e5f64, 2e5, 4e5, 8e5].iter().enumerate() {
        for (j, d) in [1e6f64, 3e6].iter().enumerate() {
            csv += &format!("{n},{d},{}\n", 1.5 + 30.0 / n.powf(0.3) + 40.0 / d.powf(0.3) + 0.001 * (i + j) as f64);
        }
    }
    csv += "1e6,abc,2.0\n3e5,1e6,-1.0\n";
    std::fs::write(lab.path().join("t.csv"), &csv).unwrap();
    let out = lab.run(&["fit", "--table", "t.csv", "--n-col", "n", "--bootstrap", "20"]);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("t.csv: row 10: `tokens` = \"abc\"") && msg.contains("t.csv: row 11: `loss` = \"-1.0\""),
        "{msg}"
    );
    assert!(!lab.path().join("fits").exists(), "nothing written for a refused table");

    let out = lab.run(&["fit", "--table", "t.csv", "--n-col", "n", "--bootstrap", "20", "--skip-bad-rows"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("left out 2 row(s)"), "{}", text(&out));
    let fit: codescale_fit::FitFile =
        serde_json::from_slice(&std::fs::read(lab.path().join("fits/t.json")).unwrap()).unwrap();
    assert_eq!(fit.groups[0].n_points, 8);
}

#[test]
fn a_tables_repeated_rows_are_seeds_of_one_configuration() {
    let lab = Lab::new();
    // Two seeds 1 % apart; then, as cooldown branches of one trunk per size and seed, shifted
    // together.
    let (mut seeds, mut trunks) = (String::from("n,tokens,loss\n"), String::from("n,tokens,loss,trunk\n"));
    for n in [1e5f64, 2e5, 4e5, 8e5] {
        for d in [1e6f64, 2e6, 4e6] {
            for seed in [-1.0, 1.0] {
                let law = 1.5 + 30.0 / n.powf(0.3) + 40.0 / d.powf(0.3);
                seeds += &format!("{n},{d},{}\n", law * (1.0 + 0.01 * seed));
                trunks += &format!("{n},{d},{},{n}/{seed}\n", law + 0.02 * seed);
            }
        }
    }
    let fit = |name: &str, csv: &str| {
        std::fs::write(lab.path().join(format!("{name}.csv")), csv).unwrap();
        let out = lab.run(&["fit", "--table", &format!("{name}.csv"), "--n-col", "n", "--bootstrap", "20"]);
        assert!(out.status.success(), "{}", text(&out));
        let fit: codescale_fit::FitFile =
            serde_json::from_slice(&std::fs::read(lab.path().join(format!("fits/{name}.json"))).unwrap()).unwrap();
        fit.groups.into_iter().next().unwrap()
    };
    let g = fit("seeds", &seeds);
    assert_eq!(g.replicates.len(), 12, "every (N, D) measured twice");
    let a = g.additivity.expect("a crossed design is checked");
    // 24 rows, 12 configurations, 4 + 3 − 1 free levels: the seeds' spread is the noise, and the
    // additive surface misses nothing beyond it.
    assert_eq!((a.noise_df, a.lack_of_fit_df, a.trunks), (12, 6, 0));
    assert!((a.noise.unwrap() - 0.01 * 2f64.sqrt()).abs() < 1e-3 && !a.rejected(), "{a:?}");
    // Told the trunks, the check takes each as a block: the shift is no longer noise.
    let a = fit("trunks", &trunks).additivity.expect("a crossed design is checked");
    assert_eq!((a.noise_df, a.lack_of_fit_df, a.trunks), (8, 6, 8));
    assert!(a.noise.unwrap() < 1e-9 && a.misfit < 1e-9, "{a:?}");
}

/// Runs the sweep until its first trial has written a checkpoint, then kills it (SIGKILL).
fn kill_after_first_checkpoint(lab: &Lab, sweep: &str, name: &str) -> PathBuf {
    let mut child = common::bin().args(["sweep", "run", sweep, "--quiet"]).current_dir(lab.path()).spawn().unwrap();
    let trials = lab.path().join("runs").join(name).join("trials");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        assert!(std::time::Instant::now() < deadline, "no checkpoint appeared");
        assert!(child.try_wait().unwrap().is_none(), "the sweep finished before a checkpoint could be caught");
        let found = std::fs::read_dir(&trials)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("checkpoint/state.bin").exists());
        if let Some(dir) = found {
            child.kill().unwrap();
            child.wait().unwrap();
            return dir;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn a_truncated_checkpoint_means_training_again_not_failing() {
    let lab = Lab::new();
    let sweep = lab.sweep("ck", "tokens = 65536\n");
    let sweep = sweep.to_str().unwrap();
    let dir = kill_after_first_checkpoint(&lab, sweep, "ck");
    let state = dir.join("checkpoint/state.bin");
    let bytes = std::fs::read(&state).unwrap();
    std::fs::write(&state, &bytes[..bytes.len() / 2]).unwrap();

    let log = run_ok(&lab, &["sweep", "run", sweep, "--quiet"]);
    assert!(log.contains("trained 1 now"), "{log}");
    let record = TrialRecord::load(&dir).unwrap();
    assert_eq!(record.status, Status::Done);
    assert!(record.notes.iter().any(|n| n.contains("unreadable checkpoint")), "{:?}", record.notes);

    // And the result equals an uninterrupted run's.
    run_ok(&lab, &["sweep", "run", sweep, "--quiet", "--runs", "reference"]);
    let reference: Vec<ResultRow> =
        codescale_table::read_rows(&lab.path().join("reference/ck/results.parquet")).unwrap();
    assert_eq!(reference[0].val_loss.map(f64::to_bits), results(&lab, "ck")[0].val_loss.map(f64::to_bits));
}

#[test]
fn a_failure_that_can_go_away_is_retried_and_one_that_cannot_waits_for_retry_failed() {
    let lab = Lab::new();
    let sweep = lab.sweep("retry", TWO);
    let sweep = sweep.to_str().unwrap();
    run_ok(&lab, &["sweep", "run", sweep, "--quiet"]);
    let rows = results(&lab, "retry");
    // A failure recorded as it was before failures said whether they can go away (a truncated
    // checkpoint, say): retried.
    let mark_failed = |id: &str, retryable: Option<bool>| {
        let path = trial_dir(&lab, "retry", id).join("trial.json");
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        v["status"] = "failed".into();
        v["error"] = "checkpoint runs/retry/…/state.bin is truncated".into();
        if let Some(r) = retryable {
            v["retryable"] = r.into();
        }
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    };
    mark_failed(&rows[0].trial_id, None);
    mark_failed(&rows[1].trial_id, Some(false));
    let out = lab.run(&["sweep", "run", sweep, "--quiet"]);
    assert_eq!(out.status.code(), Some(1), "a permanent failure still fails the sweep: {}", text(&out));
    assert!(text(&out).contains("trained 1 now"), "the retryable failure is trained again: {}", text(&out));
    assert!(text(&out).contains("not retried unless --retry-failed"), "{}", text(&out));
    let out = lab.run(&["sweep", "run", sweep, "--quiet"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("trained 0 now"), "{}", text(&out));
    let log = run_ok(&lab, &["sweep", "run", sweep, "--quiet", "--retry-failed"]);
    assert!(log.contains("trained 1 now"), "{log}");
    let after = results(&lab, "retry");
    assert!(after.iter().all(|r| r.status == Status::Done));
    assert_eq!(
        rows.iter().map(|r| r.val_loss.map(f64::to_bits)).collect::<Vec<_>>(),
        after.iter().map(|r| r.val_loss.map(f64::to_bits)).collect::<Vec<_>>()
    );
}

#[test]
fn a_truncated_record_is_rebuilt_from_its_curve_or_retrained() {
    let lab = Lab::new();
    let sweep = lab.sweep("rec", TWO);
    let sweep = sweep.to_str().unwrap();
    run_ok(&lab, &["sweep", "run", sweep, "--quiet"]);
    let rows = results(&lab, "rec");
    let truncate = |id: &str| {
        let path = trial_dir(&lab, "rec", id).join("trial.json");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    };
    // One whose curve is complete, one whose curve is gone too.
    truncate(&rows[0].trial_id);
    truncate(&rows[1].trial_id);
    std::fs::remove_file(trial_dir(&lab, "rec", &rows[1].trial_id).join("curve.parquet")).unwrap();

    // Readers see the recovered records without failing on them.
    let status = run_ok(&lab, &["sweep", "status", sweep]);
    assert!(status.contains("1 done, 1 pending") && status.contains("trial.json was unreadable"), "{status}");
    run_ok(&lab, &["report", "runs/rec"]);
    let log = run_ok(&lab, &["sweep", "run", sweep, "--quiet"]);
    assert!(log.contains("trained 1 now, 1 already finished"), "{log}");
    assert!(log.contains("rebuilt from curve.parquet"), "{log}");
    let after = results(&lab, "rec");
    assert!(after.iter().all(|r| r.status == Status::Done));
    for (a, b) in rows.iter().zip(&after) {
        assert_eq!(a.val_loss.map(f64::to_bits), b.val_loss.map(f64::to_bits));
        assert_eq!((a.steps, a.flops.to_bits()), (b.steps, b.flops.to_bits()));
    }
    TrialRecord::load(&trial_dir(&lab, "rec", &rows[0].trial_id)).expect("the rebuilt record is saved");
}

#[test]
fn a_corrupted_shard_is_rebuilt_and_its_trial_retried() {
    let lab = Lab::new();
    let sweep = lab.sweep("shard", "tokens = 8192\n");
    let sweep = sweep.to_str().unwrap();
    run_ok(&lab, &["sweep", "run", sweep, "--quiet"]);
    let shard = lab.path().join("corpus/recipe-bytes/rust.train.bin");
    let good = std::fs::read(&shard).unwrap();
    let mut bad = good.clone();
    bad[100] ^= 0xff;
    let damage = || std::fs::write(&shard, &bad).unwrap();

    // `corpus build` without --force sees the damage and rebuilds.
    damage();
    let log = run_ok(&lab, &["corpus", "build", "recipe.toml"]);
    assert!(log.contains("does not match its manifest hash"), "{log}");
    assert_eq!(std::fs::read(&shard).unwrap(), good);

    // A trial that failed reading the damaged shard (as the trainer records it) is retried by
    // the next run, which repairs the corpus first.
    damage();
    let id = &results(&lab, "shard")[0].trial_id;
    let path = trial_dir(&lab, "shard", id).join("trial.json");
    let mut record = TrialRecord::load(&trial_dir(&lab, "shard", id)).unwrap();
    record.fail(format!("{} does not match its manifest hash; rebuild the corpus", shard.display()), true);
    std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    let log = run_ok(&lab, &["sweep", "run", sweep, "--quiet"]);
    assert!(log.contains("trained 1 now"), "{log}");
    assert_eq!(results(&lab, "shard")[0].status, Status::Done);
    assert_eq!(std::fs::read(&shard).unwrap(), good);
}

#[test]
fn temporary_files_of_killed_writers_are_cleaned_up() {
    let lab = Lab::new();
    let sweep = lab.sweep("tmp", TWO);
    let sweep = sweep.to_str().unwrap();
    run_ok(&lab, &["sweep", "run", sweep, "--quiet"]);
    let id = &results(&lab, "tmp")[0].trial_id;
    let leftover = trial_dir(&lab, "tmp", id).join(format!(".trial.json.{}.tmp", u32::MAX - 1));
    std::fs::write(&leftover, b"{\"half").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
    std::fs::File::options().write(true).open(&leftover).unwrap().set_modified(old).unwrap();
    let log = run_ok(&lab, &["sweep", "run", sweep, "--quiet"]);
    assert!(log.contains("removed 1 temporary file"), "{log}");
    assert!(!leftover.exists());
}

/// The fit a report shows is the fit of the results as they are now.
#[test]
fn a_report_after_the_sweep_grew_shows_the_new_fit() {
    let lab = Lab::new();
    let grid = |tokens: &str| {
        format!("[parameters]\nmodel = {{ values = [\"d32-l1\", \"d48-l1\", \"d64-l1\"] }}\ntokens = {{ values = [{tokens}] }}\n")
    };
    let sweep = lab.sweep("grow", &grid("8192, 16384"));
    run_ok(&lab, &["run", sweep.to_str().unwrap(), "--quiet"]);
    let fit = |lab: &Lab| -> codescale_fit::FitFile {
        serde_json::from_slice(&std::fs::read(lab.path().join("fits/grow.json")).unwrap()).unwrap()
    };
    assert_eq!(fit(&lab).groups[0].n_points, 6);

    lab.sweep("grow", &grid("8192, 16384, 24576"));
    run_ok(&lab, &["sweep", "run", sweep.to_str().unwrap(), "--quiet"]);
    let log = run_ok(&lab, &["report", "runs/grow"]);
    assert_eq!(fit(&lab).groups[0].n_points, 9, "the report refitted the grown sweep: {log}");
    let html = std::fs::read_to_string(lab.path().join("reports/grow/index.html")).unwrap();
    assert!(html.contains("made from other results; fitted again"), "the report says it refitted");

    // A fit made with other options is not the sweep's fit: the report refits and says so, and a
    // report of the same results with the same options reuses its own.
    run_ok(&lab, &["fit", "runs/grow", "--bootstrap", "10", "--law", "kaplan", "--quiet"]);
    assert!(fit(&lab).groups[0].law.as_ref().unwrap().bootstrap_resamples <= 10);
    let log = run_ok(&lab, &["report", "runs/grow"]);
    let refitted = fit(&lab);
    assert!(
        refitted.groups[0].law.as_ref().unwrap().bootstrap_resamples > 10,
        "the report showed a fit made with --bootstrap 10: {log}"
    );
    assert_eq!(refitted.fit_key, codescale_fit::FitOptions { n_col: "n_params".into(), ..Default::default() }.key());
    run_ok(&lab, &["report", "runs/grow"]);
    let html = std::fs::read_to_string(lab.path().join("reports/grow/index.html")).unwrap();
    assert!(!html.contains("fitted again"), "the report's own fit is reused");

    // Paths follow the runs folder, wherever the command runs from.
    let elsewhere = lab.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = common::bin()
        .args(["report", lab.path().join("runs/grow").to_str().unwrap()])
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!elsewhere.join("fits").exists() && !elsewhere.join("reports").exists());
}

#[test]
fn a_moe_only_sweep_is_one_group_in_the_fit_and_the_report() {
    let lab = Lab::new();
    let body = "arch = \"moe\"\nn_experts = 2\ntop_k = 1\n[parameters]\nmodel = { values = [\"d32-l1\", \"d48-l1\", \"d64-l1\"] }\ntokens = { values = [8192, 16384] }\n";
    let sweep = lab.sweep("moe", body);
    run_ok(&lab, &["run", sweep.to_str().unwrap(), "--quiet"]);
    let fit: codescale_fit::FitFile =
        serde_json::from_slice(&std::fs::read(lab.path().join("fits/moe.json")).unwrap()).unwrap();
    assert_eq!(fit.groups.iter().map(|g| g.group.as_str()).collect::<Vec<_>>(), ["rust/moe"]);
    let html = std::fs::read_to_string(lab.path().join("reports/moe/index.html")).unwrap();
    // The table of fitted laws has one row per group (HTML escapes the slash).
    assert!(html.contains("<td><strong>rust&#x2f;moe</strong>"), "the MoE group is in the table of laws");
    assert!(
        !html.contains("<td><strong>rust</strong>"),
        "a second group named after the language alone appears in the report"
    );
}
