//! Hyperparameter sweeps: a learning-rate × batch-size heatmap of final loss per budget, and
//! loss against learning rate with one line per warmup.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{chart, legend, legend_entry, line, marks, Ctx, Made, Mark};
use crate::axes::{extent, fmt_count, fmt_num, log_extent, pad_lin, pad_log, Scale};
use crate::data::{hyper_slices, level_of, HyperSlice};
use crate::render::{render, Grid, Panels};
use crate::style;

/// More panels than this stop being readable; the rest are named in the caption.
const MAX_PANELS: usize = 6;

struct Heatmaps<'a> {
    slices: Vec<&'a HyperSlice>,
}

struct LrLines<'a> {
    slices: Vec<&'a HyperSlice>,
}

pub fn build(ctx: &Ctx) -> Result<Vec<Made>> {
    let slices = hyper_slices(ctx.input);
    let mut out = Vec::new();
    let grid: Vec<&HyperSlice> = slices.iter().filter(|s| s.lrs().len() >= 2 && s.batches().len() >= 2).collect();
    if grid.is_empty() {
        out.push(Made::Skip(
            "LR × batch heatmap: no budget was trained at two or more learning rates and batch sizes.".into(),
        ));
    } else {
        let mut caption = "Final validation loss for each learning rate × batch size at one budget (best warmup \
                           per cell). Brighter is lower loss; the outlined cell is the best; grey cells were not \
                           run, red ‘div.’ cells diverged."
            .to_string();
        if grid.len() > MAX_PANELS {
            caption.push_str(&format!(" Showing {MAX_PANELS} of {} slices.", grid.len()));
        }
        let h = Heatmaps { slices: grid.into_iter().take(MAX_PANELS).collect() };
        out.push(Made::Fig(render("hyper_heatmap", "Learning rate × batch size", caption, &Grid(h), false)?));
    }
    let lines: Vec<&HyperSlice> = slices.iter().filter(|s| s.lrs().len() >= 2).collect();
    if lines.is_empty() {
        out.push(Made::Skip("Loss vs learning rate: no budget was trained at two or more learning rates.".into()));
    } else {
        let mut caption = "Final validation loss against learning rate, one line per warmup length (best batch \
                           size at each point); the ringed point is the best configuration, red crosses at the \
                           top mark learning rates that diverged."
            .to_string();
        if lines.len() > MAX_PANELS {
            caption.push_str(&format!(" Showing {MAX_PANELS} of {} slices.", lines.len()));
        }
        let l = LrLines { slices: lines.into_iter().take(MAX_PANELS).collect() };
        out.push(Made::Fig(render("hyper_lr", "Loss vs learning rate, per warmup", caption, &Grid(l), false)?));
    }
    Ok(out)
}

impl Panels for Heatmaps<'_> {
    fn count(&self) -> usize {
        self.slices.len()
    }

    fn panel<DB: DrawingBackend>(&self, i: usize, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let s = &self.slices[i];
        heatmap(area, s)?;
        Ok(())
    }
}

fn heatmap<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, s: &HyperSlice) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let lrs = s.lrs();
    let bs = s.batches();
    let mut cell = vec![vec![f64::NAN; lrs.len()]; bs.len()];
    for p in s.points.iter().filter(|p| p.loss.is_finite()) {
        let (i, j) = (level_of(p.lr, &lrs), level_of(p.batch_tokens, &bs));
        if cell[j][i].is_nan() || p.loss < cell[j][i] {
            cell[j][i] = p.loss;
        }
    }
    let mut diverged = vec![vec![false; lrs.len()]; bs.len()];
    for &(lr, b) in &s.diverged {
        diverged[level_of(b, &bs)][level_of(lr, &lrs)] = true;
    }
    let mut finite: Vec<f64> = cell.iter().flatten().copied().filter(|v| v.is_finite()).collect();
    finite.sort_by(f64::total_cmp);
    let lo = finite.first().copied().unwrap_or(0.0);
    // Far-off cells (a bad learning rate) would wash out the differences near the optimum, so
    // the scale tops out at four times the median gap; those cells just saturate.
    let median = finite.get(finite.len() / 2).copied().unwrap_or(lo);
    let hi = finite.last().copied().unwrap_or(lo + 1.0).min(lo + 4.0 * (median - lo).max(1e-6)).max(lo + 1e-6);
    let color = |v: f64| style::viridis(1.0 - ((v - lo) / (hi - lo)).clamp(0.0, 1.0));
    let best = finite.first().copied();

    let (main, bar) = area.split_horizontally(area.dim_in_pixel().0 as i32 - 110);
    let x = Scale::categorical(lrs.iter().map(|v| fmt_num(*v)).collect());
    let y = Scale::categorical(bs.iter().map(|v| fmt_count(*v)).collect());
    let mut c = chart(&main, &s.title, x, y, "learning rate", "batch size (tokens)")?;
    let small = lrs.len() > 6 || bs.len() > 8;
    for (j, row) in cell.iter().enumerate() {
        for (i, &v) in row.iter().enumerate() {
            let (x, y) = (i as f64, j as f64);
            let rect = [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)];
            let (fill, label, text_color) = if v.is_finite() {
                let f = color(v);
                (f, format!("{v:.3}"), if style::is_dark(f) { WHITE } else { BLACK })
            } else if diverged[j][i] {
                (style::MISSING, "div.".to_string(), style::ALERT)
            } else {
                (style::GRID_LIGHT, "—".to_string(), style::MUTED)
            };
            c.draw_series(std::iter::once(Rectangle::new(rect, fill.filled())))?;
            c.draw_series(std::iter::once(Rectangle::new(rect, WHITE.stroke_width(2))))?;
            let size = if small { 13 } else { 16 };
            c.draw_series(std::iter::once(Text::new(
                label,
                (x, y),
                style::centered(style::font_color(size, text_color)),
            )))?;
            if Some(v) == best {
                let inset = [(x - 0.47, y - 0.47), (x + 0.47, y + 0.47)];
                c.draw_series(std::iter::once(Rectangle::new(inset, BLACK.stroke_width(3))))?;
            }
        }
    }
    // Colour bar with the same vertical margins as the panel so the two line up.
    let mut cb = ChartBuilder::on(&bar)
        .caption("loss", style::font(15))
        .margin(12)
        .margin_top(14)
        .margin_left(0)
        .x_label_area_size(60)
        .right_y_label_area_size(62)
        .build_cartesian_2d(Scale::linear(0.0, 1.0, |_| String::new()), Scale::linear(lo, hi, fmt_num))?;
    cb.configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .disable_x_axis()
        .axis_style(style::MUTED)
        .label_style(style::font(14))
        .draw()?;
    let steps = 64;
    cb.draw_series((0..steps).map(|k| {
        let a = lo + (hi - lo) * k as f64 / steps as f64;
        let b = lo + (hi - lo) * (k + 1) as f64 / steps as f64;
        Rectangle::new([(0.0, a), (1.0, b)], color((a + b) / 2.0).filled())
    }))?;
    Ok(())
}

impl Panels for LrLines<'_> {
    fn count(&self) -> usize {
        self.slices.len()
    }

    fn panel<DB: DrawingBackend>(&self, i: usize, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let s = &self.slices[i];
        let lrs = s.lrs();
        let warmups = s.warmups();
        let (x0, x1) = pad_log(log_extent(lrs.iter().copied()).unwrap_or((1e-4, 1e-2)), 0.08);
        let (y0, y1) = pad_lin(extent(s.points.iter().map(|p| p.loss)).unwrap_or((1.0, 2.0)), 0.12);
        let mut c = chart(
            area,
            &s.title,
            Scale::log(x0, x1, fmt_num),
            Scale::linear(y0, y1, fmt_num),
            "learning rate",
            "final val loss (nats/token)",
        )?;
        for (k, w) in warmups.iter().enumerate() {
            let color = style::categorical(k);
            let mut best_at: Vec<Option<f64>> = vec![None; lrs.len()];
            for p in s.points.iter().filter(|p| p.warmup_steps == *w && p.loss.is_finite()) {
                let i = level_of(p.lr, &lrs);
                best_at[i] = Some(best_at[i].map_or(p.loss, |b: f64| b.min(p.loss)));
            }
            let pts: Vec<(f64, f64)> = lrs.iter().zip(&best_at).filter_map(|(lr, l)| l.map(|l| (*lr, l))).collect();
            line(&mut c, &pts, color.stroke_width(3), false)?;
            marks(&mut c, &pts, Mark::Circle, 5, color.filled())?;
            legend_entry(&mut c, &format!("warmup {} steps", fmt_num(*w)), color, Some(Mark::Circle), true)?;
        }
        if let Some(best) = s.points.iter().filter(|p| p.loss.is_finite()).min_by(|a, b| a.loss.total_cmp(&b.loss)) {
            marks(&mut c, &[(best.lr, best.loss)], Mark::Circle, 10, style::TEXT.stroke_width(2))?;
        }
        if !s.diverged.is_empty() {
            let top = y1 - (y1 - y0) * 0.04;
            let pts: Vec<(f64, f64)> = s.diverged.iter().map(|d| (d.0, top)).collect();
            marks(&mut c, &pts, Mark::Cross, 7, style::ALERT.stroke_width(3))?;
            legend_entry(&mut c, "diverged", style::ALERT, Some(Mark::Cross), false)?;
        }
        legend(&mut c, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    }
}
