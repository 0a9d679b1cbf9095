//! `fit --table` with held-out targets, and `codescale predict` from the fit it writes: what a
//! user with a ladder of their own does, through the CLI, with the bad inputs it must refuse.

mod common;

use common::{text, Lab};

/// L = 1.7 + (3e4/N)^0.34 + (2e7/D)^0.28 on 4 sizes × 3 budgets, ±0.3 % of scatter, and two
/// targets 4× and 16× larger in N.
fn ladder() -> String {
    let law = |n: f64, d: f64| 1.7 + (3e4 / n).powf(0.34) + (2e7 / d).powf(0.28);
    let mut csv = String::from("n,tokens,flops,loss,role,step_final,lang\n");
    for (i, n) in [1e5f64, 2e5, 4e5, 8e5].into_iter().enumerate() {
        for (j, d) in [1e8f64, 3e8, 1e9].into_iter().enumerate() {
            let wiggle = 1.0 + 0.003 * [1.0, -1.0, 0.5, -0.5][(i + j) % 4];
            // FLOPs as an exact integer beyond 2⁶³, as published tables write them: never read.
            csv += &format!("{n},{d},123456789012345678901234,{},fit,true,go\n", law(n, d) * wiggle);
            // An intermediate checkpoint of the same run, higher than any finished run's loss.
            csv += &format!("{n},{},0,{},fit,false,go\n", d / 2.0, law(n, d / 2.0) * 1.05);
        }
    }
    for n in [3.2e6f64, 1.28e7] {
        csv += &format!("{n},1e9,0,{},target,true,go\n", law(n, 1e9));
    }
    csv
}

#[test]
fn targets_are_predicted_and_any_fit_answers_predict() {
    let lab = Lab::new();
    std::fs::write(lab.path().join("ladder.csv"), ladder()).unwrap();
    let fit = lab.run(&[
        "fit",
        "--table",
        "ladder.csv",
        "--n-col",
        "n",
        "--role-col",
        "role",
        "--final-col",
        "step_final",
        "--group-col",
        "lang",
        "--bootstrap",
        "100",
        "--out",
        "ladder.json",
    ]);
    let out = text(&fit);
    assert!(fit.status.success(), "{out}");
    assert!(out.contains("12 intermediate checkpoint(s) kept apart"), "{out}");
    assert!(out.contains("candidates (out-of-sample"), "the forms are shown side by side:\n{out}");
    let file: codescale_fit::FitFile =
        serde_json::from_slice(&std::fs::read(lab.path().join("ladder.json")).unwrap()).unwrap();
    let g = &file.groups[0];
    assert_eq!((g.group.as_str(), g.n_points, g.targets.len(), g.intermediate), ("go", 12, 2, 12));
    assert!(g.candidates.iter().filter(|c| c.chosen).count() == 1 && g.candidates.len() >= 4, "{:?}", g.candidates);
    for t in &g.targets {
        assert!(
            t.error.abs() < 0.02 && t.covered,
            "target N = {}: {:+.2} %, covered {}",
            t.n,
            100.0 * t.error,
            t.covered
        );
    }

    // predict: one JSON object per group, the fields a script reads.
    let p = lab.run(&["predict", "ladder.json", "--n", "1.28e7", "--d", "1e9", "--json"]);
    assert!(p.status.success(), "{}", text(&p));
    let v: serde_json::Value = serde_json::from_slice(&p.stdout).unwrap();
    for key in ["group", "law", "n", "d", "loss", "lo", "hi", "extrapolated"] {
        assert!(v.get(key).is_some(), "no `{key}` in {v}");
    }
    let (loss, lo, hi) = (v["loss"].as_f64().unwrap(), v["lo"].as_f64().unwrap(), v["hi"].as_f64().unwrap());
    assert!(lo < loss && loss < hi && v["extrapolated"] == true, "{v}");
    assert!((loss - g.targets[1].predicted.value).abs() < 1e-9, "predict agrees with the fit's own target check");
    // Forms the rolling splits cannot tell apart: their range holds the law's prediction, and
    // predict gives the same range as the fit's target check.
    let spread = g.targets[1].form_spread.as_ref().expect("on four sizes several forms are tied");
    assert!(spread.lo <= loss && loss <= spread.hi && spread.forms.len() >= 2, "{spread:?}");
    assert_eq!(v["form_spread"], serde_json::to_value(spread).unwrap());
    // Inside the ladder it is not an extrapolation, and far beyond it says so in words.
    let inside = lab.run(&["predict", "ladder.json", "--n", "2e5", "--d", "3e8", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&inside.stdout).unwrap();
    assert_eq!(v["extrapolated"], false, "{v}");
    let far = lab.run(&["predict", "ladder.json", "--n", "1e12", "--d", "1e14"]);
    assert!(far.status.success() && text(&far).contains("EXTRAPOLATED"), "{}", text(&far));
}

#[test]
fn bad_tables_and_questions_are_refused_with_nothing_written() {
    let lab = Lab::new();
    std::fs::write(lab.path().join("ladder.csv"), ladder()).unwrap();
    let refuse = |args: &[&str], needle: &str| {
        let out = lab.run(args);
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {msg}");
        assert!(msg.contains(needle), "{args:?}: {msg}");
    };
    std::fs::write(lab.path().join("empty.csv"), "n,tokens,loss\n").unwrap();
    refuse(&["fit", "--table", "empty.csv", "--n-col", "n"], "no rows");
    std::fs::write(lab.path().join("roles.csv"), ladder().replacen(",fit,", ",maybe,", 1)).unwrap();
    refuse(&["fit", "--table", "roles.csv", "--n-col", "n", "--role-col", "role"], "row 2: `role` = \"maybe\"");
    std::fs::write(lab.path().join("lonely.csv"), ladder().replace("target,true,go", "target,true,rust")).unwrap();
    refuse(
        &["fit", "--table", "lonely.csv", "--n-col", "n", "--role-col", "role", "--group-col", "lang"],
        "group `rust` has target rows and no fit rows",
    );
    refuse(&["fit", "--table", "ladder.csv", "--n-col", "n", "--role-col", "no_such"], "no column `no_such`");
    // One model size: Kaplan's N term cannot be identified from it.
    let one_size: String = ladder()
        .lines()
        .enumerate()
        .filter(|(i, l)| *i == 0 || l.starts_with("100000,"))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(lab.path().join("one.csv"), one_size).unwrap();
    refuse(&["fit", "--table", "one.csv", "--n-col", "n", "--role-col", "role", "--law", "kaplan"], "--law kaplan");
    assert!(!lab.path().join("fits").exists(), "nothing written for a refused table");

    let ok = lab.run(&[
        "fit",
        "--table",
        "ladder.csv",
        "--n-col",
        "n",
        "--role-col",
        "role",
        "--group-col",
        "lang",
        "--bootstrap",
        "20",
        "--out",
        "ladder.json",
    ]);
    assert!(ok.status.success(), "{}", text(&ok));
    refuse(&["predict", "ladder.json", "--n", "1e6", "--d", "1e9", "--group", "python"], "no group `python`");
    refuse(&["predict", "ladder.json", "--n", "-1", "--d", "1e9"], "--n -1");
    refuse(&["predict", "ladder.json", "--n", "1e6", "--d", "inf"], "--d inf");
    refuse(&["predict", "missing.json", "--n", "1e6", "--d", "1e9"], "missing.json");
}
