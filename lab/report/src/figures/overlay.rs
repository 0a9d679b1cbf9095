//! Every group's fitted law on shared axes, so languages compare at a glance: the model-size
//! term, the data term, and the loss reachable at each compute budget.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{chart, geomspace, legend, legend_entry, line, Ctx, Made};
use crate::axes::{fmt_num, fmt_pow10, fmt_si, log_extent, pad_log, Scale};
use crate::data::{law_loss, optimal, Group};
use crate::render::{render, Plot};
use crate::style;

/// Curves run this far past the largest trained model (or budget), dashed beyond the data.
const EXTEND: f64 = 100.0;

struct Overlay<'a> {
    groups: Vec<&'a Group<'a>>,
    n: (f64, f64),
    d: (f64, f64),
    c: (f64, f64),
}

pub fn build(ctx: &Ctx) -> Result<Vec<Made>> {
    let groups: Vec<&Group> = ctx.groups.iter().filter(|g| g.law().is_some()).collect();
    if groups.len() < 2 {
        return Ok(vec![Made::Skip(format!(
            "Law overlay: needs fitted laws for at least two groups, found {}.",
            groups.len()
        ))]);
    }
    let all = || groups.iter().flat_map(|g| g.points.iter());
    let n = log_extent(all().map(|p| p.n)).unwrap_or((1.0, 10.0));
    let d = log_extent(all().map(|p| p.d)).unwrap_or((1.0, 10.0));
    let c = log_extent(all().map(|p| 6.0 * p.n * p.d)).unwrap_or((1.0, 10.0));
    let o = Overlay { groups, n, d, c };
    let caption = "Fitted laws of every group on shared axes. Left: the model-size term with unlimited data, \
                   E + A/N^α. Middle: the data term with an unlimited model, E + B/D^β. Right: the loss at the \
                   compute-optimal split of each budget C = 6ND. Solid over the range of the trials, dashed \
                   where the law extrapolates (up to 100× beyond)."
        .to_string();
    Ok(vec![Made::Fig(render("law_overlay", "Fitted laws, all groups", caption, &o, true)?)])
}

impl Plot for Overlay<'_> {
    fn size(&self) -> (u32, u32) {
        (style::FIG_W + 200, style::TITLE_H + style::PANEL_H)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let areas = root.split_evenly((1, 3));
        type Term = fn(&codescale_fit::LawFit, f64) -> f64;
        type Panel<'s> = (&'s str, &'s str, (f64, f64), Term, fn(f64) -> String);
        let panels: [Panel; 3] = [
            (
                "L(N) with D → ∞",
                "model size N (parameters)",
                self.n,
                |l, n| l.e.value + l.a.value / n.powf(l.alpha.value),
                fmt_si,
            ),
            (
                "L(D) with N → ∞",
                "training tokens D",
                self.d,
                |l, d| l.e.value + l.b.value / d.powf(l.beta.value),
                fmt_si,
            ),
            (
                "compute-optimal L(C)",
                "compute C (FLOPs)",
                self.c,
                |l, c| {
                    let (n, d) = optimal(l, c);
                    law_loss(l, n, d)
                },
                fmt_pow10,
            ),
        ];
        for (i, (area, (title, xlabel, range, term, xfmt))) in areas.iter().zip(panels).enumerate() {
            let (x0, x1) = pad_log((range.0, range.1 * EXTEND), 0.03);
            let xs = geomspace(x0, x1, 96);
            let ys = self.groups.iter().flat_map(|g| {
                let law = g.law().unwrap();
                xs.iter().map(move |&x| term(law, x))
            });
            let (y0, y1) = pad_log(log_extent(ys).unwrap_or((1.0, 10.0)), 0.05);
            let mut c =
                chart(area, title, Scale::log(x0, x1, xfmt), Scale::log(y0, y1, fmt_num), xlabel, "loss (nats/token)")?;
            for g in &self.groups {
                let law = g.law().unwrap();
                let color = style::categorical(g.color);
                let inside: Vec<(f64, f64)> =
                    xs.iter().filter(|&&x| x <= range.1 * 1.0001).map(|&x| (x, term(law, x))).collect();
                let beyond: Vec<(f64, f64)> =
                    xs.iter().filter(|&&x| x >= range.1 * 0.97).map(|&x| (x, term(law, x))).collect();
                line(&mut c, &inside, color.stroke_width(3), false)?;
                line(&mut c, &beyond, color.stroke_width(3), true)?;
                if i == 0 {
                    legend_entry(&mut c, &g.name, color, None, true)?;
                }
            }
            if i == 0 {
                legend(&mut c, SeriesLabelPosition::UpperRight)?;
            }
        }
        Ok(())
    }
}
