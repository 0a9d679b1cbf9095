//! Plain-text summary of a fit file for the terminal.

use crate::schema::{Estimate, FitFile, GroupFit};

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

fn row(g: &GroupFit) -> Vec<String> {
    let mut r = vec![g.group.clone(), g.n_points.to_string()];
    match (&g.law, &g.allocation) {
        (Some(l), Some(a)) => {
            r.extend([&l.alpha_n, &l.alpha_d, &l.l_inf, &l.n_c, &l.d_c, &a.a, &a.b].map(est));
            r.push(format!("{:.4}", l.rmse_log));
        }
        _ => r.extend(std::iter::repeat_n("—".to_string(), 8)),
    }
    r
}

/// One row per group (α_N, α_D, L_inf, N_c, D_c with intervals, allocation exponents a and b, RMSE
/// of log loss), then per-group messages, warnings and the other analyses.
pub fn render_table(fit: &FitFile) -> String {
    let header: Vec<String> = [
        "group",
        "points",
        "α_N",
        "α_D",
        "L_inf",
        "N_c",
        "D_c",
        "a (N_opt∝C^a)",
        "b (D_opt∝C^b)",
        "RMSE log",
    ]
    .map(String::from)
    .to_vec();
    let rows: Vec<Vec<String>> = std::iter::once(header).chain(fit.groups.iter().map(row)).collect();
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!("{} ({}; N from {}; {})\n", fit.name, fit.source, fit.n_col, fit.created);
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
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
        if let Some(i) = &g.isoflop {
            lines.push(format!(
                "IsoFLOP over {} budgets: a = {}, b = {}",
                i.budgets.len(),
                est(&i.a),
                est(&i.b)
            ));
        }
        if let Some(h) = &g.hyper {
            for (what, law) in [("η_opt", &h.lr_law), ("B_opt", &h.batch_law)] {
                if let Some(l) = law {
                    lines.push(format!(
                        "{what}(C) = {} · C^{} over {} budgets",
                        est(&l.k),
                        est(&l.p),
                        h.budgets.len()
                    ));
                }
            }
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
        lines.extend(g.warnings.iter().map(|w| format!("warning: {w}")));
        if !lines.is_empty() {
            out.push_str(&format!("\n{}:\n", g.group));
            for l in lines {
                out.push_str(&format!("  {l}\n"));
            }
        }
    }
    if !fit.excluded.is_empty() {
        out.push_str(&format!("\nexcluded ({}):\n", fit.excluded.len()));
        for e in &fit.excluded {
            out.push_str(&format!("  {} [{}]: {}\n", e.id, e.group, e.reason));
        }
    }
    out
}
