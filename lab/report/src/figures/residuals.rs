//! Residuals of the fit per point, and the extrapolation check: a law that is right only
//! inside its data shows structure here before it misleads a budget decision.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{chart, legend, legend_entry, line, marks, Ctx, Made, Mark};
use crate::axes::{fmt_num, fmt_pct, fmt_si, log_extent, pad_log, Scale};
use crate::data::{level_of, levels, Group};
use crate::render::{render, Grid, Panels};
use crate::style;

struct Residuals<'a> {
    groups: Vec<&'a Group<'a>>,
}

fn rel(loss: f64, pred: f64) -> f64 {
    100.0 * (loss / pred - 1.0)
}

pub fn build(ctx: &Ctx) -> Result<Vec<Made>> {
    let groups: Vec<&Group> =
        ctx.groups.iter().filter(|g| g.law().is_some() && g.points.iter().any(|p| p.predicted.is_some())).collect();
    if groups.is_empty() {
        return Ok(vec![Made::Skip("Residuals: no group has a fitted law with predictions.".into())]);
    }
    let caption = "Relative residual of each fitted point, observed / predicted − 1, against model size, one \
                   colour per token budget D. Red crosses: the extrapolation check, points of the largest \
                   models predicted by a refit that left them out."
        .to_string();
    Ok(vec![Made::Fig(render("residuals", "Residuals of the fit", caption, &Grid(Residuals { groups }), false)?)])
}

impl Panels for Residuals<'_> {
    fn count(&self) -> usize {
        self.groups.len()
    }

    fn panel<DB: DrawingBackend>(&self, i: usize, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let g = &self.groups[i];
        let law = g.law().unwrap();
        let pts: Vec<(f64, f64, f64)> = g
            .points
            .iter()
            .filter_map(|p| p.predicted.filter(|q| *q > 0.0).map(|q| (p.n, p.d, rel(p.loss, q))))
            .collect();
        let extra = g.fit.and_then(|f| f.extrapolation.as_ref());
        let held: Vec<(f64, f64)> = extra
            .map(|e| {
                e.points
                    .iter()
                    .filter_map(|p| p.predicted.filter(|q| *q > 0.0).map(|q| (p.n, rel(p.loss, q))))
                    .collect()
            })
            .unwrap_or_default();
        let ns = pts.iter().map(|p| p.0).chain(held.iter().map(|p| p.0));
        let (x0, x1) = pad_log(log_extent(ns).unwrap_or((1.0, 10.0)), 0.08);
        let m = pts.iter().map(|p| p.2.abs()).chain(held.iter().map(|p| p.1.abs())).fold(0.5, f64::max) * 1.3;
        let title = format!("{} · RMSE(ln L) = {}", g.name, fmt_num(law.rmse_log));
        let mut c = chart(
            area,
            &title,
            Scale::log(x0, x1, fmt_si),
            Scale::linear(-m, m, fmt_pct),
            "model size N (parameters)",
            "observed / predicted − 1",
        )?;
        line(&mut c, &[(x0, 0.0), (x1, 0.0)], style::MUTED.stroke_width(2), true)?;
        let lv = levels(pts.iter().map(|p| p.1), 6);
        for (i, d) in lv.iter().enumerate() {
            let color = style::level(i, lv.len());
            let mine: Vec<(f64, f64)> = pts.iter().filter(|p| level_of(p.1, &lv) == i).map(|p| (p.0, p.2)).collect();
            marks(&mut c, &mine, Mark::Circle, 5, color.filled())?;
            legend_entry(&mut c, &format!("D = {}", fmt_si(*d)), color, Some(Mark::Circle), false)?;
        }
        if let (Some(e), false) = (extra, held.is_empty()) {
            marks(&mut c, &held, Mark::Cross, 7, style::ALERT.stroke_width(3))?;
            legend_entry(
                &mut c,
                &format!("held out, mean |err| {}", fmt_pct(100.0 * e.mean_abs_rel_error)),
                style::ALERT,
                Some(Mark::Cross),
                false,
            )?;
        }
        legend(&mut c, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}
