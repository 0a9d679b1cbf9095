//! Turns a figure description into PNG bytes (and SVG text), in memory: the caller writes
//! them atomically and embeds the PNG in the HTML without reading it back.

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::style;

/// A figure that can draw itself on any plotters backend, so the PNG and the SVG come from
/// the same code.
pub trait Plot {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

/// A figure of one panel per item, laid out in a grid (side by side up to two, three to a row
/// beyond four): what most figures are. [`Grid`] turns one into a [`Plot`].
pub trait Panels {
    fn count(&self) -> usize;
    /// Draws panel `i` (of [`count`](Panels::count)) into `area`.
    fn panel<DB: DrawingBackend>(&self, i: usize, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

/// The [`Plot`] of a [`Panels`] figure.
pub struct Grid<P>(pub P);

impl<P: Panels> Plot for Grid<P> {
    fn size(&self) -> (u32, u32) {
        let n = self.0.count();
        grid_size(n, cols_for(n))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let n = self.0.count();
        for (i, area) in panels(root, n, cols_for(n)).iter().enumerate() {
            self.0.panel(i, area)?;
        }
        Ok(())
    }
}

pub struct Figure {
    /// File stem: `<name>.png` (and `<name>.svg`) beside `index.html`.
    pub name: String,
    pub title: String,
    pub caption: String,
    pub width: u32,
    pub height: u32,
    pub png: Vec<u8>,
    pub svg: Option<String>,
}

pub fn render(name: &str, title: &str, caption: String, plot: &impl Plot, svg: bool) -> Result<Figure> {
    let (w, h) = plot.size();
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw_titled(&root, title, plot).with_context(|| format!("drawing {name}.png"))?;
        root.present().with_context(|| format!("finishing {name}.png"))?;
    }
    let png = encode_png(&rgb, w, h).with_context(|| format!("encoding {name}.png"))?;
    let svg = if svg {
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, (w, h)).into_drawing_area();
            draw_titled(&root, title, plot).with_context(|| format!("drawing {name}.svg"))?;
            root.present().with_context(|| format!("finishing {name}.svg"))?;
        }
        Some(text)
    } else {
        None
    };
    Ok(Figure { name: name.to_string(), title: title.to_string(), caption, width: w, height: h, png, svg })
}

/// The PNG files travel on their own (slides, chat), so each carries its title.
fn draw_titled<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str, plot: &impl Plot) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (head, body) = root.split_vertically(style::TITLE_H);
    head.draw_text(title, &style::bold(24), (18, 12))?;
    plot.draw(&body)
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Best);
        let mut writer = enc.write_header()?;
        writer.write_image_data(rgb)?;
        writer.finish()?;
    }
    Ok(out)
}

/// Height for `n` panels laid out `cols` to a row, plus the title strip.
fn grid_size(n: usize, cols: usize) -> (u32, u32) {
    let rows = n.div_ceil(cols.max(1)).max(1);
    // A lone panel stretched to full width reads as a banner with tiny text.
    let width = if cols <= 1 { style::FIG_W_SINGLE } else { style::FIG_W };
    (width, style::TITLE_H + rows as u32 * style::PANEL_H)
}

/// Columns for `n` panels: side by side up to two, three to a row beyond four.
fn cols_for(n: usize) -> usize {
    match n {
        0 | 1 => 1,
        2..=4 => 2,
        _ => 3,
    }
}

/// The panels of a figure, in reading order; `n` of them, the rest of the grid left blank.
fn panels<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, n: usize, cols: usize) -> Vec<DrawingArea<DB, Shift>> {
    let rows = n.div_ceil(cols.max(1)).max(1);
    let mut all = area.split_evenly((rows, cols.max(1)));
    all.truncate(n);
    all
}
