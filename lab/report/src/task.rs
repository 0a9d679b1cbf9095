//! The code task's section: each group's sigmoid from loss to exact match, and each held-out
//! target's metric predicted in two steps (law → loss → metric) and from its measured loss, so
//! that a miss is put down to the step that failed.

use serde::Serialize;

use crate::axes::{fmt_num, fmt_si};
use crate::summary::{est, Est};

#[derive(Serialize)]
pub struct TaskRow {
    pub group: String,
    pub n_points: usize,
    pub top: Est,
    pub k: Est,
    pub l_mid: Est,
    pub rmse: String,
}

#[derive(Serialize)]
pub struct TaskTargetRow {
    pub group: String,
    pub id: String,
    pub n: String,
    pub d: String,
    pub predicted: Est,
    pub from_measured_loss: Est,
    pub measured: String,
    pub covered: bool,
    /// Where the two-step prediction failed, in words; empty when it held.
    pub verdict: String,
}

#[derive(Serialize, Default)]
pub struct TaskSection {
    pub laws: Vec<TaskRow>,
    pub targets: Vec<TaskTargetRow>,
    /// Groups whose metric could not be fitted, and why.
    pub skipped: Vec<String>,
}

fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

pub fn section(fit: &codescale_fit::FitFile) -> Option<TaskSection> {
    let mut s = TaskSection::default();
    for g in &fit.groups {
        if let Some(why) = &g.task_skipped {
            s.skipped.push(format!("{}: {why}", g.group));
        }
        let Some(law) = &g.task else { continue };
        s.laws.push(TaskRow {
            group: g.group.clone(),
            n_points: law.n_points,
            top: est(&law.top, pct),
            k: est(&law.k, fmt_num),
            l_mid: est(&law.l_mid, |v| format!("{v:.3}")),
            rmse: pct(law.rmse),
        });
        for t in &law.targets {
            let verdict = match t.failed_step.as_deref() {
                None => String::new(),
                Some("loss") => "missed because the law mispredicted the loss: the sigmoid alone covers it".into(),
                Some(_) => "missed in the second step: at the measured loss the sigmoid misses too".into(),
            };
            s.targets.push(TaskTargetRow {
                group: g.group.clone(),
                id: t.id.chars().take(10).collect(),
                n: fmt_si(t.n),
                d: fmt_si(t.d),
                predicted: est(&t.predicted, pct),
                from_measured_loss: est(&t.from_measured_loss, pct),
                measured: pct(t.measured),
                covered: t.covered,
                verdict,
            });
        }
    }
    (!s.laws.is_empty() || !s.skipped.is_empty()).then_some(s)
}
