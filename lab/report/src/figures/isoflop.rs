//! IsoFLOP profiles (Chinchilla Approach 2): loss against N at fixed compute, the fitted
//! parabola in ln N, and its minimum.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{chart, geomspace, interval, legend, legend_entry, line, marks, Ctx, Made, Mark};
use crate::axes::{extent, fmt_num, fmt_pow10, fmt_si, log_extent, pad_lin, pad_log, Scale};
use crate::render::{render, Grid, Panels};
use crate::style;

struct Iso<'a> {
    groups: Vec<(String, &'a codescale_fit::IsoFlopFit)>,
}

pub fn build(ctx: &Ctx) -> Result<Vec<Made>> {
    let groups: Vec<(String, &codescale_fit::IsoFlopFit)> = ctx
        .groups
        .iter()
        .filter_map(|g| {
            g.fit.and_then(|f| f.isoflop.as_ref()).filter(|i| !i.budgets.is_empty()).map(|i| (g.name.clone(), i))
        })
        .collect();
    if groups.is_empty() {
        return Ok(vec![Made::Skip(
            "IsoFLOP profiles: the sweep has no fixed-compute budgets (no IsoFLOP fit).".into(),
        )]);
    }
    let caption = "IsoFLOP profiles: at each fixed compute budget C (one colour each), final loss against model \
                   size N, with the parabola in ln N fitted through them; the ringed point is its minimum, \
                   the compute-optimal N for that budget."
        .to_string();
    Ok(vec![Made::Fig(render("isoflop", "IsoFLOP profiles", caption, &Grid(Iso { groups }), false)?)])
}

fn parabola(c: &[f64; 3], n: f64) -> f64 {
    let x = n.ln();
    c[0] + c[1] * x + c[2] * x * x
}

impl Panels for Iso<'_> {
    fn count(&self) -> usize {
        self.groups.len()
    }

    fn panel<DB: DrawingBackend>(&self, i: usize, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (name, iso) = &self.groups[i];
        let all_n = iso.budgets.iter().flat_map(|b| b.points.iter().map(|p| p.n).chain([b.n_opt]));
        let (x0, x1) = pad_log(log_extent(all_n).unwrap_or((1.0, 10.0)), 0.1);
        let losses =
            iso.budgets.iter().flat_map(|b| b.points.iter().map(|p| p.loss).chain([parabola(&b.coeffs, b.n_opt)]));
        let (y0, y1) = pad_lin(extent(losses).unwrap_or((1.0, 2.0)), 0.1);
        let title = format!("{name} · N_opt ∝ C^{}{}", fmt_num(iso.a.value), interval(&iso.a, fmt_num));
        let mut c = chart(
            area,
            &title,
            Scale::log(x0, x1, fmt_si),
            Scale::linear(y0, y1, fmt_num),
            "model size N (parameters)",
            "final val loss (nats/token)",
        )?;
        let nb = iso.budgets.len();
        let mut budgets: Vec<&codescale_fit::IsoFlopBudget> = iso.budgets.iter().collect();
        budgets.sort_by(|a, b| a.flops.total_cmp(&b.flops));
        for (i, b) in budgets.iter().enumerate() {
            let color = style::level(i, nb);
            let (lo, hi) = log_extent(b.points.iter().map(|p| p.n).chain([b.n_opt])).unwrap_or((x0, x1));
            let curve: Vec<(f64, f64)> =
                geomspace(lo / 1.3, hi * 1.3, 64).into_iter().map(|n| (n, parabola(&b.coeffs, n))).collect();
            line(&mut c, &curve, color.stroke_width(2), false)?;
            let pts: Vec<(f64, f64)> = b.points.iter().map(|p| (p.n, p.loss)).collect();
            marks(&mut c, &pts, Mark::Circle, 5, color.filled())?;
            let min = [(b.n_opt, parabola(&b.coeffs, b.n_opt))];
            marks(&mut c, &min, Mark::Circle, 9, style::TEXT.stroke_width(2))?;
            legend_entry(&mut c, &format!("C = {}", fmt_pow10(b.flops)), color, Some(Mark::Circle), true)?;
        }
        legend(&mut c, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}
