//! Every figure of the report. Each family decides for itself whether its data exists and
//! says why when it does not; the drawing helpers here keep the panels uniform.

mod curves;
mod finetune;
mod frontier;
mod hyper;
mod isoflop;
mod laws;
mod moe;
mod overlay;
mod residuals;

use anyhow::Result;
use plotters::coord::Shift;
use plotters::element::{Drawable, PointCollection};
use plotters::prelude::*;
use plotters_backend::DrawingErrorKind;

use crate::axes::{clip_polyline, Scale};
use crate::data::{self, Colors, Group};
use crate::render::Figure;
use crate::style;
use crate::ReportInput;

/// File stems of every figure this crate can write, so a re-run can remove ones whose data is
/// gone.
pub const ALL_NAMES: &[&str] = &[
    "training_curves",
    "loss_vs_n",
    "loss_vs_d",
    "infill_loss_vs_n",
    "infill_loss_vs_d",
    "law_overlay",
    "compute_optimal",
    "isoflop",
    "hyper_heatmap",
    "hyper_lr",
    "dense_vs_moe",
    "lr_batch_sensitivity",
    "residuals",
    "finetune_loss",
    "finetune_task",
];

pub enum Made {
    Fig(Figure),
    /// Not drawn, and why (shown in the report).
    Skip(String),
}

pub struct Ctx<'a> {
    pub input: &'a ReportInput,
    pub groups: Vec<Group<'a>>,
}

pub struct Built {
    pub figures: Vec<Figure>,
    pub skipped: Vec<String>,
    /// A figure that failed to draw is reported, not fatal: the rest of the report still helps.
    pub errors: Vec<String>,
}

pub fn build_all(input: &ReportInput) -> Built {
    let colors = Colors::new(input);
    let groups = data::groups(input, &colors);
    let ctx = Ctx { input, groups };
    type Family = fn(&Ctx) -> Result<Vec<Made>>;
    let families: [(&str, Family); 10] = [
        ("training curves", curves::build),
        ("loss vs N and D", laws::build),
        ("infilling loss vs N and D", laws::build_infilling),
        ("law overlay", overlay::build),
        ("compute-optimal frontier", frontier::build),
        ("IsoFLOP", isoflop::build),
        ("hyperparameters", hyper::build),
        ("dense vs MoE", moe::build),
        ("residuals", residuals::build),
        ("fine-tuning sweeps", finetune::build),
    ];
    let mut out = Built { figures: Vec::new(), skipped: Vec::new(), errors: Vec::new() };
    for (what, build) in families {
        match build(&ctx) {
            Ok(made) => {
                for m in made {
                    match m {
                        Made::Fig(f) => out.figures.push(f),
                        Made::Skip(why) => out.skipped.push(why),
                    }
                }
            }
            Err(e) => out.errors.push(format!("{what} figure failed: {e:#}")),
        }
    }
    out
}

pub type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Scale, Scale>>;

/// A panel with our axes, grid and labels.
pub fn chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    x: Scale,
    y: Scale,
    xlabel: &str,
    ylabel: &str,
) -> Result<Chart<'a, DB>>
where
    DB::ErrorType: 'static,
{
    let mut c = ChartBuilder::on(area)
        .caption(title, style::bold(19))
        .margin(12)
        .margin_right(26)
        .x_label_area_size(60)
        .y_label_area_size(84)
        .build_cartesian_2d(x, y)?;
    c.configure_mesh()
        .bold_line_style(style::GRID)
        .light_line_style(style::GRID_LIGHT)
        .axis_style(style::MUTED)
        .label_style(style::font(16))
        .axis_desc_style(style::font(17))
        .x_desc(xlabel)
        .y_desc(ylabel)
        .draw()?;
    Ok(c)
}

pub fn legend<'a, DB: DrawingBackend + 'a>(c: &mut Chart<'a, DB>, pos: SeriesLabelPosition) -> Result<()>
where
    DB::ErrorType: 'static,
{
    c.configure_series_labels()
        .position(pos)
        .background_style(WHITE.mix(0.9))
        .border_style(style::GRID)
        .label_font(style::font(15))
        .margin(10)
        .draw()?;
    Ok(())
}

#[derive(Clone, Copy)]
pub enum Mark {
    Circle,
    Triangle,
    Cross,
    /// A shaded interval (legend only).
    Band,
}

/// A legend entry with no data of its own, so labels survive even when every point of the
/// series is clipped away.
pub fn legend_entry<'a, DB: DrawingBackend + 'a>(
    c: &mut Chart<'a, DB>,
    label: &str,
    color: RGBColor,
    mark: Option<Mark>,
    line: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    c.draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?.label(label).legend(move |at| Glyph {
        at,
        color,
        mark,
        line,
    });
    Ok(())
}

/// A legend glyph drawn straight on the backend: a short line and/or a marker.
struct Glyph {
    at: (i32, i32),
    color: RGBColor,
    mark: Option<Mark>,
    line: bool,
}

impl<'b> PointCollection<'b, (i32, i32)> for &'b Glyph {
    type Point = &'b (i32, i32);
    type IntoIter = std::iter::Once<&'b (i32, i32)>;
    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<DB: DrawingBackend> Drawable<DB> for Glyph {
    fn draw<I: Iterator<Item = (i32, i32)>>(
        &self,
        mut pos: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let Some((x, y)) = pos.next() else { return Ok(()) };
        let c = self.color;
        if self.line {
            backend.draw_line((x, y), (x + 22, y), &c.stroke_width(3))?;
        }
        match self.mark {
            Some(Mark::Circle) => backend.draw_circle((x + 11, y), 5, &c.filled(), true)?,
            Some(Mark::Triangle) => {
                backend.fill_polygon(vec![(x + 11, y - 6), (x + 5, y + 5), (x + 17, y + 5)], &c.filled())?
            }
            Some(Mark::Cross) => {
                backend.draw_line((x + 6, y - 5), (x + 16, y + 5), &c.stroke_width(2))?;
                backend.draw_line((x + 6, y + 5), (x + 16, y - 5), &c.stroke_width(2))?;
            }
            Some(Mark::Band) => backend.draw_rect((x, y - 7), (x + 22, y + 7), &c.mix(0.25).filled(), true)?,
            None => {}
        }
        Ok(())
    }
}

/// A line cut at the chart border.
pub fn line<DB: DrawingBackend>(c: &mut Chart<DB>, pts: &[(f64, f64)], style: ShapeStyle, dashed: bool) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (x, y) = {
        let spec = c.as_coord_spec();
        (spec.x_spec().clone(), spec.y_spec().clone())
    };
    for piece in clip_polyline(&x, &y, pts) {
        if dashed {
            c.draw_series(DashedLineSeries::new(piece, 9, 6, style))?;
        } else {
            c.draw_series(LineSeries::new(piece, style))?;
        }
    }
    Ok(())
}

/// Markers for the points inside the chart; the rest are left out rather than pinned to the
/// border.
pub fn marks<DB: DrawingBackend>(
    c: &mut Chart<DB>,
    pts: &[(f64, f64)],
    mark: Mark,
    size: u32,
    style: ShapeStyle,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let inside: Vec<(f64, f64)> = {
        let spec = c.as_coord_spec();
        pts.iter().copied().filter(|p| spec.x_spec().contains(p.0) && spec.y_spec().contains(p.1)).collect()
    };
    match mark {
        Mark::Circle => c.draw_series(inside.iter().map(|p| Circle::new(*p, size, style)))?,
        Mark::Triangle => c.draw_series(inside.iter().map(|p| TriangleMarker::new(*p, size + 1, style)))?,
        Mark::Cross | Mark::Band => c.draw_series(inside.iter().map(|p| Cross::new(*p, size, style)))?,
    };
    Ok(())
}

/// A boxed annotation in the bottom-left of the plotting area, the corner a falling loss
/// curve leaves empty.
pub fn note<DB: DrawingBackend>(c: &Chart<DB>, lines: &[String]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let area = c.plotting_area().strip_coord_spec();
    let (_, h) = area.dim_in_pixel();
    let line_h = 21;
    let text_w = lines.iter().map(|l| l.chars().count() as i32 * 9).max().unwrap_or(0) + 16;
    let box_h = lines.len() as i32 * line_h + 10;
    let (x0, y0) = (10, h as i32 - box_h - 10);
    area.draw(&Rectangle::new([(x0, y0), (x0 + text_w, y0 + box_h)], WHITE.mix(0.85).filled()))?;
    for (i, l) in lines.iter().enumerate() {
        area.draw(&Text::new(l.clone(), (x0 + 8, y0 + 6 + i as i32 * line_h), style::font(16)))?;
    }
    Ok(())
}

/// `n` points evenly spaced in log space.
pub fn geomspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let (a, b) = (lo.ln(), hi.ln());
    (0..n).map(|i| (a + (b - a) * i as f64 / (n - 1).max(1) as f64).exp()).collect()
}

/// "[lo, hi]" of an interval, or nothing when the fit ran no bootstrap.
pub fn interval(e: &codescale_fit::Estimate, fmt: fn(f64) -> String) -> String {
    match (e.lo, e.hi) {
        (Some(lo), Some(hi)) => format!(" [{}, {}]", fmt(lo), fmt(hi)),
        _ => String::new(),
    }
}
