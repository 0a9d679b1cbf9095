//! The runs folder's index (`runs/<sweep>/index.json`): built from the records, checked against
//! them on every read, rebuilt when deleted or corrupt, never trusted where it disagrees with a
//! record; and what it serves: a trial finished in another sweep is copied, not trained again.

use std::path::{Path, PathBuf};

use codescale_core::{
    CorpusKey, DataSpec, ModelSpec, OptimizerSpec, ScheduleSpec, Status, TrialConfig, TrialRecord, TrialSpec,
};
use codescale_sweep::index::{RunsIndex, INDEX_FILE};
use codescale_sweep::runs::{Plan, SweepDir};
use codescale_sweep::triage::{triage, Triage};
use codescale_sweep::RunConfig;

fn key(manifest: &str) -> CorpusKey {
    CorpusKey { manifest: manifest.repeat(64 / manifest.len()), tokenizer: "t".repeat(64) }
}

fn config(model: &str, tokens: f64, corpus: &str) -> TrialConfig {
    TrialSpec {
        data: DataSpec { language: Some("go".into()), seq_len: Some(16), ..Default::default() },
        model: ModelSpec { name: Some(model.into()), ..Default::default() },
        optimizer: OptimizerSpec { batch_size: Some(4), ..Default::default() },
        schedule: ScheduleSpec { tokens: Some(tokens), ..Default::default() },
        ..Default::default()
    }
    .resolve()
    .unwrap()
    .bound_to(key(corpus))
}

/// Saves `config`'s record under `runs/<sweep>` with `status`, and returns its folder.
fn record(runs: &Path, sweep: &str, config: &TrialConfig, status: Status) -> PathBuf {
    let dir = SweepDir::new(runs, sweep).trial_dir(&config.trial_id());
    let mut r = TrialRecord::pending(config.clone());
    r.status = status;
    if status == Status::Done {
        r.metrics.val_loss = Some(2.5);
        r.metrics.tokens_per_s = 1000.0;
        r.provenance.threads = 2;
        r.provenance.corpus_hash = config.corpus_key.as_ref().unwrap().manifest.clone();
        r.provenance.tokenizer_hash = config.corpus_key.as_ref().unwrap().tokenizer.clone();
    }
    std::fs::create_dir_all(&dir).unwrap();
    r.save(&dir).unwrap();
    dir
}

fn write_plan(runs: &Path, sweep: &str, trials: &[TrialConfig]) -> (SweepDir, Plan) {
    let dir = SweepDir::new(runs, sweep);
    std::fs::create_dir_all(&dir.path).unwrap();
    let plan = Plan {
        sweep: sweep.into(),
        trials: trials.to_vec(),
        targets: Vec::new(),
        branches: Vec::new(),
        early_stop: None,
    };
    dir.write_plan(&plan).unwrap();
    (dir, plan)
}

#[test]
fn the_index_is_built_once_then_only_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path();
    let a = [config("d32-l1", 1e4, "a"), config("d32-l1", 2e4, "a"), config("d64-l1", 1e4, "a")];
    for c in &a {
        record(runs, "one", c, Status::Done);
    }
    record(runs, "two", &a[0], Status::Done);
    record(runs, "two", &config("d64-l1", 2e4, "a"), Status::Failed);
    std::fs::create_dir_all(runs.join("_trunks/abc")).unwrap();

    let index = RunsIndex::refresh(runs);
    assert_eq!((index.len(), index.reread), (5, 5), "every record read once");
    assert!(runs.join("one").join(INDEX_FILE).exists() && runs.join("two").join(INDEX_FILE).exists());
    assert!(!runs.join("_trunks").join(INDEX_FILE).exists(), "trunks are no sweep");
    assert_eq!(index.flops_per_s_per_thread().count(), 4, "the four finished trials' throughput");

    let again = RunsIndex::refresh(runs);
    assert_eq!((again.len(), again.reread), (5, 0), "an index that matches its records is only checked");
    assert!(again.notes.is_empty());
    let id = a[0].trial_id();
    assert_eq!(again.done_elsewhere(&id, &runs.join("two")), Some(runs.join("one/trials").join(&id)));
    assert_eq!(again.done_elsewhere(&id, &runs.join("one")), Some(runs.join("two/trials").join(&id)));
    assert_eq!(
        again.done_elsewhere(&config("d64-l1", 2e4, "a").trial_id(), &runs.join("one")),
        None,
        "failed is not done"
    );
}

#[test]
fn a_deleted_or_corrupt_index_is_rebuilt_from_the_records() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path();
    let c = config("d32-l1", 1e4, "a");
    record(runs, "one", &c, Status::Done);
    record(runs, "one", &config("d32-l1", 2e4, "a"), Status::Done);
    RunsIndex::refresh(runs);
    let file = runs.join("one").join(INDEX_FILE);

    std::fs::remove_file(&file).unwrap();
    let index = RunsIndex::refresh(runs);
    assert_eq!(index.reread, 2);
    assert!(index.notes.is_empty(), "a missing index is simply built");
    assert!(file.exists());
    assert!(index.done_elsewhere(&c.trial_id(), &runs.join("two")).is_some());

    for garbage in [
        &b"{\"format\": 1, \"trials\": {\"x\": "[..],
        b"not json at all",
        b"{\"format\": 1, \"trials\": {\"x\": {\"status\": \"done\"}}}",
        &[0xff, 0xfe, 0x00][..],
    ] {
        std::fs::write(&file, garbage).unwrap();
        let index = RunsIndex::refresh(runs);
        assert_eq!(index.reread, 2, "{}", String::from_utf8_lossy(garbage));
        assert_eq!(index.notes.len(), 1);
        assert!(
            index.notes[0].contains(&file.display().to_string())
                && index.notes[0].contains("rebuilt from the trial records"),
            "{}",
            index.notes[0]
        );
        assert!(index.done_elsewhere(&c.trial_id(), &runs.join("two")).is_some(), "nothing lost");
        let healed = RunsIndex::refresh(runs);
        assert_eq!((healed.reread, healed.notes.len()), (0, 0), "the rebuilt index was written back");
    }

    // An index of another format (a newer lab's) is rebuilt quietly.
    std::fs::write(&file, "{\"format\": 99, \"trials\": {}}").unwrap();
    let index = RunsIndex::refresh(runs);
    assert_eq!((index.reread, index.notes.len()), (2, 0));
}

#[test]
fn a_stale_index_is_noticed_and_never_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path();
    let c = config("d32-l1", 1e4, "a");
    let gone = config("d64-l1", 1e4, "a");
    let trial = record(runs, "one", &c, Status::Running);
    let gone_dir = record(runs, "one", &gone, Status::Done);
    let index = RunsIndex::refresh(runs);
    assert_eq!(index.done_elsewhere(&c.trial_id(), &runs.join("two")), None, "still running");

    // It finishes (an atomic rewrite of its record, as the trainer does) and another trial's
    // folder is removed: the index on disk no longer says so, the refreshed one does.
    record(runs, "one", &c, Status::Done);
    std::fs::remove_dir_all(&gone_dir).unwrap();
    let index = RunsIndex::refresh(runs);
    assert_eq!(index.reread, 1, "only the changed record is read again");
    assert_eq!(index.len(), 1, "the removed folder left the index");
    assert_eq!(index.done_elsewhere(&c.trial_id(), &runs.join("two")), Some(trial.clone()));
    assert_eq!(index.done_elsewhere(&gone.trial_id(), &runs.join("two")), None);

    // A record rewritten in place (same inode; a hand edit) changes its change time.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut r = TrialRecord::load(&trial).unwrap();
    r.status = Status::Failed;
    std::fs::write(trial.join("trial.json"), serde_json::to_vec_pretty(&r).unwrap()).unwrap();
    let index = RunsIndex::refresh(runs);
    assert_eq!(index.reread, 1);
    assert_eq!(index.done_elsewhere(&c.trial_id(), &runs.join("two")), None, "failed now");

    // An index that claims more than the record says (edited, or from a clock that went
    // back) only yields candidates: the record has the last word.
    let file = runs.join("one").join(INDEX_FILE);
    let forged = std::fs::read_to_string(&file)
        .unwrap()
        .replace("\"status\":\"failed\"", "\"status\":\"done\",\"config_id\":\"x\"");
    assert!(forged.contains("\"status\":\"done\""), "{forged}");
    std::fs::write(&file, forged).unwrap();
    let index = RunsIndex::refresh(runs);
    assert_eq!(index.reread, 0, "its stamp matches, so the entry is kept");
    assert_eq!(index.done_elsewhere(&c.trial_id(), &runs.join("two")), None, "but the record says failed");
}

#[test]
fn a_trial_done_in_another_sweep_is_copied_not_queued_even_with_a_corrupt_index() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let shared = config("d32-l1", 1e4, "a");
    let own = config("d64-l1", 1e4, "a");
    let finished = record(&runs, "first", &shared, Status::Done);
    RunsIndex::refresh(&runs);
    std::fs::write(runs.join("first").join(INDEX_FILE), "{\"format\": 1, \"trials\": [").unwrap();

    let (dir, plan) = write_plan(&runs, "second", &[own.clone(), shared.clone()]);
    let cfg = RunConfig { runs_root: runs.clone(), quiet: true, ..Default::default() };
    let Triage { queue, skipped, notes } = triage(&dir, &plan, &cfg).unwrap();
    assert_eq!(queue, [0], "only the trial no sweep has finished is left to train");
    assert_eq!(skipped, 1);
    assert!(notes.iter().any(|n| n.contains("first/index.json") && n.contains("rebuilt")), "{notes:?}");
    let copy = TrialRecord::load(&dir.trial_dir(&shared.trial_id())).unwrap();
    assert_eq!(copy, TrialRecord::load(&finished).unwrap());

    // Again: the copy is this sweep's own now, and nothing is queued twice.
    let again = triage(&dir, &plan, &cfg).unwrap();
    assert_eq!((again.queue, again.skipped), (vec![0], 1));
}

#[test]
fn reuse_stale_finds_the_same_configuration_on_another_corpus_through_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let old = config("d32-l1", 1e4, "a");
    let new = config("d32-l1", 1e4, "b");
    assert_ne!(old.trial_id(), new.trial_id());
    record(&runs, "first", &old, Status::Done);
    record(&runs, "first", &config("d64-l1", 1e4, "a"), Status::Done);

    let index = RunsIndex::refresh(&runs);
    let (from, why) = index.stale(&new).unwrap();
    assert_eq!(from, runs.join("first/trials").join(old.trial_id()));
    assert!(why.contains("trained on corpus aaaaaaaaaaaa (now bbbbbbbbbbbb)"), "{why}");

    let (dir, plan) = write_plan(&runs, "second", std::slice::from_ref(&new));
    let cfg = RunConfig { runs_root: runs.clone(), quiet: true, reuse_stale: true, ..Default::default() };
    let t = triage(&dir, &plan, &cfg).unwrap();
    assert_eq!((t.queue.len(), t.skipped), (0, 1));
    let kept = TrialRecord::load(&dir.trial_dir(&new.trial_id())).unwrap();
    assert_eq!((kept.id, kept.stale.is_some()), (new.trial_id(), true));
}

#[test]
fn the_estimate_reads_throughput_from_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path();
    assert_eq!(codescale_sweep::estimate::flops_per_s_per_thread(runs).1, "reference machine");
    let c = config("d32-l1", 1e4, "a");
    record(runs, "one", &c, Status::Done);
    let (rate, from) = codescale_sweep::estimate::flops_per_s_per_thread(runs);
    assert_eq!(from, "finished trials");
    assert_eq!(rate, c.params().flops_per_token_with_head() * 1000.0 / 2.0);
}
