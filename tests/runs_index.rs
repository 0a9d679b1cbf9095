//! The runs folder's index end to end (issue 35 item 7): a trial another sweep finished is
//! copied, never trained again, whether the index is fresh, stale, deleted or corrupt; a
//! corrupt index is named and rebuilt from the records, and nothing is lost.

mod common;

use codescale_core::{Status, TrialRecord};
use common::{text, Lab};

/// (trained now, already finished) from `sweep run`'s summary line.
fn trained(log: &str) -> (usize, usize) {
    let line = log.lines().find(|l| l.contains(" now, ")).unwrap_or_else(|| panic!("no summary line in {log}"));
    let after = |word: &str| {
        line.split(word).nth(1).and_then(|s| s.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap()
    };
    (after("trained "), after("now, "))
}

#[test]
fn a_trial_another_sweep_finished_is_copied_whatever_the_index_says() {
    let lab = Lab::new();
    let first = lab.sweep("first", "tokens = 8192\n[parameters]\nmodel = { values = [\"d32-l1\", \"d48-l1\"] }\n");
    let out = lab.run(&["sweep", "run", first.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(trained(&text(&out)), (2, 0));
    let first_trials = lab.path().join("runs/first/trials");
    let ids: Vec<String> = std::fs::read_dir(&first_trials)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids.len(), 2);

    // A plan refreshes the index; then the first sweep's is corrupted.
    let second =
        lab.sweep("second", "tokens = 8192\n[parameters]\nmodel = { values = [\"d32-l1\", \"d48-l1\", \"d64-l1\"] }\n");
    let plan = lab.run(&["sweep", "plan", second.to_str().unwrap()]);
    assert!(plan.status.success(), "{}", text(&plan));
    let index = lab.path().join("runs/first/index.json");
    assert!(index.exists(), "sweep plan wrote the index");
    std::fs::write(&index, "{\"format\": 1, \"trials\": {\"").unwrap();

    let out = lab.run(&["sweep", "run", second.to_str().unwrap(), "--quiet"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert_eq!(trained(&log), (1, 2), "the two finished trials are copied, only the new one trains: {log}");
    assert!(
        log.contains("runs/first/index.json was unreadable") && log.contains("rebuilt from the trial records"),
        "{log}"
    );
    for id in &ids {
        let original = TrialRecord::load(&first_trials.join(id)).unwrap();
        let copy = TrialRecord::load(&lab.path().join("runs/second/trials").join(id)).unwrap();
        assert_eq!(copy, original, "trial {id} was copied as it was, not trained again");
        assert_eq!(copy.status, Status::Done);
        let curve = |dir: &std::path::Path| std::fs::read(dir.join(id).join("curve.parquet")).unwrap();
        assert_eq!(curve(&lab.path().join("runs/second/trials")), curve(&first_trials));
    }
    let rebuilt: serde_json::Value = serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
    assert_eq!(
        rebuilt["trials"].as_object().unwrap().len(),
        2,
        "the corrupt index was rebuilt from the records: {rebuilt}"
    );

    // Deleted indexes and a third sweep over the same trials: still nothing trained twice, and
    // a plan's estimate still comes from the finished trials.
    std::fs::remove_file(&index).unwrap();
    let _ = std::fs::remove_file(lab.path().join("runs/second/index.json"));
    let third = lab.sweep("third", "tokens = 8192\n[parameters]\nmodel = { values = [\"d48-l1\", \"d64-l1\"] }\n");
    let plan = lab.run(&["sweep", "plan", third.to_str().unwrap()]);
    assert!(text(&plan).contains("throughput from finished trials"), "{}", text(&plan));
    let out = lab.run(&["sweep", "run", third.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(trained(&text(&out)), (0, 2), "{}", text(&out));
}
