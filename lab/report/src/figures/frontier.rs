//! The compute-optimal frontier: how many parameters and tokens each budget should get, with
//! the bootstrap interval as a band and the trials for scale.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{chart, geomspace, interval, legend, legend_entry, line, marks, Ctx, Made, Mark};
use crate::axes::{fmt_num, fmt_pow10, fmt_si, log_extent, pad_log, Scale};
use crate::data::{group_of, is_done, optimal};
use crate::render::{render, Plot};
use crate::style;

struct Series {
    name: String,
    color: RGBColor,
    /// (C, value, lo, hi) for N_opt and D_opt.
    n: Vec<(f64, f64, Option<f64>, Option<f64>)>,
    d: Vec<(f64, f64, Option<f64>, Option<f64>)>,
    exps: Option<(String, String)>,
    trials_n: Vec<(f64, f64)>,
    trials_d: Vec<(f64, f64)>,
    iso_n: Vec<(f64, f64)>,
    iso_d: Vec<(f64, f64)>,
}

struct Frontier {
    series: Vec<Series>,
}

pub fn build(ctx: &Ctx) -> Result<Vec<Made>> {
    let mut series = Vec::new();
    for g in &ctx.groups {
        let alloc = g.fit.and_then(|f| f.allocation.as_ref());
        let (mut n, mut d) = (Vec::new(), Vec::new());
        if let Some(a) = alloc.filter(|a| a.budgets.len() >= 2) {
            for b in &a.budgets {
                n.push((b.flops, b.n_opt.value, b.n_opt.lo, b.n_opt.hi));
                d.push((b.flops, b.d_opt.value, b.d_opt.lo, b.d_opt.hi));
            }
        } else if let Some(law) = g.law() {
            let (c0, c1) = log_extent(g.points.iter().map(|p| 6.0 * p.n * p.d)).unwrap_or((1e12, 1e15));
            for c in geomspace(c0, c1 * 1e3, 24) {
                let (on, od) = optimal(law, c);
                n.push((c, on, None, None));
                d.push((c, od, None, None));
            }
        } else {
            continue;
        }
        n.retain(|p| p.0 > 0.0 && p.1 > 0.0);
        d.retain(|p| p.0 > 0.0 && p.1 > 0.0);
        n.sort_by(|a, b| a.0.total_cmp(&b.0));
        d.sort_by(|a, b| a.0.total_cmp(&b.0));
        let exps = alloc.map(|a| {
            (
                format!("N_opt ∝ C^{}{}", fmt_num(a.a.value), interval(&a.a, fmt_num)),
                format!("D_opt ∝ C^{}{}", fmt_num(a.b.value), interval(&a.b, fmt_num)),
            )
        });
        let rows = ctx.input.results.iter().filter(|r| is_done(r) && group_of(r) == g.name && r.flops > 0.0);
        let (trials_n, trials_d) = rows.map(|r| ((r.flops, r.n_params), (r.flops, r.tokens))).unzip();
        let iso = g.fit.and_then(|f| f.isoflop.as_ref());
        let iso_n = iso.map(|i| i.budgets.iter().map(|b| (b.flops, b.n_opt)).collect()).unwrap_or_default();
        let iso_d = iso.map(|i| i.budgets.iter().map(|b| (b.flops, b.d_opt)).collect()).unwrap_or_default();
        series.push(Series {
            name: g.name.clone(),
            color: style::categorical(g.color),
            n,
            d,
            exps,
            trials_n,
            trials_d,
            iso_n,
            iso_d,
        });
    }
    if series.is_empty() {
        return Ok(vec![Made::Skip("Compute-optimal frontier: no group has a fitted law or allocation.".into())]);
    }
    let caption = "Compute-optimal model size N_opt and token count D_opt against the compute budget C, one \
                   colour per group; the shaded band is the 95 % bootstrap interval. Grey dots: the trials \
                   that were run (their own N or D at their compute), to show how far the frontier \
                   extrapolates. Crosses: IsoFLOP minima where the sweep had fixed budgets."
        .to_string();
    Ok(vec![Made::Fig(render("compute_optimal", "Compute-optimal frontier", caption, &Frontier { series }, true)?)])
}

type Picked<'s> = (&'s [(f64, f64, Option<f64>, Option<f64>)], &'s [(f64, f64)], &'s [(f64, f64)]);

/// Left panel: parameters; right panel: tokens.
fn pick(s: &Series, k: usize) -> Picked<'_> {
    if k == 0 {
        (&s.n, &s.trials_n, &s.iso_n)
    } else {
        (&s.d, &s.trials_d, &s.iso_d)
    }
}

impl Plot for Frontier {
    fn size(&self) -> (u32, u32) {
        (style::FIG_W, style::TITLE_H + style::PANEL_H + 60)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let areas = root.split_evenly((1, 2));
        for (k, area) in areas.iter().enumerate() {
            let xs = self.series.iter().flat_map(|s| {
                let (f, t, i) = pick(s, k);
                f.iter().map(|p| p.0).chain(t.iter().map(|p| p.0)).chain(i.iter().map(|p| p.0)).collect::<Vec<_>>()
            });
            let ys = self.series.iter().flat_map(|s| {
                let (f, t, i) = pick(s, k);
                f.iter()
                    .flat_map(|p| [Some(p.1), p.2, p.3])
                    .flatten()
                    .chain(t.iter().map(|p| p.1))
                    .chain(i.iter().map(|p| p.1))
                    .collect::<Vec<_>>()
            });
            let (x0, x1) = pad_log(log_extent(xs).unwrap_or((1.0, 10.0)), 0.04);
            let (y0, y1) = pad_log(log_extent(ys).unwrap_or((1.0, 10.0)), 0.06);
            let (title, ylabel) = if k == 0 {
                ("N_opt(C)", "optimal model size N (parameters)")
            } else {
                ("D_opt(C)", "optimal training tokens D")
            };
            let mut c = chart(
                area,
                title,
                Scale::log(x0, x1, fmt_pow10),
                Scale::log(y0, y1, fmt_si),
                "compute C (FLOPs)",
                ylabel,
            )?;
            let mut any_band = false;
            for s in &self.series {
                let (f, _, _) = pick(s, k);
                if f.iter().all(|p| p.2.is_some() && p.3.is_some()) && f.len() >= 2 {
                    any_band = true;
                    let mut poly: Vec<(f64, f64)> = f.iter().map(|p| (p.0, p.2.unwrap())).collect();
                    poly.extend(f.iter().rev().map(|p| (p.0, p.3.unwrap())));
                    poly.retain(|p| {
                        c.as_coord_spec().x_spec().contains(p.0) && c.as_coord_spec().y_spec().contains(p.1)
                    });
                    c.draw_series(std::iter::once(Polygon::new(poly, s.color.mix(0.18).filled())))?;
                }
            }
            let mut any_trials = false;
            let mut any_iso = false;
            for s in &self.series {
                let (_, t, _) = pick(s, k);
                any_trials |= !t.is_empty();
                marks(&mut c, t, Mark::Circle, 3, style::MISSING.filled())?;
            }
            for s in &self.series {
                let (f, _, iso) = pick(s, k);
                let pts: Vec<(f64, f64)> = f.iter().map(|p| (p.0, p.1)).collect();
                line(&mut c, &pts, s.color.stroke_width(3), false)?;
                marks(&mut c, &pts, Mark::Circle, 4, s.color.filled())?;
                any_iso |= !iso.is_empty();
                marks(&mut c, iso, Mark::Cross, 7, s.color.stroke_width(3))?;
                let label = match &s.exps {
                    Some((en, ed)) => format!("{}: {}", s.name, if k == 0 { en } else { ed }),
                    None => s.name.clone(),
                };
                legend_entry(&mut c, &label, s.color, Some(Mark::Circle), true)?;
            }
            if any_band {
                legend_entry(&mut c, "95 % interval", style::MUTED, Some(Mark::Band), false)?;
            }
            if any_trials {
                legend_entry(&mut c, "trials run", style::MISSING, Some(Mark::Circle), false)?;
            }
            if any_iso {
                legend_entry(&mut c, "IsoFLOP minima", style::TEXT, Some(Mark::Cross), false)?;
            }
            legend(&mut c, SeriesLabelPosition::UpperLeft)?;
        }
        Ok(())
    }
}
