//! Fine-tuning end to end: a sweep pretrains its `[pretrain.*]` bases, then fine-tunes each on
//! instruction pairs (`sft = "functions"`) from the base's final weights (`init_from`), and a
//! fine-tuned trial replays from its base exactly.

mod common;

use std::path::Path;

use codescale_core::{CurvePoint, ResultRow};
use common::{text, Lab};

const SWEEP: &str = r#"name = "ft"
corpus = "recipe.toml"

[pretrain.dense]
language = "rust"
model = "d32-l1"
seq_len = 64
batch_size = 8
tokens = 32768
lr = 3e-3
eval_tokens = 1024

[pretrain.moe]
language = "rust"
model = "d32-l1"
arch = "moe"
n_experts = 4
top_k = 1
seq_len = 64
batch_size = 8
tokens = 32768
lr = 3e-3
eval_tokens = 1024

[base]
language = "rust"
model = "d32-l1"
sft = "functions"
seq_len = 128
batch_size = 8
tokens = 8192
lr = 1e-3
eval_tokens = 4096
task_examples = 16

[parameters]
start = { values = [{ init_from = "dense" }, { init_from = "moe", arch = "moe", n_experts = 4, top_k = 1 }, {}] }
"#;

fn results(lab: &Lab) -> Vec<ResultRow> {
    codescale_table::read_rows(&lab.path().join("runs/ft/results.parquet")).unwrap()
}

fn curve(lab: &Lab, id: &str) -> Vec<CurvePoint> {
    codescale_table::read_rows(&lab.path().join("runs/ft/trials").join(id).join("curve.parquet")).unwrap()
}

#[test]
fn a_sweep_fine_tunes_its_bases_on_instruction_pairs_and_a_fine_tuned_trial_replays() {
    let lab = Lab::new();
    std::fs::write(lab.path().join("ft.toml"), SWEEP).unwrap();
    let out = lab.run(&["sweep", "run", "ft.toml", "--quiet", "--jobs", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows = results(&lab);
    assert_eq!(rows.len(), 5, "two bases, two fine-tunings of them and one from scratch");
    assert!(
        rows.iter().all(|r| r.status.as_str() == "done"),
        "{:?}",
        rows.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let base = |arch: &str| rows.iter().find(|r| r.sft.is_empty() && r.arch.as_str() == arch).unwrap();
    let tuned = |arch: &str| rows.iter().find(|r| !r.init_from.is_empty() && r.arch.as_str() == arch).unwrap();
    let scratch = rows.iter().find(|r| r.sft == "functions" && r.init_from.is_empty()).unwrap();
    for arch in ["dense", "moe"] {
        let (base, tuned) = (base(arch), tuned(arch));
        assert_eq!(tuned.init_from, base.trial_id, "{arch}: the base's id is in the fine-tuned trial's config");
        assert!(lab.path().join("runs/ft/trials").join(&base.trial_id).join("weights.bin").is_file());
        assert!(base.val_completion_loss.is_none(), "pretraining is not scored on pairs");
        let loss = tuned.val_completion_loss.expect("a fine-tuned trial's completion loss");
        assert!(loss.is_finite() && tuned.val_completion_loss_se.unwrap() > 0.0, "{arch}: {loss}");
        assert!(tuned.task_exact_match.is_some(), "the task metric scores fine-tuned trials too");
        // It starts where its base ended, far below an untrained model (ln 257 ≈ 5.5 nats).
        let (first_tuned, first_scratch) =
            (curve(&lab, &tuned.trial_id)[0].train_loss, curve(&lab, &scratch.trial_id)[0].train_loss);
        assert!(
            first_tuned < first_scratch - 1.0,
            "{arch}: first step {first_tuned} against {first_scratch} from scratch"
        );
        assert!(
            tuned.val_completion_loss.unwrap() < scratch.val_completion_loss.unwrap(),
            "{arch}: pretraining helps the completions"
        );
    }

    // A second run trains nothing: every trial, bases included, is done.
    let again = lab.run(&["sweep", "run", "ft.toml", "--quiet"]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(
        results(&lab).iter().map(|r| r.steps).collect::<Vec<_>>(),
        rows.iter().map(|r| r.steps).collect::<Vec<_>>()
    );

    let dir = lab.path().join("runs/ft/trials").join(&tuned("dense").trial_id);
    let replay = lab.run(&["replay", dir.to_str().unwrap()]);
    assert!(replay.status.success() && text(&replay).contains("identical"), "{}", text(&replay));
}

/// What `init_from` may not name: exit 2 naming the file, line and key, nothing written.
#[test]
fn a_base_that_is_missing_unfinished_or_of_another_shape_is_refused() {
    let lab = Lab::new();
    let cases = [
        ("nothing", "init_from = \"nowhere\"\n", "is no `[pretrain.*]` table"),
        (
            "shape",
            "init_from = \"small\"\n[pretrain.small]\nlanguage = \"rust\"\nmodel = \"d16-l1\"\nseq_len = 32\nbatch_size = 8\ntokens = 2560\n",
            "its model is dense d16-l1",
        ),
        (
            "tokenizer",
            "init_from = \"other\"\n[pretrain.other]\nlanguage = \"rust\"\nmodel = \"d32-l1\"\ntokenizer = \"bpe:512\"\nseq_len = 32\nbatch_size = 8\ntokens = 2560\n",
            "its tokenizer is `bpe:512`",
        ),
    ];
    for (name, body, says) in cases {
        let path = lab.sweep(name, &format!("tokens = 2560\nsft = \"functions\"\n{body}"));
        let out = lab.run(&["sweep", "run", path.to_str().unwrap(), "--quiet"]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {said}");
        assert!(
            said.contains(&format!("{name}.toml:")) && said.contains("`init_from`") && said.contains(says),
            "{name}: {said}"
        );
        assert!(!lab.path().join("runs").join(name).exists(), "{name}: nothing written");
    }

    // `codescale train`: a folder whose trial has not finished.
    let unfinished = lab.path().join("unfinished");
    std::fs::create_dir_all(&unfinished).unwrap();
    let trial = "language = \"rust\"\nmodel = \"d32-l1\"\nseq_len = 32\nbatch_size = 8\ntokens = 2560\n";
    std::fs::write(lab.path().join("t.toml"), format!("corpus = \"recipe.toml\"\n{trial}")).unwrap();
    let stopped =
        lab.run(&["train", "t.toml", "--out", unfinished.to_str().unwrap(), "--stop-after-steps", "2", "--quiet"]);
    assert!(stopped.status.success(), "{}", text(&stopped));
    std::fs::write(
        lab.path().join("ft.toml"),
        format!(
            "corpus = \"recipe.toml\"\n{trial}sft = \"functions\"\ninit_from = {:?}\n",
            unfinished.display().to_string()
        ),
    )
    .unwrap();
    let out = lab.run(&["train", "ft.toml", "--quiet"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("ft.toml: `init_from`") && said.contains("not done"), "{said}");
    assert!(!Path::new(&lab.path().join("runs/trials")).exists(), "nothing written: {said}");
}
