//! Training curves: loss against tokens seen, one line per trial, coloured by model size, one
//! panel per group.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{chart, legend, legend_entry, line, marks, Ctx, Made, Mark};
use crate::axes::{fmt_num, fmt_si, log_extent, pad_log, Scale};
use crate::data::{group_of, level_of, levels};
use crate::render::{render, Grid, Panels};
use crate::style;

/// More points than this per trial add nothing at 700 px wide.
const MAX_POINTS: usize = 300;

struct Trace {
    n: f64,
    train: Vec<(f64, f64)>,
    val: Vec<(f64, f64)>,
}

struct Curves {
    panels: Vec<(String, Vec<Trace>)>,
    n_levels: Vec<f64>,
    x: Scale,
    y: Scale,
}

pub fn build(ctx: &Ctx) -> Result<Vec<Made>> {
    let rows: HashMap<&str, &codescale_core::ResultRow> =
        ctx.input.results.iter().map(|r| (r.trial_id.as_str(), r)).collect();
    let mut by_group: BTreeMap<String, Vec<Trace>> = BTreeMap::new();
    for (id, pts) in &ctx.input.curves {
        let row = rows.get(id.as_str());
        let ok = |t: f64, l: f64| t > 0.0 && l > 0.0 && t.is_finite() && l.is_finite();
        let mut train: Vec<(f64, f64)> =
            pts.iter().filter(|p| ok(p.tokens, p.train_loss)).map(|p| (p.tokens, p.train_loss)).collect();
        if train.len() > MAX_POINTS {
            let step = train.len().div_ceil(MAX_POINTS);
            let last = *train.last().unwrap();
            train = train.into_iter().step_by(step).collect();
            if train.last() != Some(&last) {
                train.push(last);
            }
        }
        let val: Vec<(f64, f64)> =
            pts.iter().filter_map(|p| p.val_loss.filter(|l| ok(p.tokens, *l)).map(|l| (p.tokens, l))).collect();
        if train.len() < 2 && val.is_empty() {
            continue;
        }
        let group = row.map(|r| group_of(r)).unwrap_or_else(|| "trials missing from results".into());
        by_group.entry(group).or_default().push(Trace { n: row.map(|r| r.n_params).unwrap_or(f64::NAN), train, val });
    }
    if by_group.is_empty() {
        return Ok(vec![Made::Skip("Training curves: no trial has a recorded loss curve.".into())]);
    }
    let all = || by_group.values().flatten();
    let n_levels = levels(all().map(|t| t.n), 8);
    let (x0, x1) = log_extent(all().flat_map(|t| t.train.iter().chain(&t.val).map(|p| p.0))).unwrap_or((1.0, 10.0));
    // The first steps sit near ln(vocab) and would squash the part worth reading, so the top
    // of the axis is the 98th percentile and the early curve leaves through the top edge.
    let mut losses: Vec<f64> = all().flat_map(|t| t.train.iter().chain(&t.val).map(|p| p.1)).collect();
    losses.sort_by(f64::total_cmp);
    let lo = losses[0];
    let q = losses[((losses.len() - 1) as f64 * 0.98) as usize];
    let max_val = all().flat_map(|t| t.val.iter().map(|p| p.1)).fold(0.0, f64::max);
    let (y0, y1) = pad_log((lo, q.max(max_val).max(lo * 1.05)), 0.04);
    let (x0, x1) = pad_log((x0, x1), 0.02);
    let curves = Curves {
        panels: by_group.into_iter().collect(),
        n_levels,
        x: Scale::log(x0, x1, fmt_si),
        y: Scale::log(y0, y1, fmt_num),
    };
    let caption = "Training loss (lines) and validation loss (dots) against tokens seen, one line per trial, \
                   coloured by model size N (dark = small, green = large). Log–log axes; the first steps, \
                   near the loss of a uniform guess, leave through the top edge."
        .to_string();
    Ok(vec![Made::Fig(render("training_curves", "Training curves", caption, &Grid(curves), false)?)])
}

impl Panels for Curves {
    fn count(&self) -> usize {
        self.panels.len()
    }

    fn panel<DB: DrawingBackend>(&self, i: usize, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let nl = self.n_levels.len();
        let (group, traces) = &self.panels[i];
        let mut c = chart(area, group, self.x.clone(), self.y.clone(), "tokens seen D", "loss (nats/token)")?;
        for t in traces {
            let color = if t.n.is_finite() { style::level(level_of(t.n, &self.n_levels), nl) } else { style::MUTED };
            line(&mut c, &t.train, color.mix(0.85).stroke_width(2), false)?;
            marks(&mut c, &t.val, Mark::Circle, 3, color.filled())?;
        }
        if i == 0 {
            for (j, n) in self.n_levels.iter().enumerate() {
                legend_entry(&mut c, &format!("N = {}", fmt_si(*n)), style::level(j, nl), None, true)?;
            }
            legend(&mut c, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    }
}
