//! Plain-text summary of a fit file for the terminal.

use crate::schema::{Additivity, Estimate, FitFile, GroupFit, TargetCheck};

/// Three significant figures, switching to exponent notation outside [1e-3, 1e4).
pub fn num(x: f64) -> String {
    let a = x.abs();
    if x == 0.0 || (1e-3..1e4).contains(&a) {
        let decimals = if a >= 100.0 {
            1
        } else if a >= 1.0 {
            3
        } else {
            4
        };
        format!("{x:.decimals$}")
    } else {
        format!("{x:.2e}")
    }
}

/// `value [lo, hi]`, or just the value without an interval.
pub fn est(e: &Estimate) -> String {
    match (e.lo, e.hi) {
        (Some(lo), Some(hi)) => format!("{} [{}, {}]", num(e.value), num(lo), num(hi)),
        _ => num(e.value),
    }
}

/// A law parameter, marked `*` when the data cannot pin it down (see the legend).
pub fn flagged(e: &Estimate, name: &str, unidentified: &[String]) -> String {
    let mark = if unidentified.iter().any(|u| u == name) { " *" } else { "" };
    format!("{}{mark}", est(e))
}

/// The legend of [`flagged`].
pub const UNIDENTIFIED_LEGEND: &str = "* not identified: the 95 % interval is wider than the estimate";

fn row(g: &GroupFit) -> Vec<String> {
    let mut r = vec![g.group.clone(), g.n_points.to_string()];
    let dash = || "—".to_string();
    match &g.law {
        Some(l) => {
            let u = &l.unidentified;
            // A form without the quantity (the D-only form has no α_N) shows a dash.
            let shown = |e: &Estimate, name: &str| if e.value.is_nan() { dash() } else { flagged(e, name, u) };
            r.push(l.form.name().to_string());
            r.extend([shown(&l.alpha_n, "α_N"), shown(&l.alpha_d, "α_D"), shown(&l.l_inf, "L_inf")]);
            r.extend([&l.n_c, &l.d_c].map(|e| if e.value.is_nan() { dash() } else { est(e) }));
            match &g.allocation {
                Some(a) => r.extend([&a.a, &a.b].map(est)),
                None => r.extend([dash(), dash()]),
            }
            r.push(format!("{:.4}", l.rmse_log));
        }
        None => r.extend(std::iter::repeat_n(dash(), 9)),
    }
    r
}

/// One row per group (α_N, α_D, L_inf, N_c, D_c with intervals, allocation exponents a and b, RMSE
/// of log loss), then per-group messages, warnings and the other analyses.
pub fn render_table(fit: &FitFile) -> String {
    let header: Vec<String> =
        ["group", "points", "law", "α_N", "α_D", "L_inf", "N_c", "D_c", "a (N_opt∝C^a)", "b (D_opt∝C^b)", "RMSE log"]
            .map(String::from)
            .to_vec();
    let rows: Vec<Vec<String>> = std::iter::once(header).chain(fit.groups.iter().map(row)).collect();
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = format!("{} ({}; N from {}; {})\n", fit.name, fit.source, fit.n_col, fit.created);
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<String> =
            r.iter().zip(&widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count()))).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            out.push_str(&widths.iter().map(|w| "─".repeat(*w)).collect::<Vec<_>>().join("  "));
            out.push('\n');
        }
    }
    for g in &fit.groups {
        let mut lines = vec![];
        if let Some(m) = &g.message {
            lines.push(m.clone());
        }
        if let Some(why) = &g.law_choice {
            lines.push(format!("law {}: {why}", g.law.as_ref().map_or("—", |l| l.form.formula())));
        }
        lines.extend(candidate_lines(g));
        if g.intermediate > 0 {
            lines
                .push(format!("{} intermediate checkpoint(s) kept apart: not fitted as finished runs", g.intermediate));
        }
        if g.tuned_out > 0 {
            lines.push(format!(
                "law fitted at the best configuration of each (N, D): {} points of other configurations inform only the hyperparameter laws",
                g.tuned_out
            ));
        }
        if let Some(why) = &g.isoflop_skipped {
            if g.law.is_some() && why.starts_with("not an IsoFLOP") {
                lines.push(format!("IsoFLOP (Approach 2) skipped: {why}"));
            }
        }
        if let Some(i) = &g.isoflop {
            lines.push(format!("IsoFLOP over {} budgets: a = {}, b = {}", i.budgets.len(), est(&i.a), est(&i.b)));
            if let Some(l) = &i.loss_law {
                lines.push(format!(
                    "IsoFLOP loss law L*(C) = E + A·C^−α: E = {}, A = {}, α = {}",
                    est(&l.e),
                    est(&l.a),
                    est(&l.alpha)
                ));
            }
        }
        if let Some(h) = &g.hyper {
            for (what, law) in [("η_opt", &h.lr_law), ("B_opt", &h.batch_law)] {
                if let Some(l) = law {
                    lines.push(format!("{what}(C) = {} · C^{} over {} budgets", est(&l.k), est(&l.p), h.budgets.len()));
                }
            }
        }
        if let Some(r) = &g.lr_rule {
            lines.push(format!(
                "learning-rate rule from {} best rates (RMS of ln η off the rule {:.3}): {}",
                r.optima.len(),
                r.rmse_log,
                r.toml()
            ));
        }
        if let Some(x) = &g.extrapolation {
            let held: Vec<String> = x.held_out_n.iter().map(|n| num(*n)).collect();
            lines.push(format!(
                "extrapolation to N = {}: mean |rel. error| {:.2} %, max {:.2} %",
                held.join(", "),
                100.0 * x.mean_abs_rel_error,
                100.0 * x.max_abs_rel_error
            ));
        }
        for x in &g.rolling {
            lines.push(format!(
                "rolling: fitted below N = {}, predicting {} larger size(s): mean |rel. error| {:.2} %, max {:.2} %",
                num(x.held_out_n[0]),
                x.held_out_n.len(),
                100.0 * x.mean_abs_rel_error,
                100.0 * x.max_abs_rel_error
            ));
        }
        for t in &g.targets {
            lines.push(target_line(t));
        }
        lines.extend(curve_lines(g));
        lines.extend(task_lines(g));
        if !g.replicates.is_empty() {
            let mut rel: Vec<f64> = g.replicates.iter().map(|r| r.sd / r.mean).collect();
            rel.sort_by(f64::total_cmp);
            lines.push(format!(
                "replicates: {} configuration(s) measured {}×; seed spread (sd) {:.2} % of the loss (median), {:.2} % at most",
                g.replicates.len(),
                g.replicates.iter().map(|r| r.count).max().unwrap_or(0),
                100.0 * rel[rel.len() / 2],
                100.0 * rel[rel.len() - 1]
            ));
        }
        if let Some(a) = &g.additivity {
            lines.push(additivity_detail(a));
        }
        if let Some(line) = headline(g) {
            lines.push(line);
        }
        lines.extend(g.warnings.iter().map(|w| format!("warning: {w}")));
        if !lines.is_empty() {
            out.push_str(&format!("\n{}:\n", g.group));
            for l in lines {
                out.push_str(&format!("  {l}\n"));
            }
        }
    }
    if fit.groups.iter().filter_map(|g| g.law.as_ref()).any(|l| !l.unidentified.is_empty()) {
        out.push_str(&format!("\n{UNIDENTIFIED_LEGEND}\n"));
    }
    if !fit.excluded.is_empty() {
        out.push_str(&format!("\nexcluded ({}):\n", fit.excluded.len()));
        for e in &fit.excluded {
            out.push_str(&format!("  {} [{}]: {}\n", e.id, e.group, e.reason));
        }
    }
    out
}

/// The candidate forms side by side: out-of-sample error (what chose), in-sample error (shown,
/// never used to choose), and each form's exponents.
fn candidate_lines(g: &GroupFit) -> Vec<String> {
    if g.candidates.len() < 2 {
        return vec![];
    }
    let opt = |x: Option<f64>, digits: usize| x.map_or("—".to_string(), |v| format!("{v:.digits$}"));
    let mut lines =
        vec!["candidates (out-of-sample: mean |log error| at held-out larger sizes over rolling splits):".to_string()];
    for c in &g.candidates {
        lines.push(format!(
            "  {} {:<10} Huber {:<10} out-of-sample {:>8} ({} splits)  in-sample RMSE {:>7}  α_N {:>6}  α_D {:>6}  L_inf {:>6}",
            if c.chosen { "→" } else { " " },
            c.form.name(),
            c.huber,
            c.out_of_sample.map_or("—".to_string(), |s| format!("{:.3} %", 100.0 * s)),
            c.splits,
            opt(c.rmse_log, 4),
            opt(c.alpha_n, 3),
            opt(c.alpha_d, 3),
            opt(c.l_inf, 3)
        ));
    }
    lines
}

/// The whole-curve law beside the final-point one: its fit, its out-of-sample error on the same
/// splits as the candidates', and its predictions of the targets.
fn curve_lines(g: &GroupFit) -> Vec<String> {
    let Some(c) = &g.curve_law else {
        return g
            .curve_law_skipped
            .iter()
            .filter(|_| g.law.is_some())
            .map(|why| format!("whole-curve law: none ({why})"))
            .collect();
    };
    let chosen = g.candidates.iter().find(|c| c.chosen).and_then(|c| c.out_of_sample);
    let versus = match (c.out_of_sample, chosen) {
        (Some(a), Some(b)) => format!(
            "out-of-sample {:.3} % ({} splits) against {:.3} % for the final-point law",
            100.0 * a,
            c.splits,
            100.0 * b
        ),
        (Some(a), None) => format!("out-of-sample {:.3} % ({} splits)", 100.0 * a, c.splits),
        _ => "no out-of-sample check".into(),
    };
    let flagged = |e: &Estimate| format!("{}{}", est(e), if e.unidentified() { "*" } else { "" });
    let l_inf = if c.l_inf_at_bound() { "→ 0 (at its bound; not identified)".to_string() } else { flagged(&c.l_inf) };
    let mut lines = vec![format!(
        "whole-curve law {} from {} evaluations of {} runs (subset evaluations ×{:.4}, from {} runs): α_N {}, β {}, L_inf {l_inf}; {versus}",
        c.formula,
        c.evaluations,
        c.runs,
        c.subset_scale,
        c.subset_pairs,
        flagged(&c.alpha_n),
        flagged(&c.alpha_d),
    )];
    lines.extend(c.targets.iter().map(|t| format!("  whole-curve {}", target_line(t))));
    lines
}

/// The code task's sigmoid from loss to exact match, and each target's metric predicted in two
/// steps, beside what it measured; or why there is no such law.
fn task_lines(g: &GroupFit) -> Vec<String> {
    let pct = |e: &Estimate| match (e.lo, e.hi) {
        (Some(lo), Some(hi)) => format!("{:.1} % [{:.1}, {:.1}]", 100.0 * e.value, 100.0 * lo, 100.0 * hi),
        _ => format!("{:.1} %", 100.0 * e.value),
    };
    let Some(t) = &g.task else {
        return g.task_skipped.iter().map(|why| format!("task metric: no law ({why})")).collect();
    };
    let mut lines = vec![format!(
        "task exact match = top · σ(k · (L_mid − L)) over {} trials: top {}, k {}, L_mid {} (RMSE {:.1} points)",
        t.n_points,
        pct(&t.top),
        est(&t.k),
        est(&t.l_mid),
        100.0 * t.rmse
    )];
    for x in &t.targets {
        let verdict = match x.failed_step.as_deref() {
            None => "inside the 95 % prediction interval".to_string(),
            Some(step) => format!("outside the interval: the {step} step failed"),
        };
        lines.push(format!(
            "task target {} (N = {:.2e}, D = {:.2e}): predicted {} through the predicted loss, {} from its measured loss; measured {:.1} %, {verdict}",
            &x.id[..x.id.len().min(10)],
            x.n,
            x.d,
            pct(&x.predicted),
            pct(&x.from_measured_loss),
            100.0 * x.measured
        ));
    }
    lines
}

/// A held-out target against its prediction, on one line.
pub fn target_line(t: &TargetCheck) -> String {
    let interval = match (t.predicted.lo, t.predicted.hi) {
        (Some(lo), Some(hi)) => format!(" [{lo:.4}, {hi:.4}]"),
        _ => String::new(),
    };
    let runs = if t.runs > 1 { format!("mean of {} seeds, ", t.runs) } else { String::new() };
    let spread = t.form_spread.as_ref().map(|s| format!("; {}", s.describe())).unwrap_or_default();
    format!(
        "target {} (N = {}, D = {}, {}× the largest fitted compute): predicted {:.4}{interval}, measured {:.4} ({runs}{:+.2} %, {} the 95 % prediction interval){spread}",
        t.id.chars().take(10).collect::<String>(),
        num(t.n),
        num(t.d),
        num(t.compute_ratio),
        t.predicted.value,
        t.measured,
        100.0 * t.error,
        if t.covered { "inside" } else { "outside" }
    )
}

/// The additivity check in full: the misfit, and with replicates the noise and the test.
fn additivity_detail(a: &Additivity) -> String {
    let mut line = format!(
        "additivity: the configurations miss the best free surface f(N) + g(D) by {:.2} % RMS ({} degrees of freedom)",
        100.0 * a.misfit,
        a.lack_of_fit_df
    );
    match (a.noise, a.noise_floor, a.p_value) {
        (Some(noise), Some(floor), Some(p)) => line.push_str(&format!(
            "; seed noise alone would give {:.2} % (one run's seed-to-seed noise{} {:.2} %, {} degrees of freedom); lack-of-fit p = {p:.2e}",
            100.0 * floor,
            if a.trunks > 0 { format!(" beyond its trunk's, with {} trunks as blocks,", a.trunks) } else { String::new() },
            100.0 * noise,
            a.noise_df
        )),
        _ => line.push_str("; no replicates, so noise and an N × D interaction cannot be told apart"),
    }
    line
}

/// The additivity verdict on one line, for a fit with replicates (without them there is none);
/// `form` is the law's, which can (Kaplan's) or cannot (the additive ones) express an interaction.
pub fn additivity_verdict(a: &Additivity, form: Option<crate::forms::Form>) -> Option<String> {
    let (floor, p) = (a.noise_floor?, a.p_value?);
    let verdict = match (a.rejected(), form) {
        (false, _) => "additive within the noise",
        (true, Some(f)) if f.has_interaction() => {
            "not additive in N and D, an interaction the chosen (Kaplan) form has room for"
        }
        (true, _) => "not additive in N and D, an interaction the law's additive form cannot express",
    };
    Some(format!(
        "additive surfaces miss by {:.2} % RMS where seed noise explains {:.2} % (p = {}): {verdict}",
        100.0 * a.misfit,
        100.0 * floor,
        if p < 1e-3 { format!("{p:.0e}") } else { format!("{p:.3}") }
    ))
}

/// What `codescale run` ends with: per group (the pooled fit left out) α_N, α_D and L_inf with
/// their intervals, `*` on those not identified, and the RMSE of log loss, then (with
/// replicates) whether the loss is additive in N and D, then each held-out target against its
/// prediction, then the whole-curve law and its predictions of the targets; the legend when a
/// parameter is flagged. One line each, every
/// line ending in a newline (nothing at all for a fit without groups).
pub fn law_summary(fit: &FitFile) -> String {
    let mut lines = Vec::new();
    let mut flagged = false;
    for group in fit.groups.iter().filter(|g| crate::results::language_of(&g.group) != crate::group::POOLED) {
        match &group.law {
            Some(law) => {
                let param = |e: &Estimate, name: &str| {
                    let mark = if law.unidentified.iter().any(|u| u == name) { "*" } else { "" };
                    let interval = match (e.lo, e.hi) {
                        (Some(lo), Some(hi)) => format!("{lo:.3}–{hi:.3}"),
                        _ => "no interval".into(),
                    };
                    format!("{:.3} [{interval}]{mark}", e.value)
                };
                flagged |= !law.unidentified.is_empty();
                lines.push(format!(
                    "{:<12} {:<10} α_N {}  α_D {}  L_inf {}  (RMSE of log loss {:.4})",
                    group.group,
                    law.form.name(),
                    param(&law.alpha_n, "α_N"),
                    param(&law.alpha_d, "α_D"),
                    param(&law.l_inf, "L_inf"),
                    law.rmse_log
                ));
                lines.extend(
                    group.law_choice.as_ref().map(|why| format!("{:<12} law {}: {why}", "", law.form.formula())),
                );
                lines.extend(
                    group
                        .additivity
                        .as_ref()
                        .and_then(|a| additivity_verdict(a, Some(law.form)))
                        .map(|v| format!("{:<12} {v}", "")),
                );
                lines.extend(group.targets.iter().map(|t| format!("{:<12} {}", "", target_line(t))));
                lines.extend(curve_lines(group).into_iter().map(|l| format!("{:<12} {}", "", l.trim_start())));
                lines.extend(task_lines(group).into_iter().map(|l| format!("{:<12} {l}", "")));
            }
            None => lines.push(format!("{:<12} no fit: {}", group.group, group.message.clone().unwrap_or_default())),
        }
    }
    if flagged {
        lines.push(UNIDENTIFIED_LEGEND.to_string());
    }
    lines.into_iter().map(|l| l + "\n").collect()
}

/// The allocation for the largest budget within the trust range, or a statement that there is
/// none; `None` without an allocation.
pub fn headline(g: &GroupFit) -> Option<String> {
    let a = g.allocation.as_ref()?;
    let interval = |e: &Estimate| match (e.lo, e.hi) {
        (Some(lo), Some(hi)) => format!(" [{}, {}]", num(lo), num(hi)),
        _ => String::new(),
    };
    Some(match a.budgets.iter().filter(|b| !b.extrapolated).max_by(|x, y| x.flops.total_cmp(&y.flops)) {
        Some(b) => format!(
            "allocation at C = {} FLOPs (the largest budget within the trust range): N = {}{}, D = {}{} ({} tokens per parameter)",
            num(b.flops),
            num(b.n_opt.value),
            interval(&b.n_opt),
            num(b.d_opt.value),
            interval(&b.d_opt),
            num(b.tokens_per_param.value)
        ),
        None => "no allocation budget lies within the trust range of these trials; every allocation is extrapolated".to_string(),
    })
}
