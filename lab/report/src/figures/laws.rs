//! Final loss against N (one series per D) and against D (one series per N), with the fitted
//! law drawn through each series: the figure that shows whether the law fits.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{chart, geomspace, interval, legend, legend_entry, line, marks, note, Ctx, Made, Mark};
use crate::axes::{fmt_num, fmt_si, log_extent, pad_log, Scale};
use crate::data::{law_loss, level_of, levels, Group, Pt};
use crate::render::{render, Grid, Panels};
use crate::style;

#[derive(Clone, Copy, PartialEq)]
enum Along {
    N,
    D,
}

type Coord = fn(&Pt) -> f64;

/// Which loss the figures show.
#[derive(Clone, Copy, PartialEq)]
enum Loss {
    /// Next-token validation loss.
    Causal,
    /// Fill-in-the-middle trials' loss on the middle given prefix and suffix.
    Infilling,
}

struct LossVs<'a> {
    along: Along,
    loss: Loss,
    groups: Vec<&'a Group<'a>>,
}

pub fn build(ctx: &Ctx) -> Result<Vec<Made>> {
    figures(ctx.groups.iter().collect(), Loss::Causal)
}

/// The same figures for the infilling-loss law, when the sweep has fill-in-the-middle trials.
pub fn build_infilling(ctx: &Ctx) -> Result<Vec<Made>> {
    let Some(fit) = &ctx.input.fim_fit else { return Ok(vec![]) };
    let colors = crate::data::Colors::new(ctx.input);
    let groups = crate::data::fitted_groups(Some(fit), &colors);
    figures(groups.iter().collect(), Loss::Infilling)
}

fn figures(groups: Vec<&Group>, loss: Loss) -> Result<Vec<Made>> {
    let groups: Vec<&Group> = groups.into_iter().filter(|g| g.points.len() >= 2).collect();
    if groups.is_empty() {
        return Ok(vec![Made::Skip(match loss {
            Loss::Causal => "Loss vs N and loss vs D: no group has two finished trials with a validation loss.".into(),
            Loss::Infilling => "Infilling loss vs N and D: no FIM group has two finished trials.".into(),
        })]);
    }
    let n = LossVs { along: Along::N, loss, groups: groups.clone() };
    let d = LossVs { along: Along::D, loss, groups };
    if loss == Loss::Infilling {
        let cap = |along: &str| {
            format!(
                "Infilling loss (nats per token of the middle span, given prefix and suffix in PSM order) of the \
                 fill-in-the-middle trials against {along}, with the law fitted to it the way the causal loss's is \
                 (same forms, same choice by out-of-sample error). Log–log axes."
            )
        };
        return Ok(vec![
            Made::Fig(render("infill_loss_vs_n", "Infilling loss vs model size", cap("model size N"), &Grid(n), true)?),
            Made::Fig(render(
                "infill_loss_vs_d",
                "Infilling loss vs training tokens",
                cap("tokens D"),
                &Grid(d),
                true,
            )?),
        ]);
    }
    let cap_n = "Final validation loss against model size N, one colour per token budget D. Lines: the \
                 fitted law L(N, D) = E + A/N^α + B/D^β at each D; dashed grey: its D → ∞ limit E + A/N^α. \
                 Vertical bars through points: the spread (± one standard deviation) of replicates; black \
                 triangles: held-out targets, with the law's 95 % prediction interval. Log–log axes."
        .to_string();
    let cap_d = "Final validation loss against training tokens D, one colour per model size N. Lines: the \
                 fitted law at each N; dashed grey: its N → ∞ limit E + B/D^β. Log–log axes."
        .to_string();
    Ok(vec![
        Made::Fig(render("loss_vs_n", "Loss vs model size (per token budget)", cap_n, &Grid(n), true)?),
        Made::Fig(render("loss_vs_d", "Loss vs training tokens (per model size)", cap_d, &Grid(d), true)?),
    ])
}

impl Panels for LossVs<'_> {
    fn count(&self) -> usize {
        self.groups.len()
    }

    fn panel<DB: DrawingBackend>(&self, i: usize, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let g = self.groups[i];
        // x is the plotted variable, s the one that picks the series.
        let (xv, sv): (Coord, Coord) = match self.along {
            Along::N => (|p| p.n, |p| p.d),
            Along::D => (|p| p.d, |p| p.n),
        };
        let lv = levels(g.points.iter().map(sv), 6);
        let nl = lv.len();
        let targets = g.fit.map(|f| f.targets.as_slice()).unwrap_or_default();
        let target_x = |t: &codescale_fit::TargetCheck| if self.along == Along::N { t.n } else { t.d };
        let (x0, x1) = pad_log(
            log_extent(g.points.iter().map(xv).chain(targets.iter().map(target_x))).unwrap_or((1.0, 10.0)),
            0.08,
        );
        let law = g.law();
        let xs = geomspace(x0, x1, 64);
        let at = |x: f64, s: f64| match self.along {
            Along::N => (x, s),
            Along::D => (s, x),
        };
        let mut ys: Vec<f64> =
            g.points
                .iter()
                .map(|p| p.loss)
                .chain(targets.iter().flat_map(|t| {
                    [t.measured, t.predicted.lo.unwrap_or(t.measured), t.predicted.hi.unwrap_or(t.measured)]
                }))
                .collect();
        if let Some(law) = law {
            for s in &lv {
                ys.extend(xs.iter().map(|&x| {
                    let (n, d) = at(x, *s);
                    law_loss(law, n, d)
                }));
            }
        }
        let (y0, y1) = pad_log(log_extent(ys).unwrap_or((1.0, 10.0)), 0.06);
        let title = match (law, g.fit.and_then(|f| f.message.as_deref())) {
            (Some(_), _) => g.name.clone(),
            (None, Some(msg)) => format!("{} — no fit: {}", g.name, crate::summary::unfitted_reason(&g.name, msg)),
            (None, None) => format!("{} — no fit", g.name),
        };
        let (xlabel, slabel) = match self.along {
            Along::N => ("model size N (parameters)", "D"),
            Along::D => ("training tokens D", "N"),
        };
        let mut c = chart(
            area,
            &title,
            Scale::log(x0, x1, fmt_si),
            Scale::log(y0, y1, fmt_num),
            xlabel,
            match self.loss {
                Loss::Causal => "final val loss (nats/token)",
                Loss::Infilling => "final infilling loss (nats/token)",
            },
        )?;
        if let Some(law) = law {
            let limit: Vec<(f64, f64)> = xs
                .iter()
                .map(|&x| match self.along {
                    Along::N => (x, law.e.value + law.a.value / x.powf(law.alpha.value)),
                    Along::D => (x, law.e.value + law.b.value / x.powf(law.beta.value)),
                })
                .collect();
            line(&mut c, &limit, style::MUTED.stroke_width(2), true)?;
        }
        for (i, s) in lv.iter().enumerate() {
            let color = style::level(i, nl);
            if let Some(law) = law {
                let curve: Vec<(f64, f64)> = xs
                    .iter()
                    .map(|&x| {
                        let (n, d) = at(x, *s);
                        (x, law_loss(law, n, d))
                    })
                    .collect();
                line(&mut c, &curve, color.stroke_width(2), false)?;
            }
            let pts: Vec<(f64, f64)> =
                g.points.iter().filter(|p| level_of(sv(p), &lv) == i).map(|p| (xv(p), p.loss)).collect();
            marks(&mut c, &pts, Mark::Circle, 5, color.filled())?;
            marks(&mut c, &pts, Mark::Circle, 5, WHITE.stroke_width(1))?;
            // Replicates: the seed spread (mean ± sd) as an error bar.
            for r in g
                .fit
                .map(|f| f.replicates.as_slice())
                .unwrap_or_default()
                .iter()
                .filter(|r| level_of(if self.along == Along::N { r.d } else { r.n }, &lv) == i)
            {
                let x = if self.along == Along::N { r.n } else { r.d };
                line(&mut c, &[(x, r.mean - r.sd), (x, r.mean + r.sd)], color.stroke_width(2), false)?;
            }
            legend_entry(&mut c, &format!("{slabel} = {}", fmt_si(*s)), color, Some(Mark::Circle), law.is_some())?;
        }
        // Held-out targets: measured (triangle) against the 95 % prediction interval (bar).
        for t in targets {
            let x = target_x(t);
            if let (Some(lo), Some(hi)) = (t.predicted.lo, t.predicted.hi) {
                line(&mut c, &[(x, lo), (x, hi)], style::TEXT.stroke_width(2), false)?;
            }
            marks(&mut c, &[(x, t.measured)], Mark::Triangle, 7, style::TEXT.filled())?;
        }
        if !targets.is_empty() {
            legend_entry(
                &mut c,
                "held-out target (bar: 95 % prediction interval)",
                style::TEXT,
                Some(Mark::Triangle),
                false,
            )?;
        }
        if law.is_some() {
            legend_entry(&mut c, if self.along == Along::N { "D → ∞" } else { "N → ∞" }, style::MUTED, None, true)?;
        }
        legend(&mut c, SeriesLabelPosition::UpperRight)?;
        if let Some(law) = law {
            let lines = match self.along {
                Along::N => vec![
                    format!("α_N = {}{}", fmt_num(law.alpha_n.value), interval(&law.alpha_n, fmt_num)),
                    format!("L∞ = {}{}", fmt_num(law.l_inf.value), interval(&law.l_inf, fmt_num)),
                ],
                Along::D => vec![
                    format!("α_D = {}{}", fmt_num(law.alpha_d.value), interval(&law.alpha_d, fmt_num)),
                    format!("L∞ = {}{}", fmt_num(law.l_inf.value), interval(&law.l_inf, fmt_num)),
                ],
            };
            note(&c, &lines)?;
        }
        Ok(())
    }
}
