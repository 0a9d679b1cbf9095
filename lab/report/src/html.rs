//! The HTML page: one minijinja template, auto-escaped (its name ends in `.html`). The only
//! values marked safe are the data URIs we build from base64 ourselves.

use anyhow::{Context, Result};
use base64::Engine;
use minijinja::{context, Environment, Value};

use crate::render::Figure;
use crate::summary::Summary;

const TEMPLATE: &str = include_str!("../templates/report.html");

pub fn render(summary: &Summary, figures: &[Figure]) -> Result<String> {
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE).context("parsing templates/report.html")?;
    let figs: Vec<Value> = figures
        .iter()
        .map(|f| {
            let uri = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(&f.png));
            context! {
                name => f.name,
                title => f.title,
                caption => f.caption,
                src => Value::from_safe_string(uri),
                png => format!("{}.png", f.name),
                svg => f.svg.as_ref().map(|_| format!("{}.svg", f.name)),
                width => f.width,
                height => f.height,
            }
        })
        .collect();
    let tmpl = env.get_template("report.html")?;
    tmpl.render(context! { s => summary, figures => figs, version => env!("CARGO_PKG_VERSION") })
        .context("rendering templates/report.html")
}
