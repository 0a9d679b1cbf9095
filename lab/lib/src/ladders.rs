//! Published scaling ladders as a benchmark of the fitter: each ladder fitted on its paper's fit
//! rows, its held-out targets predicted, and the error set beside the paper's own. The ladders
//! are `../shared/ladders/*.csv` (one long schema; its README gives sources and splits); they
//! are read where they lie, never copied.
//!
//! `bench/ladders.sh` prints the table ([`render`]); `tests/ladders.rs` holds its thresholds.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::fit::{self, Columns, LawChoice, Options};

/// How one ladder file is fitted: the paper's N convention, groups and split.
#[derive(Debug, Clone)]
pub struct Ladder {
    /// Name in the table (the file stem, plus a variant).
    pub name: String,
    pub file: PathBuf,
    pub columns: Columns,
    pub n_col: String,
    /// The paper's own relative error on named targets (group, N, D, error), where it reports one.
    pub paper: Vec<PaperError>,
    /// The paper predicts the optimal loss L*(C) of each held-out budget (the lowest loss over
    /// sizes), not each run: its targets are scored that way too.
    pub optimal_loss: bool,
}

/// A target error a paper reports for its own method.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaperError {
    pub group: &'static str,
    /// N and D of a run; for an optimal-loss target, n = 0 and d = the budget C.
    pub n: f64,
    pub d: f64,
    /// |relative error|.
    pub error: f64,
}

/// One held-out target as one law predicted it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub ladder: String,
    pub group: String,
    /// `run` (one held-out run) or `L*(C)` (the lowest loss at a held-out budget).
    pub kind: &'static str,
    /// The law asked for (`auto` or a form), and the form fitted.
    pub asked: String,
    pub form: String,
    pub n: f64,
    pub d: f64,
    pub measured: f64,
    pub predicted: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    /// measured / predicted − 1.
    pub error: f64,
    pub covered: bool,
    pub paper: Option<f64>,
}

impl Row {
    /// The target's compute: 6·N·D, or D itself for an IsoFLOP loss-law row (N unknown there).
    pub fn budget(&self) -> f64 {
        if self.n.is_finite() {
            6.0 * self.n * self.d
        } else {
            self.d
        }
    }
}

/// The ladders in `dir` this benchmark knows how to split (the shared README's recipes), plus
/// the paper-faithful variant of Gadre et al. (their five-run fit set), written to `work`.
pub fn ladders(dir: &Path, work: &Path) -> Result<Vec<Ladder>> {
    let cols = |group: &[&str], c_col: Option<&str>| Columns {
        group_cols: group.iter().map(|s| s.to_string()).collect(),
        role_col: Some("role".into()),
        ignore_roles: vec!["extra".into()],
        c_col: c_col.map(String::from),
        d_col: Some("tokens".into()),
        ..Default::default()
    };
    let mut out = vec![];
    for file in ["gadre2024_c4_original", "gadre2024_rpj", "gadre2024_rw_original"] {
        // The paper's N is the total parameter count, tokens = 20·M·N_total exactly.
        out.push(Ladder {
            name: file.into(),
            file: dir.join(format!("{file}.csv")),
            columns: cols(&["eval_set"], None),
            n_col: "n_params_total".into(),
            paper: vec![],
            optimal_loss: false,
        });
    }
    // Gadre et al.'s own fit: the four small models at M = 20 and the 11M model at M = 320, and
    // their headline targets (the notebook's errors are for RedPajama on C4 eval).
    let faithful = work.join("gadre2024_rpj_paper.csv");
    derive_paper_split(&dir.join("gadre2024_rpj.csv"), &faithful)?;
    out.push(Ladder {
        name: "gadre2024_rpj (paper's 5-run fit)".into(),
        file: faithful,
        columns: cols(&["eval_set"], None),
        n_col: "n_params_total".into(),
        paper: vec![
            PaperError { group: "c4_val", n: 1.4e9, d: 640.0 * 1.4e9, error: 0.007103 },
            PaperError { group: "c4_val", n: 6.9e9, d: 20.0 * 6.9e9, error: 0.007320 },
        ],
        optimal_loss: false,
    });
    // The shared README's errors of Porian et al.'s stored fit of L*(C) (their tuned, short-warmup,
    // constant-LR configuration) at the held-out budgets.
    let porian =
        |c: f64, error: f64| PaperError { group: "porian2024|rw|tuned|short|const|standard|val", n: 0.0, d: c, error };
    for file in ["porian2024_rw", "porian2024_owt2"] {
        let paper = if file == "porian2024_rw" {
            vec![porian(8e17, 0.0020), porian(3.2e18, 0.0046), porian(1.28e19, 0.0103), porian(2.56e19, 0.0136)]
        } else {
            vec![]
        };
        out.push(Ladder {
            name: file.into(),
            file: dir.join(format!("{file}.csv")),
            columns: cols(&["fit_group"], Some("flops")),
            n_col: "n_params".into(),
            paper,
            optimal_loss: true,
        });
    }
    out.push(Ladder {
        name: "colpret_datablations_code".into(),
        file: dir.join("colpret_datablations_code.csv"),
        columns: cols(&["fit_group", "eval_set"], None),
        n_col: "n_params".into(),
        paper: vec![],
        optimal_loss: false,
    });
    Ok(out)
}

/// The rows of Gadre et al.'s default fit (`paper_table2_fit`) as `fit` and of their headline
/// targets (`paper_headline_target`) as `target`; every other row left out.
fn derive_paper_split(src: &Path, dst: &Path) -> Result<()> {
    let text = std::fs::read_to_string(src).with_context(|| format!("reading {}", src.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().context("empty ladder")?.split(',').collect();
    let at = |name: &str| {
        header.iter().position(|h| *h == name).with_context(|| format!("{}: no column {name}", src.display()))
    };
    let (role, fit, target) = (at("role")?, at("paper_table2_fit")?, at("paper_headline_target")?);
    let mut out = vec![header.join(",")];
    for line in lines {
        // The ladders quote nothing: every cell is a plain value.
        let mut cells: Vec<&str> = line.split(',').collect();
        if cells.len() != header.len() {
            anyhow::bail!("{}: a line with {} cells under a header of {}", src.display(), cells.len(), header.len());
        }
        let new_role = match (cells[fit], cells[target]) {
            ("true", _) => "fit",
            (_, "true") => "target",
            _ => continue,
        };
        cells[role] = new_role;
        out.push(cells.join(","));
    }
    codescale_core::atomic::write_atomic(dst, (out.join("\n") + "\n").as_bytes())
}

/// Every target of every ladder predicted by each law in `laws`.
pub fn run(ladders: &[Ladder], laws: &[LawChoice], bootstrap: usize, work: &Path) -> Result<Vec<Row>> {
    let mut rows = vec![];
    for ladder in ladders {
        for &law in laws {
            let opts = Options {
                n_col: Some(ladder.n_col.clone()),
                loss_col: None,
                fit: fit::FitOptions { bootstrap, law, checks: false, ..Default::default() },
                out: Some(work.join(format!(
                    "{}-{}.json",
                    ladder.name.replace(' ', "_").replace(['(', ')', '\''], ""),
                    law.name()
                ))),
            };
            let fitted = match fit::fit_table(&ladder.file, &ladder.columns, &opts) {
                Ok(f) => f,
                // A form these points cannot identify (Kaplan's N term on a one-size ladder) is
                // not a benchmark failure: the form is simply not a candidate there.
                Err(e) if law != LawChoice::Auto && crate::is_bad_input(&e) && format!("{e:#}").contains("--law") => {
                    continue
                }
                Err(e) => return Err(e.context(format!("fitting {}", ladder.name))),
            };
            for g in &fitted.fit.groups {
                if ladder.optimal_loss {
                    rows.extend(optimal_loss_rows(ladder, g, law));
                    if law == LawChoice::Auto {
                        rows.extend(isoflop_rows(ladder, g));
                    }
                    continue;
                }
                for t in &g.targets {
                    let paper = ladder
                        .paper
                        .iter()
                        .find(|p| p.group == g.group && (p.n / t.n - 1.0).abs() < 0.1 && (p.d / t.d - 1.0).abs() < 0.1)
                        .map(|p| p.error);
                    rows.push(Row {
                        ladder: ladder.name.clone(),
                        group: g.group.clone(),
                        kind: "run",
                        asked: law.name().into(),
                        form: g.law.as_ref().map_or("—".into(), |l| l.form.name().into()),
                        n: t.n,
                        d: t.d,
                        measured: t.measured,
                        predicted: t.predicted.value,
                        lo: t.predicted.lo,
                        hi: t.predicted.hi,
                        error: t.error,
                        covered: t.covered,
                        paper,
                    });
                }
            }
        }
    }
    Ok(rows)
}

/// Each held-out budget C of a group (targets at one 6·N·D) with the lowest loss measured there.
fn held_out_budgets(g: &fit::GroupFit) -> Vec<(f64, f64)> {
    codescale_fit::distinct(g.targets.iter().map(|t| (6.0 * t.n * t.d * 1e-6).round() * 1e6))
        .into_iter()
        .map(|c| {
            (
                c,
                g.targets
                    .iter()
                    .filter(|t| (6.0 * t.n * t.d / c - 1.0).abs() < 1e-3)
                    .map(|t| t.measured)
                    .fold(f64::INFINITY, f64::min),
            )
        })
        .filter(|(_, measured)| measured.is_finite())
        .collect()
}

/// An L*(C) row: the lowest loss `measured` at budget `c` against the prediction with its
/// interval of the law `asked` for (its form `form`), made at N = `n` (NaN where the law has no
/// N).
fn optimal_loss_row(
    ladder: &Ladder,
    g: &fit::GroupFit,
    (asked, form): (&str, &str),
    n: f64,
    (c, measured): (f64, f64),
    pi: codescale_fit::Estimate,
) -> Row {
    Row {
        ladder: ladder.name.clone(),
        group: g.group.clone(),
        kind: "L*(C)",
        asked: asked.into(),
        form: form.into(),
        n,
        d: if n.is_finite() { c / (6.0 * n) } else { c },
        measured,
        predicted: pi.value,
        lo: pi.lo,
        hi: pi.hi,
        error: measured / pi.value - 1.0,
        covered: pi.covers(measured),
        paper: ladder
            .paper
            .iter()
            .find(|p| p.group == g.group && p.n == 0.0 && (p.d / c - 1.0).abs() < 0.05)
            .map(|p| p.error),
    }
}

/// For each held-out budget C of a group: the lowest measured loss among its runs against the
/// law's minimum of L(N, C/6N) over N, with a 95 % prediction interval from the stored
/// bootstrap laws and the fit's residuals.
fn optimal_loss_rows(ladder: &Ladder, g: &fit::GroupFit, law: LawChoice) -> Vec<Row> {
    let Some(fitted) = &g.law else { return vec![] };
    let optimum = |p: &[f64], c: f64| {
        let n = codescale_fit::allocation::numeric_n_opt(fitted.form, p, c);
        (n, fitted.form.predict(p, n, c / (6.0 * n)))
    };
    let (params, samples, residuals) = (fitted.form_params(), fitted.form_samples(), g.log_residuals());
    held_out_budgets(g)
        .into_iter()
        .map(|(c, measured)| {
            let (n_opt, predicted) = optimum(&params, c);
            let preds: Vec<f64> = samples.iter().map(|p| optimum(p, c).1).collect();
            let pi = codescale_fit::predict::interval(
                predicted,
                &preds,
                &residuals,
                fitted.form.n_params(),
                0.95,
                c.to_bits(),
            );
            optimal_loss_row(ladder, g, (law.name(), fitted.form.name()), n_opt, (c, measured), pi)
        })
        .collect()
}

/// Each held-out budget's lowest loss against the IsoFLOP loss law L*(C) (Approach 2's minima
/// through a law of compute, as Porian et al. predict it), where the design is an IsoFLOP one.
fn isoflop_rows(ladder: &Ladder, g: &fit::GroupFit) -> Vec<Row> {
    let Some(law) = g.isoflop.as_ref().and_then(|i| i.loss_law.as_ref()) else { return vec![] };
    held_out_budgets(g)
        .into_iter()
        .map(|(c, measured)| {
            optimal_loss_row(
                ladder,
                g,
                ("isoflop loss law", "E + A·C^−α"),
                f64::NAN,
                (c, measured),
                law.predict_with_interval(c, 0.95),
            )
        })
        .collect()
}

/// Per ladder and law: targets, mean and max |error|, coverage of the 95 % interval; then every
/// target that a paper reports an error for, beside that error.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::from("| ladder | targets | law | forms fitted | targets | mean abs error | max abs error | 95 % PI coverage |\n|---|---|---|---|---|---|---|---|\n");
    let mut keys: Vec<(&str, &str, &str)> = vec![];
    for r in rows {
        let key = (r.ladder.as_str(), r.kind, r.asked.as_str());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    for (ladder, kind, law) in keys {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.ladder == ladder && r.kind == kind && r.asked == law).collect();
        let mut forms: Vec<&str> = rs.iter().map(|r| r.form.as_str()).collect();
        forms.sort();
        forms.dedup();
        let abs: Vec<f64> = rs.iter().map(|r| r.error.abs()).collect();
        out.push_str(&format!(
            "| {ladder} | {kind} | {law} | {} | {} | {:.2} % | {:.2} % | {:.0} % |\n",
            forms.join(", "),
            rs.len(),
            100.0 * abs.iter().sum::<f64>() / abs.len().max(1) as f64,
            100.0 * abs.iter().copied().fold(0.0, f64::max),
            100.0 * rs.iter().filter(|r| r.covered).count() as f64 / rs.len().max(1) as f64
        ));
    }
    let with_paper: Vec<&Row> =
        rows.iter().filter(|r| r.paper.is_some() && (r.asked == "auto" || r.asked == "isoflop loss law")).collect();
    if !with_paper.is_empty() {
        out.push_str("\n| ladder | group | N | D | law | form | measured | predicted [95 % PI] | error | paper's error |\n|---|---|---|---|---|---|---|---|---|---|\n");
        for r in with_paper {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {:.4} | {:.4} [{}, {}] | {:+.2} % | {:.2} % |\n",
                r.ladder,
                r.group,
                if r.n.is_finite() { format!("{:.3e}", r.n) } else { "—".into() },
                if r.kind == "run" { format!("{:.3e}", r.d) } else { format!("C = {:.3e}", r.budget()) },
                r.asked,
                r.form,
                r.measured,
                r.predicted,
                r.lo.map_or("—".into(), |x| format!("{x:.4}")),
                r.hi.map_or("—".into(), |x| format!("{x:.4}")),
                100.0 * r.error,
                100.0 * r.paper.unwrap_or(f64::NAN)
            ));
        }
    }
    out
}
