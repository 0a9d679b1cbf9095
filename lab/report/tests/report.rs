//! A full fixture sweep, a partly failed one and an empty one, written to real folders and
//! read back: PNGs decoded, HTML checked for structure, content and self-containment.

mod common;

use std::collections::HashSet;

use codescale_report::{fixture, write_report, ReportInput};
use common::*;

const FULL_FIGURES: &[(&str, u32)] = &[
    ("training_curves", 1400),
    ("loss_vs_n", 1400),
    ("loss_vs_d", 1400),
    // One panel: java, the only language trained with FIM.
    ("infill_loss_vs_n", 1000),
    ("infill_loss_vs_d", 1000),
    ("law_overlay", 1600),
    ("compute_optimal", 1400),
    // One panel: rust's IsoFLOP budgets (groups are pooled only when asked, so no pooled panel).
    ("isoflop", 1000),
    ("hyper_heatmap", 1400),
    ("hyper_lr", 1400),
    ("dense_vs_moe", 1400),
    ("lr_batch_sensitivity", 1400),
    ("residuals", 1400),
];

#[test]
fn full_fixture_writes_every_figure_and_a_complete_page() {
    let dir = fresh_dir("full");
    let input = fixture::full();
    let out = write_report(&input, &dir).unwrap();
    assert_eq!(out.html, dir.join("index.html"));

    let written: HashSet<_> = out.figures.iter().cloned().collect();
    for (name, width) in FULL_FIGURES {
        let path = dir.join(format!("{name}.png"));
        assert!(written.contains(&path), "{name}.png not reported as written");
        let img = decode_png(&path);
        assert_eq!(img.width, *width, "{name}.png width");
        assert!(img.height >= 500 && img.height <= 2000, "{name}.png height {}", img.height);
        let var = grey_variance(&img);
        assert!(var > 150.0, "{name}.png looks blank (grey variance {var:.1})");
        let ink = ink_fraction(&img);
        assert!(ink > 0.02 && ink < 0.6, "{name}.png ink fraction {ink:.3}");
        assert!(colour_count(&img) >= 8, "{name}.png has too few colours to be a chart");
    }
    for name in ["loss_vs_n", "loss_vs_d", "law_overlay", "compute_optimal"] {
        let svg = std::fs::read_to_string(dir.join(format!("{name}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{name}.svg");
    }
    // Nothing but the page and the figures, and no temp file left behind by the atomic writes.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        assert!(name == "index.html" || name.ends_with(".png") || name.ends_with(".svg"), "stray file {name}");
    }

    let html = std::fs::read_to_string(&out.html).unwrap();
    let tags = check_balanced(&html);
    for t in ["html", "head", "body", "main", "table", "figure", "section"] {
        assert!(tags.iter().any(|s| s == t), "no <{t}>");
    }
    for l in links(&html) {
        assert!(!l.starts_with("http://") && !l.starts_with("https://") && !l.starts_with("//"), "external link {l}");
    }
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), FULL_FIGURES.len());

    // The fitted values, formatted as in the table, with their intervals: python's law as the
    // fitter finds it from the fixture's points (true α = 0.34, β = 0.30; `auto` keeps
    // Chinchilla's form at the matched Huber threshold: no other candidate predicts the largest
    // size better by more than its noise).
    let fit = input.fit.as_ref().unwrap();
    let law = fit.groups.iter().find(|g| g.group == "python").unwrap().law.as_ref().unwrap();
    assert_eq!(
        format!("{:.3} {:.3}", law.alpha_n.value, law.alpha_d.value),
        "0.338 0.284",
        "the fit moved: update the strings below"
    );
    assert!(html.contains(">0.338<"), "alpha_N of python missing");
    assert!(html.contains("0.271 – 0.388"), "interval of alpha_N missing");
    assert!(html.contains(">0.284<"), "alpha_D missing");
    assert!(html.contains("For C = 10¹⁸ FLOPs, train"), "budget sentence missing");
    assert!(
        html.contains(">law</th>") && html.contains("Law forms compared"),
        "the law form and its candidates missing"
    );
    // The additivity check's column: one seed per configuration, so measured but not tested.
    let python = fit.groups.iter().find(|g| g.group == "python").unwrap();
    assert!(python.additivity.is_some_and(|a| a.p_value.is_none()), "{:?}", python.additivity);
    assert!(
        html.contains(">additive</th>") && html.contains("untested<span class=\"ci\">one seed</span>"),
        "additivity column missing"
    );
    assert!(html.contains("without seeds noise and interaction cannot be told apart"), "additivity tooltip missing");
    assert!(html.contains(&format!("{} trials", input.results.len())), "trial count missing");
    assert!(html.matches("<tr><td><code title=").count() >= input.results.len());
    // Java's fill-in-the-middle trials: their infilling-loss law (true α_N 0.32) beside the
    // causal one, and their causal loss 0.3 % above the plain runs', which 12 configurations
    // with 0.6 % noise each cannot tell from nothing.
    let infill = input.fim_fit.as_ref().unwrap();
    let java = infill.groups.iter().find(|g| g.group == "java/fim0.5").unwrap().law.as_ref().unwrap();
    assert!((java.alpha_n.value - 0.32).abs() < 0.05, "infilling α_N {}", java.alpha_n.value);
    assert!(html.contains("Infilling-loss laws") && html.contains("<strong>java&#x2f;fim0.5</strong>"));
    assert!(html.contains("What fill-in-the-middle costs the causal loss"));
    let row = r#"<td>java</td><td class="num">0.5</td><td class="num">"#;
    let after = &html[html.find(row).expect("java's FIM cost row") + row.len()..];
    let change: f64 = after[..after.find(" %").unwrap()].parse().unwrap();
    assert!((change - 0.3).abs() < 0.4, "FIM cost {change} %");
    // The code task: python's sigmoid from loss to exact match (true midpoint 2.2) and its held-out
    // target's metric predicted in two steps.
    let task = python.task.as_ref().expect("python's task law");
    assert!((task.l_mid.value - 2.2).abs() < 0.15, "L_mid {}", task.l_mid.value);
    assert_eq!(task.targets.len(), 1);
    assert!(html.contains("Code task: exact match from loss") && html.contains("from its measured loss"));
    // Languages compared at their largest common (N, D), beside the seed paper's order (java
    // rung 2, rust 2, python 6: the fixture's laws put java lowest, then rust, then python).
    assert!(html.contains("Languages compared") && html.contains("pairs the seed paper orders are in its order"));
    // Gaps in an otherwise good sweep are named.
    assert!(html.contains("No fit for go: 3 points, 5 needed."));
    assert!(html.contains("Trials that did not finish"));
    assert!(html.contains("status is &quot;failed&quot;, not &quot;done&quot;"));
    // Provenance and the sweep file, with markup in it escaped.
    assert!(html.contains("9a19e97c4d2b8f01e6a5c3b7d9f0e1a2b3c4d5e6"));
    assert!(html.contains("b3:5f2ac4e1d09b7e63a8c2"));
    assert!(html.contains("lab-node-1"));
    assert!(html.contains("&lt;script&gt;alert("));
    assert!(!html.contains("<script>alert("));

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn partly_failed_sweep_says_what_is_missing() {
    let dir = fresh_dir("partial");
    let out = write_report(&fixture::partly_failed(), &dir).unwrap();
    let html = std::fs::read_to_string(&out.html).unwrap();
    check_balanced(&html);
    assert!(html.contains("What is missing"));
    assert!(html.contains("No fit for python: 3 points, 5 needed."));
    assert!(html.contains("No fit for go: 0 points, 5 needed."));
    assert!(html.contains("4 of 7 trials did not finish"), "unfinished count");
    assert!(html.contains("2 diverged") && html.contains("1 failed") && html.contains("1 pending"));
    assert!(html.contains("2 trial records could not be read"), "caller note missing");
    assert!(html.contains("Law overlay: needs fitted laws for at least two groups, found 0."));
    // Three finished python points still get their own plot, without a law.
    assert!(dir.join("loss_vs_n.png").exists());
    assert!(!dir.join("residuals.png").exists());
    assert!(!dir.join("training_curves.png").exists());
    for p in out.figures.iter().filter(|p| p.extension().is_some_and(|e| e == "png")) {
        assert!(grey_variance(&decode_png(p)) > 100.0, "{} blank", p.display());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn empty_sweep_gives_a_report_not_an_error() {
    let dir = fresh_dir("empty");
    let out = write_report(&fixture::empty(), &dir).unwrap();
    assert!(out.figures.is_empty());
    let html = std::fs::read_to_string(&out.html).unwrap();
    check_balanced(&html);
    // minijinja escapes '/' too; the browser shows it as a slash.
    let html = html.replace("&#x2f;", "/");
    assert!(html.contains("No trials in the results table"));
    assert!(html.contains("No fit file"));
    assert!(html.contains("fit missing: fits/empty.json does not exist"));
    assert!(html.contains("The results table is empty."));
    assert!(html.contains("No figure could be drawn"));

    // A default input (no name even) must not panic either.
    write_report(&ReportInput::default(), &dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rerun_removes_figures_whose_data_is_gone() {
    let dir = fresh_dir("rerun");
    write_report(&fixture::full(), &dir).unwrap();
    assert!(dir.join("hyper_heatmap.png").exists());
    let out = write_report(&fixture::partly_failed(), &dir).unwrap();
    assert!(!dir.join("hyper_heatmap.png").exists());
    assert!(!dir.join("law_overlay.svg").exists());
    for p in &out.figures {
        assert!(p.exists());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hostile_strings_are_escaped_and_odd_numbers_do_not_panic() {
    let mut input = fixture::full();
    input.sweep = "<img src=x onerror=alert(1)>".into();
    input.notes.push("\"quoted\" & <b>bold</b>".into());
    input.results[0].language = "py<thon>".into();
    input.results[1].val_loss = Some(f64::NAN);
    input.results[2].val_loss = Some(-1.0);
    input.results[3].n_params = 0.0;
    input.curves[0].1[0].train_loss = f64::INFINITY;
    let dir = fresh_dir("hostile");
    let out = write_report(&input, &dir).unwrap();
    let html = std::fs::read_to_string(&out.html).unwrap();
    check_balanced(&html);
    assert!(!html.contains("<img src=x"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("&lt;b&gt;bold&lt;&#x2f;b&gt;") || html.contains("&lt;b&gt;bold&lt;/b&gt;"));
    std::fs::remove_dir_all(&dir).unwrap();
}
