//! Dense against mixture-of-experts: each architecture's law against active parameters (what a
//! token costs) and against total parameters (what is stored), with 95 % bands; and how much
//! loss each one gives up away from its best learning rate and batch size.

use std::collections::BTreeMap;

use anyhow::Result;
use codescale_core::{ResultRow, Status};
use codescale_fit::{FitFile, GroupFit};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{chart, geomspace, interval, legend, legend_entry, line, marks, note, Ctx, Made, Mark};
use crate::axes::{fmt_num, fmt_pct, fmt_si, log_extent, pad_lin, pad_log, Scale};
use crate::data::{group_of, is_done, is_fine_tuning, level_of, levels};
use crate::render::{render, Grid, Panels};
use crate::style;

pub fn build(ctx: &Ctx) -> Result<Vec<Made>> {
    Ok(vec![laws(ctx)?, sensitivity(ctx)?])
}

fn is_moe(r: &ResultRow) -> bool {
    r.arch == codescale_core::Arch::Moe
}

/// Languages with finished dense and MoE trials, and their two groups' names.
fn contrasted(ctx: &Ctx) -> Vec<(String, String, String)> {
    let mut by_lang: BTreeMap<&str, BTreeMap<String, bool>> = BTreeMap::new();
    for r in ctx.input.results.iter().filter(|r| is_done(r) && !is_fine_tuning(r)) {
        by_lang.entry(r.language.as_str()).or_default().insert(group_of(r), is_moe(r));
    }
    let mut out = Vec::new();
    for (lang, groups) in by_lang {
        let dense = groups.iter().find(|g| !g.1).map(|g| g.0.clone());
        // With several MoE variants the first is drawn; each still has its own law in the table.
        let moe = groups.iter().find(|g| *g.1).map(|g| g.0.clone());
        if let (Some(dense), Some(moe)) = (dense, moe) {
            out.push((lang.to_string(), dense, moe));
        }
    }
    out
}

/// One architecture's points and law in one panel.
struct Arch {
    moe: bool,
    /// (N, D, loss) of the fitted points (the best configuration at each size and budget).
    points: Vec<(f64, f64, f64)>,
    law: Option<codescale_fit::LawFit>,
}

struct LawPanel {
    title: String,
    xlabel: &'static str,
    archs: Vec<Arch>,
}

/// The fit whose N came from `n_col`: the main fit or one of the others.
fn fit_by<'a>(ctx: &'a Ctx, n_col: &str) -> Option<&'a FitFile> {
    ctx.input.fit.iter().chain(&ctx.input.n_fits).find(|f| f.n_col == n_col)
}

fn arch(fit: &FitFile, group: &str, moe: bool) -> Option<Arch> {
    let g: &GroupFit = fit.groups.iter().find(|g| g.group == group)?;
    Some(Arch { moe, points: g.points.iter().map(|p| (p.n, p.d, p.loss)).collect(), law: g.law.clone() })
}

fn laws(ctx: &Ctx) -> Result<Made> {
    let langs = contrasted(ctx);
    if langs.is_empty() {
        return Ok(Made::Skip("Dense vs MoE: no language has finished dense and MoE trials.".into()));
    }
    let mut panels = Vec::new();
    for (lang, dense, moe) in &langs {
        for (n_col, what, xlabel) in [
            ("n_params_active", "active parameters", "active parameters per token (non-embedding)"),
            ("n_params", "total parameters", "total parameters (non-embedding, all experts)"),
        ] {
            let Some(fit) = fit_by(ctx, n_col) else { continue };
            let archs: Vec<Arch> = [arch(fit, dense, false), arch(fit, moe, true)].into_iter().flatten().collect();
            if archs.iter().any(|a| !a.points.is_empty()) {
                panels.push(LawPanel { title: format!("{lang} · against {what}"), xlabel, archs });
            }
        }
    }
    if panels.is_empty() {
        return Ok(Made::Skip("Dense vs MoE: no fit against active or total parameters.".into()));
    }
    let caption = "Each architecture's law L(N, D) fitted against active parameters per token (left: what a \
                   token costs in compute) and against total parameters (right: what is stored), one colour \
                   per token budget D: dense solid with circles, mixture-of-experts dashed with triangles, \
                   shaded 95 % bootstrap bands. Points are each size's best learning rate and batch size. \
                   At equal active parameters a MoE line below the dense one is loss bought with inactive \
                   parameters; against total parameters it shows what those parameters are worth."
        .to_string();
    Ok(Made::Fig(render("dense_vs_moe", "Dense vs MoE laws", caption, &Grid(panels), false)?))
}

/// Pointwise 2.5 and 97.5 percentiles of L(n, d) across the bootstrap laws.
fn band(law: &codescale_fit::LawFit, n: f64, d: f64) -> Option<(f64, f64)> {
    let mut v: Vec<f64> =
        law.form_samples().iter().map(|p| law.form.predict(p, n, d)).filter(|x| x.is_finite()).collect();
    if v.len() < 20 {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Some((at(0.025), at(0.975)))
}

impl Panels for Vec<LawPanel> {
    fn count(&self) -> usize {
        self.len()
    }

    fn panel<DB: DrawingBackend>(&self, i: usize, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let p = &self[i];
        let all = || p.archs.iter().flat_map(|a| a.points.iter());
        let budgets = levels(all().map(|q| q.1), 4);
        let (x0, x1) = pad_log(log_extent(all().map(|q| q.0)).unwrap_or((1.0, 10.0)), 0.08);
        let (y0, y1) = pad_log(log_extent(all().map(|q| q.2)).unwrap_or((1.0, 10.0)), 0.06);
        let mut c = chart(
            area,
            &p.title,
            Scale::log(x0, x1, fmt_si),
            Scale::log(y0, y1, fmt_num),
            p.xlabel,
            "final val loss (nats/token)",
        )?;
        let xs = geomspace(x0, x1, 48);
        for a in &p.archs {
            for (l, d) in budgets.iter().enumerate() {
                let color = style::level(l, budgets.len());
                if let Some(law) = &a.law {
                    let bounds: Vec<(f64, (f64, f64))> =
                        xs.iter().filter_map(|&n| band(law, n, *d).map(|b| (n, b))).collect();
                    if bounds.len() >= 2 {
                        let mut poly: Vec<(f64, f64)> = bounds.iter().map(|(n, b)| (*n, b.0.clamp(y0, y1))).collect();
                        poly.extend(bounds.iter().rev().map(|(n, b)| (*n, b.1.clamp(y0, y1))));
                        c.draw_series(std::iter::once(Polygon::new(poly, color.mix(0.12).filled())))?;
                    }
                    let curve: Vec<(f64, f64)> = xs.iter().map(|&n| (n, law.predict(n, *d))).collect();
                    line(&mut c, &curve, color.stroke_width(2), a.moe)?;
                }
                let pts: Vec<(f64, f64)> =
                    a.points.iter().filter(|q| level_of(q.1, &budgets) == l).map(|q| (q.0, q.2)).collect();
                marks(&mut c, &pts, if a.moe { Mark::Triangle } else { Mark::Circle }, 5, color.filled())?;
            }
        }
        for (l, d) in budgets.iter().enumerate() {
            legend_entry(&mut c, &format!("D = {}", fmt_si(*d)), style::level(l, budgets.len()), None, true)?;
        }
        legend_entry(&mut c, "dense", style::TEXT, Some(Mark::Circle), false)?;
        legend_entry(&mut c, "MoE (dashed)", style::TEXT, Some(Mark::Triangle), false)?;
        legend(&mut c, SeriesLabelPosition::UpperRight)?;
        let lines: Vec<String> = p
            .archs
            .iter()
            .filter_map(|a| {
                let law = a.law.as_ref()?;
                Some(format!(
                    "{}: α_N = {}{}",
                    if a.moe { "MoE" } else { "dense" },
                    fmt_num(law.alpha_n.value),
                    interval(&law.alpha_n, fmt_num)
                ))
            })
            .collect();
        if !lines.is_empty() {
            note(&c, &lines)?;
        }
        Ok(())
    }
}

/// One architecture's LR × batch grid: the loss excess over the best configuration at each
/// size and budget.
struct Sensitivity {
    group: String,
    /// At the largest budget with a grid: (size, batch tokens) → [(lr, excess)].
    lines: BTreeMap<(u64, u64), Vec<(f64, f64)>>,
    sizes: Vec<f64>,
    batches: Vec<f64>,
    budget: f64,
    /// Over every size and budget with a grid: mean and largest excess, and runs that diverged.
    mean: f64,
    worst: f64,
    diverged: usize,
}

struct SensitivityPanels {
    panels: Vec<Sensitivity>,
    y_max: f64,
}

fn sensitivity(ctx: &Ctx) -> Result<Made> {
    let mut panels = Vec::new();
    for (_, dense, moe) in contrasted(ctx) {
        for group in [dense, moe] {
            if let Some(s) = grid_of(ctx, &group) {
                panels.push(s);
            }
        }
    }
    if panels.len() < 2 {
        return Ok(Made::Skip("LR × batch sensitivity: dense and MoE were not both trained at two or more learning rates at one size and budget.".into()));
    }
    let y_max = panels.iter().flat_map(|s| s.lines.values().flatten().map(|p| p.1)).fold(0.0, f64::max);
    let caption = "How much loss each architecture gives up away from its best learning rate and batch size: \
                   the final validation loss over the best configuration at the same size and budget, in %, at \
                   the largest budget trained on a grid (one colour per size, solid for the smallest batch, \
                   dashed for larger ones). Each title gives the mean and largest excess over every size and \
                   budget of the grid, and how many runs diverged; the panels share their y axis."
        .to_string();
    Ok(Made::Fig(render(
        "lr_batch_sensitivity",
        "LR × batch sensitivity, dense vs MoE",
        caption,
        &Grid(SensitivityPanels { panels, y_max }),
        false,
    )?))
}

fn grid_of(ctx: &Ctx, group: &str) -> Option<Sensitivity> {
    let rows: Vec<&ResultRow> =
        ctx.input.results.iter().filter(|r| group_of(r) == group && !r.target && !is_fine_tuning(r)).collect();
    let batch = |r: &ResultRow| (r.batch_size * r.seq_len) as f64;
    let mut cells: BTreeMap<(u64, u64), Vec<&ResultRow>> = BTreeMap::new();
    for r in &rows {
        cells.entry((r.n_params_active.to_bits(), r.tokens.to_bits())).or_default().push(r);
    }
    // Cells trained at two or more learning rates; in each, the best loss per (lr, batch) over
    // the other settings (warmup, seed).
    let mut excess: Vec<(f64, f64, f64, f64, f64)> = Vec::new(); // (size, budget, batch, lr, excess)
    let mut diverged = 0;
    for ((n, d), cell) in &cells {
        let done: Vec<&&ResultRow> = cell.iter().filter(|r| is_done(r)).collect();
        if levels(done.iter().map(|r| r.lr), usize::MAX).len() < 2 {
            continue;
        }
        diverged += cell.iter().filter(|r| r.status == Status::Diverged).count();
        let best = done.iter().filter_map(|r| r.val_loss).fold(f64::INFINITY, f64::min);
        let mut at: BTreeMap<(u64, u64), f64> = BTreeMap::new();
        for r in &done {
            let l = r.val_loss.unwrap_or(f64::NAN);
            let e = at.entry((batch(r).to_bits(), r.lr.to_bits())).or_insert(l);
            *e = e.min(l);
        }
        for ((b, lr), l) in at {
            excess.push((
                f64::from_bits(*n),
                f64::from_bits(*d),
                f64::from_bits(b),
                f64::from_bits(lr),
                100.0 * (l / best - 1.0),
            ));
        }
    }
    if excess.is_empty() {
        return None;
    }
    let budget = excess.iter().map(|e| e.1).fold(0.0, f64::max);
    let mut lines: BTreeMap<(u64, u64), Vec<(f64, f64)>> = BTreeMap::new();
    for e in excess.iter().filter(|e| e.1 == budget) {
        lines.entry((e.0.to_bits(), e.2.to_bits())).or_default().push((e.3, e.4));
    }
    for l in lines.values_mut() {
        l.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let distinct = |xs: Vec<f64>| levels(xs, usize::MAX);
    Some(Sensitivity {
        group: group.to_string(),
        sizes: distinct(lines.keys().map(|k| f64::from_bits(k.0)).collect()),
        batches: distinct(lines.keys().map(|k| f64::from_bits(k.1)).collect()),
        lines,
        budget,
        mean: excess.iter().map(|e| e.4).sum::<f64>() / excess.len() as f64,
        worst: excess.iter().map(|e| e.4).fold(0.0, f64::max),
        diverged,
    })
}

impl Panels for SensitivityPanels {
    fn count(&self) -> usize {
        self.panels.len()
    }

    fn panel<DB: DrawingBackend>(&self, i: usize, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let s = &self.panels[i];
        let lrs = s.lines.values().flatten().map(|p| p.0);
        let (x0, x1) = pad_log(log_extent(lrs).unwrap_or((1e-4, 1e-2)), 0.08);
        let (y0, y1) = pad_lin((0.0, self.y_max.max(1.0)), 0.06);
        // The grid's summary goes in the title: a box inside would sit on the lines.
        let title = format!(
            "{} · D = {} · excess mean {:.1} %, max {:.1} %, {} diverged",
            s.group,
            fmt_si(s.budget),
            s.mean,
            s.worst,
            s.diverged
        );
        let mut c = chart(
            area,
            &title,
            Scale::log(x0, x1, fmt_num),
            Scale::linear(y0, y1, fmt_pct),
            "learning rate",
            "loss over the best (%)",
        )?;
        for ((n, b), pts) in &s.lines {
            let (n, b) = (f64::from_bits(*n), f64::from_bits(*b));
            let color = style::level(level_of(n, &s.sizes), s.sizes.len());
            let dashed = level_of(b, &s.batches) > 0;
            line(&mut c, pts, color.stroke_width(2), dashed)?;
            marks(&mut c, pts, if dashed { Mark::Triangle } else { Mark::Circle }, 4, color.filled())?;
        }
        for (l, n) in s.sizes.iter().enumerate() {
            legend_entry(&mut c, &format!("N_active = {}", fmt_si(*n)), style::level(l, s.sizes.len()), None, true)?;
        }
        for (k, b) in s.batches.iter().enumerate() {
            let mark = if k > 0 { Mark::Triangle } else { Mark::Circle };
            legend_entry(&mut c, &format!("batch {} tokens", fmt_si(*b)), style::TEXT, Some(mark), false)?;
        }
        legend(&mut c, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}
