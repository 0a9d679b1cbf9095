//! `codescale run` from sweep file to report, then replays that prove the results.

mod common;

use codescale_core::{CurvePoint, ResultRow, Status};
use common::{text, Lab};

const TINY: &str = "eval_interval = 4\n[parameters]\nmodel = { values = [\"d32-l1\", \"d64-l1\", \"d64-l2\"] }\ntokens = { values = [8192, 16384, 32768] }\n";

#[test]
fn run_fits_reports_and_replays_identically() {
    let lab = Lab::new();
    let sweep = lab.sweep("tiny", TINY);
    let out = lab.run(&["run", sweep.to_str().unwrap()]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("report: reports/tiny/index.html"), "{log}");
    assert!(log.contains("rust"), "per-language summary line: {log}");
    assert!(lab.path().join("fits/tiny.json").exists());
    let html = std::fs::read_to_string(lab.path().join("reports/tiny/index.html")).unwrap();
    assert!(html.contains("tiny") && html.contains("<img"), "report has figures");

    let rows: Vec<ResultRow> = codescale_table::read_rows(&lab.path().join("runs/tiny/results.parquet")).unwrap();
    assert_eq!(rows.len(), 9);
    for row in &rows[..2] {
        let trial = format!("runs/tiny/trials/{}", row.trial_id);
        let out = lab.run(&["replay", &trial, "--quiet"]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("identical"), "{}", text(&out));
    }

    // Replays across CPUs: the record names its SIMD path. Nudge one recorded loss by 1e-6
    // relative: on the recorded path that is a difference (bits are promised); recorded on
    // another path it is rounding within 1e-4, and the verdict says why.
    let dir = lab.path().join(format!("runs/tiny/trials/{}", rows[1].trial_id));
    let trial = format!("runs/tiny/trials/{}", rows[1].trial_id);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("trial.json")).unwrap()).unwrap();
    let path = record["provenance"]["simd_path"].as_str().unwrap_or_default().to_string();
    assert!(path.starts_with(std::env::consts::ARCH) && path.contains("caches"), "the record's SIMD path: {path:?}");
    let mut curve: Vec<CurvePoint> = codescale_table::read_rows(&dir.join("curve.parquet")).unwrap();
    curve[3].train_loss *= 1.0 + 1e-6;
    codescale_table::write_curve(&dir.join("curve.parquet"), &rows[1].trial_id, &curve).unwrap();
    let out = lab.run(&["replay", &trial, "--quiet"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("differs from step 4"), "{}", text(&out));
    let mut record = record;
    record["provenance"]["simd_path"] = "x86_64 scalar; caches 32K/256K/8192K".into();
    std::fs::write(dir.join("trial.json"), serde_json::to_string_pretty(&record).unwrap()).unwrap();
    let out = lab.run(&["replay", &trial, "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("same curve within 1e-4 relative") && text(&out).contains("another CPU path"),
        "{}",
        text(&out)
    );

    // Export for notebooks: every format reads back.
    for format in ["csv", "parquet", "jsonl"] {
        let out = lab.run(&["export", "runs/tiny", "--format", format, "--out", "export"]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(lab.path().join(format!("export/results.{format}")).exists());
        assert!(lab.path().join(format!("export/curves.{format}")).exists());
    }
    let csv: Vec<ResultRow> = codescale_table::read_rows(&lab.path().join("export/results.csv")).unwrap();
    assert_eq!(csv.len(), 9);

    // One byte of the corpus changes: replay refuses and names the hash.
    let file = lab.path().join("src/core/config/mod.rs");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] = if bytes[0] == b'/' { b'#' } else { b'/' };
    std::fs::write(&file, bytes).unwrap();
    let trial = format!("runs/tiny/trials/{}", rows[0].trial_id);
    let out = lab.run(&["replay", &trial, "--quiet"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("corpus hash"), "{}", text(&out));
    assert!(text(&out).contains("--force"), "{}", text(&out));
}

/// `fit`, `report` and `export` are reads: they leave `results.parquet` as `sweep run` wrote it
/// (same bytes, same mtime), or absent, computing the rows from the records instead.
#[test]
fn fit_report_and_export_leave_results_parquet_alone() {
    let lab = Lab::new();
    let sweep = lab.sweep("reads", "eval_interval = 4\n[parameters]\nmodel = { values = [\"d32-l1\", \"d64-l1\"] }\ntokens = { values = [8192, 16384, 32768] }\n");
    let out = lab.run(&["sweep", "run", sweep.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    let results = lab.path().join("runs/reads/results.parquet");
    // An mtime long past, so a rewrite shows even within the filesystem's timestamp resolution.
    let past = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    std::fs::File::options().write(true).open(&results).unwrap().set_modified(past).unwrap();
    let bytes = std::fs::read(&results).unwrap();
    let reads: [&[&str]; 4] = [
        &["fit", "runs/reads", "--bootstrap", "20", "--quiet"],
        &["report", "runs/reads"],
        &["export", "runs/reads", "--format", "csv"],
        &["export", "runs/reads", "--format", "parquet", "--out", "export"],
    ];
    for args in reads {
        let out = lab.run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        assert_eq!(std::fs::metadata(&results).unwrap().modified().unwrap(), past, "{args:?} rewrote results.parquet");
        assert!(std::fs::read(&results).unwrap() == bytes, "{args:?} changed results.parquet");
    }
    // Parquet into the sweep folder would be results.parquet itself: refused, naming it.
    let out = lab.run(&["export", "runs/reads", "--format", "parquet"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("results.parquet") && text(&out).contains("--out"), "{}", text(&out));
    assert_eq!(std::fs::metadata(&results).unwrap().modified().unwrap(), past);

    // Without the file, the reads still see every trial and leave it absent.
    std::fs::remove_file(&results).unwrap();
    for args in reads {
        let out = lab.run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        assert!(!results.exists(), "{args:?} wrote results.parquet");
    }
    let csv: Vec<ResultRow> = codescale_table::read_rows(&lab.path().join("runs/reads/results.csv")).unwrap();
    assert_eq!(csv.iter().filter(|r| r.status == Status::Done).count(), 6, "rows come from the records");
    // The writer is `sweep run`, even with nothing left to train.
    let out = lab.run(&["sweep", "run", sweep.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows: Vec<ResultRow> = codescale_table::read_rows(&results).unwrap();
    let key = |rows: &[ResultRow]| rows.iter().map(|r| (r.trial_id.clone(), r.status)).collect::<Vec<_>>();
    assert_eq!(key(&rows), key(&csv));
}

#[test]
fn quickstart_sweep_plans() {
    // The README's sweep must always parse and plan (its run is exercised by CI's reduced run).
    let out =
        common::bin().args(["sweep", "plan", "sweeps/quickstart.toml"]).current_dir(common::repo()).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    for file in ["lr-batch-warmup.toml", "seven-languages.toml", "moe-vs-dense.toml"] {
        let out = common::bin()
            .args(["sweep", "plan", &format!("sweeps/{file}")])
            .current_dir(common::repo())
            .output()
            .unwrap();
        assert!(out.status.success(), "{file}: {}", text(&out));
    }
}

#[test]
fn reduced_quickstart_runs_end_to_end_on_this_machines_code() {
    // The README's main job through the same code path, with smaller models and budgets.
    let lab = Lab::new();
    let quickstart = std::fs::read_to_string(common::repo().join("sweeps/quickstart.toml")).unwrap();
    let recipe = common::repo().join("corpora/local.toml");
    // The ladder's budgets, then the targets' (the largest of them).
    let mut budgets = ["tokens = { values = [8192, 16384] }", "tokens = { values = [16384] }"].into_iter();
    let reduced: String = quickstart
        .lines()
        .map(|line| match line.split_once(" = ").map(|(k, _)| k.trim()) {
            Some("name") => "name = \"quickstart-ci\"".to_string(),
            Some("corpus") => format!("corpus = \"{}\"", recipe.display()),
            Some("model") => "model = { values = [\"d32-l1\", \"d48-l1\", \"d64-l1\"] }".to_string(),
            Some("tokens") => budgets.next().expect("budgets for the ladder and the targets").to_string(),
            Some("eval_tokens") => "eval_tokens = 2048".to_string(),
            Some("warmup") => "warmup = 2".to_string(),
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let sweep = lab.path().join("quickstart-ci.toml");
    std::fs::write(&sweep, reduced).unwrap();
    let out = lab.run(&["run", sweep.to_str().unwrap(), "--quiet"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    for language in ["python", "rust", "go"] {
        assert!(log.lines().any(|l| l.starts_with(language) && l.contains("α_N")), "{language} has a fit: {log}");
    }
    // One held-out target per language, predicted with an interval and measured, by the
    // final-point law and by the whole-curve law. Every trial has two seeds: each target is
    // checked once per law on their mean, and each language's law is tested for additivity
    // against the seeds' noise.
    for prefix in ["target ", "whole-curve target "] {
        let targets: Vec<&str> = log
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with(prefix) && l.contains("predicted") && l.contains("measured"))
            .collect();
        assert_eq!(targets.len(), 3, "{prefix}: {log}");
        assert!(targets.iter().all(|l| l.contains("(mean of 2 seeds, ")), "{prefix}: {log}");
    }
    assert_eq!(log.matches("where seed noise explains").count(), 3, "{log}");
    assert!(lab.path().join("reports/quickstart-ci/index.html").exists());
}

/// `codescale train`'s trial folder exports its curve, so a curve is readable without
/// codescale or a Parquet reader (`bench/gpu.sh` compares curves this way on the GPU machine).
#[test]
fn a_trained_trials_curve_exports_as_json_lines() {
    let lab = Lab::new();
    std::fs::write(lab.path().join("t.toml"), "corpus = \"recipe.toml\"\nlanguage = \"rust\"\nmodel = \"d32-l1\"\nseq_len = 32\nbatch_size = 8\ntokens = 2560\neval_tokens = 256\n").unwrap();
    let out = lab.run(&["train", "t.toml", "--out", "t", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = lab.run(&["export", "t", "--format", "jsonl"]);
    assert!(out.status.success(), "{}", text(&out));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.path().join("t/trial.json")).unwrap()).unwrap();
    let lines = std::fs::read_to_string(lab.path().join("t/curve.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 10, "one row per step: 2560 tokens / (8 × 32)");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["trial_id"], record["id"]);
        assert_eq!(row["step"], i + 1);
        assert!(row["train_loss"].as_f64().unwrap().is_finite() && row["wall_s"].as_f64().is_some());
    }
    assert!(rows[9]["val_loss"].as_f64().is_some(), "the last step is evaluated");
}
