//! codescale among a researcher's tools: its files read by pyarrow, TensorBoard and the
//! notebooks (executed by Jupyter), sweep files in W&B's dialect, shell completions, and output
//! piped into `head`. The Python side comes from the virtual environment `scripts/setup` makes.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use codescale_core::CurvePoint;
use common::{bin, python, repo, run_python, text, Lab};
use serde_json::Value;

const TWO_LANGUAGES: &str = r#"name = "two"
validation_fraction = 0.1
[languages.rust]
sources = [{ dir = "src/core", include = ["**/*.rs"] }, { dir = "src/sweep", include = ["**/*.rs"] }]
[languages.rust2]
sources = [{ dir = "src/fit", include = ["**/*.rs"] }, { dir = "src/train", include = ["**/*.rs"] }]
"#;

const BASE: &str = "corpus = \"two.toml\"\n[base]\nseq_len = 32\neval_tokens = 1024\nwarmup = 0.1\neval_interval = 4\n";

/// Two finished sweeps (trained, fitted, reported) that the tests here share: `ladder`, two
/// languages × three models × three budgets, whose laws can be fitted; `hyper`, learning rate ×
/// batch size at one model and budget.
fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        let lab = Lab::shared("toolbox");
        std::fs::write(lab.path().join("two.toml"), TWO_LANGUAGES).unwrap();
        let ladder = format!("name = \"ladder\"\n{BASE}batch_size = 8\n[parameters]\nlanguage = {{ values = [\"rust\", \"rust2\"] }}\nmodel = {{ values = [\"d32-l1\", \"d64-l1\", \"d64-l2\"] }}\ntokens = {{ values = [8192, 16384, 32768] }}\n");
        let hyper = format!("name = \"hyper\"\n{BASE}language = \"rust\"\nmodel = \"d32-l1\"\ntokens = 16384\n[parameters]\nlr = {{ values = [1e-3, 3e-3, 1e-2] }}\nbatch_size = {{ values = [4, 8] }}\n");
        for (name, body) in [("ladder", ladder), ("hyper", hyper)] {
            std::fs::write(lab.path().join(format!("{name}.toml")), body).unwrap();
            let out = lab.run(&["run", &format!("{name}.toml"), "--quiet"]);
            assert!(out.status.success(), "{}", text(&out));
        }
        lab
    })
}

#[test]
fn pyarrow_reads_trial_ids_models_and_plain_strings() {
    let lab = lab();
    let program = r#"
import json, pathlib, sys
import pyarrow.parquet as pq
runs = pathlib.Path(sys.argv[1])
out = {}
for f in [runs / 'results.parquet', *sorted(runs.glob('trials/*/curve.parquet'))]:
    t = pq.read_table(f)
    out[str(f.relative_to(runs))] = {
        'types': {field.name: str(field.type) for field in t.schema},
        'trial_ids': sorted(set(t.column('trial_id').to_pylist())),
        'models': sorted(set(t.column('model').to_pylist())) if 'model' in t.column_names else None,
    }
print(json.dumps(out))
"#;
    let files: BTreeMap<String, Value> =
        serde_json::from_str(&run_python(lab.path(), program, &["runs/ladder"])).unwrap();
    assert_eq!(files.len(), 1 + 18, "results and 18 curves: {:?}", files.keys());
    for (file, info) in &files {
        for (column, ty) in info["types"].as_object().unwrap() {
            assert!(
                !ty.as_str().unwrap().contains("view"),
                "{file}: `{column}` is {ty}, which older readers cannot read"
            );
        }
        let id_type = info["types"]["trial_id"].as_str().unwrap();
        assert!(["string", "large_string"].contains(&id_type), "{file}: trial_id is {id_type}");
        if let Some(id) = file.strip_prefix("trials/").and_then(|f| f.strip_suffix("/curve.parquet")) {
            assert_eq!(info["trial_ids"], serde_json::json!([id]), "{file}: every row names its own trial");
        }
    }
    assert_eq!(files["results.parquet"]["models"], serde_json::json!(["d32-l1", "d64-l1", "d64-l2"]));
    assert_eq!(files["results.parquet"]["types"]["model"], "large_string");
}

#[test]
fn tensorboard_reads_every_trials_curve_back() {
    let lab = lab();
    let out = lab.run(&["export", "runs/hyper", "--format", "tensorboard", "--out", "tb"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("6 runs in tb/tensorboard"), "{}", text(&out));
    let program = r#"
import json, pathlib, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
out = {}
for run in sorted(p for p in pathlib.Path(sys.argv[1]).iterdir() if p.is_dir()):
    events = EventAccumulator(str(run), size_guidance={'scalars': 0})
    events.Reload()
    out[run.name] = {tag: [[e.step, e.value] for e in events.Scalars(tag)] for tag in events.Tags()['scalars']}
print(json.dumps(out))
"#;
    let runs: BTreeMap<String, BTreeMap<String, Vec<(usize, f64)>>> =
        serde_json::from_str(&run_python(lab.path(), program, &["tb/tensorboard"])).unwrap();
    assert_eq!(runs.len(), 6);
    for (run, scalars) in &runs {
        let id = run.rsplit('-').next().unwrap();
        assert!(run.starts_with("rust-d32-l1-"), "{run}");
        let curve: Vec<CurvePoint> =
            codescale_table::read_rows(&lab.path().join("runs/hyper/trials").join(id).join("curve.parquet")).unwrap();
        let expect = |tag: &str, pick: fn(&CurvePoint) -> Option<f64>| {
            let want: Vec<(usize, f64)> = curve.iter().filter_map(|p| pick(p).map(|v| (p.step, v))).collect();
            let got = &scalars[tag];
            assert_eq!(got.len(), want.len(), "{run} {tag}");
            for ((gs, gv), (ws, wv)) in got.iter().zip(&want) {
                assert_eq!(gs, ws, "{run} {tag}");
                assert!((gv - wv).abs() <= 1e-6 * wv.abs().max(1.0), "{run} {tag} at step {ws}: {gv} vs {wv}");
            }
        };
        expect("train_loss", |p| Some(p.train_loss));
        expect("lr", |p| Some(p.lr));
        expect("grad_norm", |p| Some(p.grad_norm));
        expect("val_loss", |p| p.val_loss);
        expect("val_bpb", |p| p.val_bpb);
    }
}

/// Executes a notebook of `notebooks/` against the shared lab with `env` (nbconvert fails on
/// any cell that raises) and returns the number of figures it drew and its text output.
fn execute(notebook: &str, output: &str, env: &[(&str, &str)]) -> (usize, String) {
    let lab = lab();
    let out_dir = lab.path().join("notebooks");
    let mut cmd = Command::new(python());
    cmd.args(["-m", "nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=600"])
        .arg(repo().join("notebooks").join(notebook))
        .arg("--output-dir")
        .arg(&out_dir)
        .args(["--output", output])
        .env("CODESCALE_ROOT", lab.path())
        .env("JUPYTER_PLATFORM_DIRS", "1")
        // The notebooks import sweep_files.py beside them: no __pycache__ in the repository.
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for var in ["CODESCALE_SWEEP", "CODESCALE_SWEEPS", "CODESCALE_LANGUAGES"] {
        cmd.env_remove(var);
    }
    let out = cmd.envs(env.iter().copied()).output().unwrap();
    assert!(out.status.success(), "{notebook} with {env:?} failed:\n{}", text(&out));
    let executed: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join(output)).unwrap()).unwrap();
    let outputs: Vec<&Value> = executed["cells"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["outputs"].as_array().into_iter().flatten())
        .collect();
    let figures = outputs.iter().filter(|o| o["data"].get("image/png").is_some()).count();
    let texts = outputs
        .iter()
        .flat_map(|o| [&o["text"], &o["data"]["text/plain"]])
        .flat_map(|t| t.as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    (figures, texts)
}

#[test]
fn explore_notebook_plots_curves_and_the_law_with_its_band() {
    let (figures, output) = execute("explore.ipynb", "explore-ladder.ipynb", &[("CODESCALE_SWEEP", "ladder")]);
    assert_eq!(figures, 2, "loss curves, and L vs N and D for both languages: {output}");
    assert!(
        output.contains("ladder: 18 trials") && output.contains("d64-l2"),
        "the trials table shows each model: {output}"
    );
    assert!(output.contains("alpha_n") && output.contains("rust2"), "the law table: {output}");
    let fit: Value =
        serde_json::from_str(&std::fs::read_to_string(lab().path().join("fits/ladder.json")).unwrap()).unwrap();
    // Chinchilla's draws are `samples`; another form's are `param_samples`.
    let law = &fit["groups"][0]["law"];
    let samples = ["samples", "param_samples"].iter().map(|k| law[k].as_array().map_or(0, Vec::len)).max().unwrap_or(0);
    assert!(samples >= 100, "the band comes from the bootstrap laws the fit keeps ({samples}, law {})", law["form"]);
}

#[test]
fn explore_notebook_draws_the_lr_batch_heatmap() {
    let (figures, output) = execute("explore.ipynb", "explore-hyper.ipynb", &[("CODESCALE_SWEEP", "hyper")]);
    assert_eq!(figures, 2, "loss curves and the lr × batch heatmap: {output}");
    assert!(output.contains("no law fitted"), "one model size fits no law, and says so: {output}");
}

#[test]
fn compare_notebook_puts_two_sweeps_side_by_side() {
    let (figures, output) = execute("compare.ipynb", "compare-sweeps.ipynb", &[("CODESCALE_SWEEPS", "ladder,hyper")]);
    assert_eq!(figures, 3, "frontier, laws, shared model's curves: {output}");
    assert!(output.contains("hyper") && output.contains("ladder"), "{output}");
}

#[test]
fn compare_notebook_puts_two_languages_side_by_side() {
    let (figures, output) = execute(
        "compare.ipynb",
        "compare-languages.ipynb",
        &[("CODESCALE_SWEEPS", "ladder"), ("CODESCALE_LANGUAGES", "rust2,rust")],
    );
    assert_eq!(figures, 3, "{output}");
    assert!(output.contains("ladder: rust2") && output.contains("ladder: rust"), "{output}");
}

const WANDB: &str = "\
program: train.py
method: grid
metric:
  name: val_loss
  goal: minimize
corpus: two.toml
parameters:
  language:
    value: rust
  seq_len:
    value: 32
  batch_size:
    value: 8
  eval_interval:
    value: 2
  tokens:
    value: 16384
  model:
    values: [d32-l1, d64-l1]
  lr:
    values: [0.001, 0.01]
early_terminate:
  type: hyperband
  min_iter: 4
  eta: 3
";

#[test]
fn wandb_sweep_files_run_as_they_are_and_convert_to_toml() {
    let lab = lab();
    let dir = lab.path();
    std::fs::write(dir.join("wandb.yaml"), WANDB).unwrap();
    let plan = |file: &str| {
        let out = lab.run(&["sweep", "plan", "--json", file]);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let planned = plan("wandb.yaml");
    assert_eq!(planned.as_array().unwrap().len(), 4);

    let out = lab.run(&["sweep", "convert", "wandb.yaml"]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.contains("min_tokens = 2048.0") && printed.contains("reduction = 3.0"),
        "4 evaluations of 2 steps × 8 × 32 tokens:\n{printed}"
    );
    let out = lab.run(&["sweep", "convert", "wandb.yaml", "--out", "converted.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(dir.join("converted.toml")).unwrap(), printed);
    assert_eq!(plan("converted.toml"), planned, "the TOML plans the very same trials");

    let out = lab.run(&["sweep", "run", "wandb.yaml", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("sweep wandb: 4 trials"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(dir.join("runs/wandb/sweep.toml")).unwrap(),
        printed,
        "the runs folder keeps the sweep as run, in TOML"
    );

    std::fs::write(dir.join("bayes.yaml"), "name: b\nmethod: bayes\nparameters:\n  lr: {min: 0.001, max: 0.1}\n")
        .unwrap();
    for args in [&["sweep", "plan", "bayes.yaml"][..], &["sweep", "convert", "bayes.yaml"]] {
        let out = lab.run(args);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("bayes.yaml:2: `method`: `bayes` is not supported"), "{}", text(&out));
    }
    assert!(!dir.join("runs/b").exists(), "nothing is written for a refused file");
    let out = lab.run(&["sweep", "convert", "ladder.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = bin().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        for word in ["convert", "completions"] {
            assert!(script.contains(word), "{shell} completes `{word}`");
        }
        // Values of `--format`, where the shell's script lists them.
        if ["bash", "zsh", "fish"].contains(&shell) {
            assert!(script.contains("tensorboard"), "{shell} completes `--format tensorboard`");
        }
    }
    let out = bin().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn printing_into_a_closed_pipe_ends_quietly() {
    let lab = lab();
    // `sweep plan --json ladder.toml | head -0`: the reader is gone before anything is printed.
    let mut child = bin()
        .args(["sweep", "plan", "--json", "ladder.toml"])
        .current_dir(lab.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(out.status.signal(), Some(13), "ended by SIGPIPE, as `cat` would be ({:?})", out.status);
}
