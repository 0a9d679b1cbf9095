//! Dense against mixture-of-experts at equal active parameters: does routing buy loss for
//! the same per-token compute?

use std::collections::BTreeMap;

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{chart, legend, legend_entry, line, marks, Ctx, Made, Mark};
use crate::axes::{fmt_num, fmt_si, log_extent, pad_log, Scale};
use crate::data::{is_done, level_of, levels};
use crate::render::{render, Grid, Panels};
use crate::style;

struct Series {
    moe: bool,
    d: f64,
    level: usize,
    pts: Vec<(f64, f64)>,
}

struct DenseMoe {
    langs: Vec<(String, Vec<Series>, usize)>,
}

pub fn build(ctx: &Ctx) -> Result<Vec<Made>> {
    let mut by_lang: BTreeMap<&str, Vec<&codescale_core::ResultRow>> = BTreeMap::new();
    for r in ctx.input.results.iter().filter(|r| is_done(r) && r.n_params_active > 0.0) {
        by_lang.entry(r.language.as_str()).or_default().push(r);
    }
    let mut langs = Vec::new();
    for (lang, rows) in by_lang {
        let is_moe = |r: &&codescale_core::ResultRow| r.arch != "dense" && !r.arch.is_empty();
        if !rows.iter().any(is_moe) || rows.iter().all(is_moe) {
            continue;
        }
        let lv = levels(rows.iter().map(|r| r.tokens), 4);
        let mut series: BTreeMap<(bool, usize), Vec<(f64, f64)>> = BTreeMap::new();
        for r in &rows {
            series
                .entry((is_moe(r), level_of(r.tokens, &lv)))
                .or_default()
                .push((r.n_params_active, r.val_loss.unwrap_or(f64::NAN)));
        }
        // Only token budgets that both families trained at compare like with like.
        let shared: Vec<usize> = (0..lv.len())
            .filter(|l| series.contains_key(&(false, *l)) && series.contains_key(&(true, *l)))
            .collect();
        if shared.is_empty() {
            continue;
        }
        let mut out = Vec::new();
        for ((moe, l), mut pts) in series {
            if !shared.contains(&l) {
                continue;
            }
            // Hyperparameter variants at one size would draw a vertical smear; the best
            // configuration is the fair comparison.
            pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
            pts.dedup_by(|later, first| (later.0 / first.0 - 1.0).abs() < 0.01);
            out.push(Series {
                moe,
                d: lv[l],
                level: shared.iter().position(|s| *s == l).unwrap_or(0),
                pts,
            });
        }
        langs.push((lang.to_string(), out, shared.len()));
    }
    if langs.is_empty() {
        return Ok(vec![Made::Skip(
            "Dense vs MoE: no language has finished dense and MoE trials at the same token budget.".into(),
        )]);
    }
    let caption = "Final validation loss against active parameters per token for dense models (solid, circles) \
                   and mixture-of-experts models (dashed, triangles), one colour per token budget D (best configuration at each size). At equal \
                   active parameters the two cost about the same compute per token; a MoE line below the dense \
                   one is loss bought with extra (inactive) parameters."
        .to_string();
    Ok(vec![Made::Fig(render(
        "dense_vs_moe",
        "Dense vs MoE at equal active parameters",
        caption,
        &Grid(DenseMoe { langs }),
        false,
    )?)])
}

impl Panels for DenseMoe {
    fn count(&self) -> usize {
        self.langs.len()
    }

    fn panel<DB: DrawingBackend>(&self, i: usize, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (lang, series, nl) = &self.langs[i];
        let all = || series.iter().flat_map(|s| s.pts.iter());
        let (x0, x1) = pad_log(log_extent(all().map(|p| p.0)).unwrap_or((1.0, 10.0)), 0.08);
        let (y0, y1) = pad_log(log_extent(all().map(|p| p.1)).unwrap_or((1.0, 10.0)), 0.06);
        let mut c = chart(
            area,
            lang,
            Scale::log(x0, x1, fmt_si),
            Scale::log(y0, y1, fmt_num),
            "active parameters N_active",
            "final val loss (nats/token)",
        )?;
        for s in series {
            let color = style::level(s.level, *nl);
            line(&mut c, &s.pts, color.stroke_width(2), s.moe)?;
            let mark = if s.moe { Mark::Triangle } else { Mark::Circle };
            marks(&mut c, &s.pts, mark, 5, color.filled())?;
            let name = if s.moe { "MoE" } else { "dense" };
            legend_entry(&mut c, &format!("{name} · D = {}", fmt_si(s.d)), color, Some(mark), true)?;
        }
        legend(&mut c, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}
