//! Colours, sizes and text styles shared by every figure, so the figures read as one set.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::fonts::FAMILY;

/// Figures are drawn at 1400 px wide and shown at about 1100 px, so text sizes are chosen for
/// that shrink.
pub const FIG_W: u32 = 1400;
pub const FIG_W_SINGLE: u32 = 1000;
pub const PANEL_H: u32 = 520;
pub const TITLE_H: u32 = 46;

pub const TEXT: RGBColor = RGBColor(33, 37, 41);
pub const MUTED: RGBColor = RGBColor(108, 117, 125);
pub const GRID: RGBColor = RGBColor(222, 226, 230);
pub const GRID_LIGHT: RGBColor = RGBColor(240, 242, 245);
pub const MISSING: RGBColor = RGBColor(206, 212, 218);
pub const ALERT: RGBColor = RGBColor(214, 39, 40);

/// Tableau 10: distinguishable, colour-blind tolerable, fine on white.
const CATEGORICAL: [RGBColor; 10] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(255, 157, 167),
    RGBColor(156, 117, 95),
    RGBColor(186, 176, 172),
];

pub fn categorical(i: usize) -> RGBColor {
    CATEGORICAL[i % CATEGORICAL.len()]
}

const VIRIDIS: [(f64, f64, f64); 9] = [
    (68.0, 1.0, 84.0),
    (71.0, 44.0, 122.0),
    (59.0, 81.0, 139.0),
    (44.0, 113.0, 142.0),
    (33.0, 144.0, 141.0),
    (39.0, 173.0, 129.0),
    (92.0, 200.0, 99.0),
    (170.0, 220.0, 50.0),
    (253.0, 231.0, 37.0),
];

/// Viridis at `t` in [0, 1].
pub fn viridis(t: f64) -> RGBColor {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let x = t * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |u: f64, v: f64| (u + (v - u) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Ordered levels (model sizes, token budgets) as a viridis ramp; the yellow end is cut
/// because yellow lines vanish on white.
pub fn level(i: usize, n: usize) -> RGBColor {
    let t = if n <= 1 { 0.35 } else { i as f64 / (n - 1) as f64 };
    viridis(0.05 + 0.78 * t)
}

/// Relative luminance, to pick black or white text on a filled cell.
pub fn is_dark(c: RGBColor) -> bool {
    0.2126 * f64::from(c.0) + 0.7152 * f64::from(c.1) + 0.0722 * f64::from(c.2) < 140.0
}

pub fn font(size: u32) -> TextStyle<'static> {
    (FAMILY, size as f64).into_font().color(&TEXT)
}

pub fn font_color(size: u32, color: RGBColor) -> TextStyle<'static> {
    (FAMILY, size as f64).into_font().color(&color)
}

pub fn bold(size: u32) -> TextStyle<'static> {
    (FAMILY, size as f64, FontStyle::Bold).into_font().color(&TEXT)
}

pub fn centered(style: TextStyle<'static>) -> TextStyle<'static> {
    style.pos(Pos::new(HPos::Center, VPos::Center))
}
