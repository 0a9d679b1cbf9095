//! Fine-tuning sweeps: one panel per single-parameter sweep, one line per base, the completion
//! loss (and, in a second figure, the code task's exact match) at each level with ± one
//! standard error over seeds; the hollow ring marks the centre configuration.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{chart, legend, legend_entry, line, marks, Ctx, Made, Mark};
use crate::axes::{extent, fmt_num, pad_lin, Scale};
use crate::data::Seeds;
use crate::finetune::{analyse, Analysis};
use crate::render::{render, Grid, Panels};
use crate::style;

/// Which score a figure draws.
#[derive(Clone, Copy)]
enum Score {
    CompletionLoss,
    TaskExactMatch,
}

struct Sweeps<'a> {
    analysis: &'a Analysis,
    score: Score,
}

pub fn build(ctx: &Ctx) -> Result<Vec<Made>> {
    let Some(analysis) = analyse(&ctx.input.results) else { return Ok(Vec::new()) };
    if analysis.sweeps.is_empty() {
        return Ok(vec![Made::Skip(
            "Fine-tuning sweeps: no hyperparameter was fine-tuned at two or more values.".into(),
        )]);
    }
    let loss = "Completion loss on held-out instruction pairs (nats per completion token) in each single-parameter \
                fine-tuning sweep, one line per base; bars are ± one standard error over seeds, the ring marks \
                the centre configuration every sweep passes through.";
    let task = "The code task's exact match (identifier completion) after fine-tuning, in the same sweeps; bars \
                are ± one standard error over seeds.";
    Ok(vec![
        Made::Fig(render(
            "finetune_loss",
            "Fine-tuning sweeps: completion loss",
            loss.into(),
            &Grid(Sweeps { analysis: &analysis, score: Score::CompletionLoss }),
            false,
        )?),
        Made::Fig(render(
            "finetune_task",
            "Fine-tuning sweeps: task exact match",
            task.into(),
            &Grid(Sweeps { analysis: &analysis, score: Score::TaskExactMatch }),
            false,
        )?),
    ])
}

impl Sweeps<'_> {
    fn seeds<'s>(&self, scores: &'s (Seeds, Seeds)) -> &'s Seeds {
        match self.score {
            Score::CompletionLoss => &scores.0,
            Score::TaskExactMatch => &scores.1,
        }
    }
}

impl Panels for Sweeps<'_> {
    fn count(&self) -> usize {
        self.analysis.sweeps.len()
    }

    fn panel<DB: DrawingBackend>(&self, i: usize, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let sweep = &self.analysis.sweeps[i];
        // (level, base) → mean and standard error, where measured.
        let points: Vec<(usize, usize, f64, f64)> = sweep
            .levels
            .iter()
            .enumerate()
            .flat_map(|(x, l)| l.per_base.iter().enumerate().filter_map(move |(b, s)| s.as_ref().map(|s| (x, b, s))))
            .map(|(x, b, s)| (x, b, self.seeds(s)))
            .filter(|(_, _, s)| !s.losses.is_empty())
            .map(|(x, b, s)| (x, b, s.mean(), s.var_of_mean().sqrt()))
            .collect();
        let (y0, y1) = pad_lin(extent(points.iter().flat_map(|p| [p.2 - p.3, p.2 + p.3])).unwrap_or((0.0, 1.0)), 0.12);
        // Room above the data for the legend.
        let y1 = y1 + 0.12 * self.analysis.bases.len() as f64 * (y1 - y0);
        let y_label = match self.score {
            Score::CompletionLoss => "completion loss (nats/token)",
            Score::TaskExactMatch => "task exact match",
        };
        let labels = sweep.levels.iter().map(|l| l.label.clone()).collect();
        let mut c =
            chart(area, sweep.key, Scale::categorical(labels), Scale::linear(y0, y1, fmt_num), sweep.key, y_label)?;
        let n = self.analysis.bases.len().max(1) as f64;
        for (b, base) in self.analysis.bases.iter().enumerate() {
            let color = style::categorical(b);
            // Bases side by side within a level, so that their error bars do not overlap.
            let shift = (b as f64 - (n - 1.0) / 2.0) * 0.08;
            let pts: Vec<(f64, f64, f64)> =
                points.iter().filter(|p| p.1 == b).map(|p| (p.0 as f64 + shift, p.2, p.3)).collect();
            for &(x, m, se) in &pts {
                c.draw_series(std::iter::once(PathElement::new(
                    vec![(x, m - se), (x, m + se)],
                    color.stroke_width(2),
                )))?;
            }
            let xy: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1)).collect();
            line(&mut c, &xy, color.stroke_width(3), false)?;
            marks(&mut c, &xy, Mark::Circle, 5, color.filled())?;
            let centre: Vec<(f64, f64)> = pts
                .iter()
                .filter(|p| sweep.levels[(p.0 - shift).round() as usize].centre)
                .map(|p| (p.0, p.1))
                .collect();
            marks(&mut c, &centre, Mark::Circle, 10, style::TEXT.stroke_width(2))?;
            legend_entry(&mut c, &base.label, color, Some(Mark::Circle), true)?;
        }
        legend(&mut c, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    }
}
