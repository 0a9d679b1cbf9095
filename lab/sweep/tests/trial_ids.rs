//! Every bundled sweep plans the trials it always planned: the config id and WSD trunk id of
//! each fine-tuning base, ladder trial and target, in plan order, against
//! `golden/trial_ids.txt`.
//!
//! A trial's id is the hash of its resolved config, so a change to how configs are parsed,
//! resolved or serialized that moves an id would orphan every finished result of that trial
//! (the lab would train it again and never find the old one). A change that must move ids bumps
//! `NUMERICS_VERSION` or says what it invalidates; then, and only then, this file is rewritten
//! (the failure message prints the lines to paste).

use std::path::{Path, PathBuf};

use codescale_sweep::bases::plan_pretrain;
use codescale_sweep::plan::{plan, plan_targets};
use codescale_sweep::spec::Sweep;

fn bundled_sweeps() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sweeps");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("toml" | "yaml" | "yml")))
        .collect();
    files.sort();
    files
}

fn planned_ids(path: &Path) -> Vec<String> {
    let sweep = Sweep::load(path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    let ladder = plan(&sweep).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    let targets = plan_targets(&sweep, &ladder).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    let bases = plan_pretrain(&sweep).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    let name = path.file_name().unwrap().to_string_lossy();
    let line = |role: &str, c: &codescale_core::TrialConfig| {
        format!("{name} {role} {} {}", c.config_id(), c.trunk_id().unwrap_or_else(|| "-".into()))
    };
    // Fine-tuning trials as planned before `init_from` is bound to their base's id (a `[pretrain]`
    // name): the base's id, and so theirs, also depends on the corpus.
    let bases = bases.iter().map(|(_, c)| line("pretrain", c));
    bases.chain(ladder.iter().map(|c| line("ladder", c))).chain(targets.iter().map(|c| line("target", c))).collect()
}

#[test]
fn every_bundled_sweep_plans_the_trial_ids_it_always_planned() {
    let sweeps = bundled_sweeps();
    let got: Vec<String> = sweeps.iter().flat_map(|p| planned_ids(p)).collect();
    let golden_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/trial_ids.txt");
    let golden = std::fs::read_to_string(&golden_path).unwrap_or_else(|e| panic!("{}: {e}", golden_path.display()));
    let expected: Vec<&str> = golden.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    let mismatches: Vec<String> = (0..got.len().max(expected.len()))
        .filter(|&i| got.get(i).map(String::as_str) != expected.get(i).copied())
        .map(|i| format!("line {i}: expected {:?}, planned {:?}", expected.get(i), got.get(i)))
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} planned ids moved ({} sweeps):\n{}\n\nthe ids planned now:\n{}",
        mismatches.len(),
        got.len(),
        sweeps.len(),
        mismatches.iter().take(20).cloned().collect::<Vec<_>>().join("\n"),
        got.join("\n")
    );
}
