//! The report's text content, computed once and handed to the template: every number already
//! formatted, every gap already explained, so the template only lays things out.

use std::collections::{BTreeMap, BTreeSet};

use codescale_core::Status;
use codescale_fit::{Estimate, GroupFit};
use serde::Serialize;

use crate::axes::{fmt_big, fmt_num, fmt_pct, fmt_pow10, fmt_si};
use crate::data::{group_of, is_done};
use crate::ReportInput;

#[derive(Serialize)]
pub struct Summary {
    pub sweep: String,
    pub fit_name: Option<String>,
    pub fit_created: Option<String>,
    pub n_col: Option<String>,
    pub counts: Vec<Count>,
    pub total: usize,
    pub done: usize,
    pub languages: Vec<String>,
    pub notes: Vec<String>,
    pub missing: Vec<String>,
    pub warnings: Vec<String>,
    pub laws: Vec<LawRow>,
    pub plans: Vec<PlanRow>,
    pub headline: Vec<String>,
    pub hyper: Vec<HyperRow>,
    pub isoflop: Vec<IsoRow>,
    pub extrapolation: Vec<ExtrapRow>,
    pub targets: Vec<TargetRow>,
    pub curve_laws: Vec<CurveLawRow>,
    pub rolling: Vec<ExtrapRow>,
    /// The infilling loss's laws and held-out targets, for a sweep with FIM trials.
    pub infill_laws: Vec<LawRow>,
    pub infill_targets: Vec<TargetRow>,
    /// What FIM training costs the causal loss, against seed noise.
    pub fim_cost: Option<crate::fim::FimCost>,
    /// The code task's metric from the loss, and its targets.
    pub task: Option<crate::task::TaskSection>,
    /// Languages ranked by loss at matched (N, D) and by L_inf, beside the seed paper's order.
    pub languages_compared: Option<crate::languages::Comparison>,
    /// Fine-tuning sweeps: each single-parameter sweep per base, and which base is more
    /// sensitive.
    pub finetune: Option<crate::finetune::FineTuning>,
    pub trials: Vec<TrialRow>,
    pub unfinished: Vec<TrialRow>,
    pub excluded: Vec<ExcludedRow>,
    pub provenance: Vec<Kv>,
    pub provenance_trials: Vec<ProvRow>,
    pub sweep_toml: Option<String>,
}

#[derive(Serialize)]
pub struct Count {
    pub status: String,
    pub n: usize,
}

#[derive(Serialize)]
pub struct Est {
    pub value: String,
    pub interval: String,
    /// The interval is wider than the estimate: the data cannot pin this parameter down.
    pub unidentified: bool,
}

pub(crate) fn est(e: &Estimate, f: fn(f64) -> String) -> Est {
    let interval = match (e.lo, e.hi) {
        (Some(lo), Some(hi)) => format!("{} – {}", f(lo), f(hi)),
        _ => String::new(),
    };
    Est { value: f(e.value), interval, unidentified: false }
}

/// `est` for a law parameter, flagged when the fit could not pin it down.
fn param(e: &Estimate, f: fn(f64) -> String, name: &str, unidentified: &[String]) -> Est {
    Est { unidentified: unidentified.iter().any(|u| u == name), ..est(e, f) }
}

#[derive(Serialize)]
pub struct LawRow {
    pub group: String,
    pub n_points: usize,
    /// The law's form and its formula.
    pub form: String,
    pub formula: String,
    /// Why that form (and Huber threshold) was chosen.
    pub law_choice: String,
    /// Each candidate form on one line: its out-of-sample and in-sample error.
    pub candidates: Vec<String>,
    pub alpha_n: Est,
    pub alpha_d: Est,
    pub l_inf: Est,
    pub n_c: Est,
    pub d_c: Est,
    pub a_exp: Option<Est>,
    pub b_exp: Option<Est>,
    pub rmse_log: String,
    /// The additivity check's verdict: yes, no, untested (one seed), or "–" when the design
    /// cannot tell.
    pub additivity: String,
    /// Its lack-of-fit p-value.
    pub additivity_p: String,
    /// Its numbers, for the cell's tooltip.
    pub additivity_detail: String,
    /// The check rejected the law's additive form.
    pub not_additive: bool,
    pub detail: String,
}

#[derive(Serialize)]
pub struct PlanRow {
    pub group: String,
    pub flops: String,
    pub n_opt: Est,
    pub d_opt: Est,
    pub tokens_per_param: String,
    pub loss: Est,
    pub sentence: String,
}

#[derive(Serialize)]
pub struct HyperRow {
    pub group: String,
    pub lr_law: String,
    pub batch_law: String,
    pub best: Vec<String>,
}

#[derive(Serialize)]
pub struct IsoRow {
    pub group: String,
    pub a: Est,
    pub b: Est,
    pub budgets: usize,
}

#[derive(Serialize)]
pub struct TargetRow {
    pub group: String,
    /// Which law predicted it: the final-point law's form, or `whole-curve`.
    pub law: String,
    pub id: String,
    pub n: String,
    pub d: String,
    pub compute: String,
    pub predicted: Est,
    pub measured: String,
    pub error: String,
    pub covered: bool,
    /// The range the law and the forms tied with it on the rolling splits predict, with those
    /// forms; empty where no two forms are tied.
    pub form_spread: String,
}

/// The whole-curve law of a group ([`codescale_fit::curve`]) beside its final-point law.
#[derive(Serialize)]
pub struct CurveLawRow {
    pub group: String,
    pub evaluations: usize,
    pub runs: usize,
    pub alpha_n: Est,
    pub beta: Est,
    pub l_inf: Est,
    /// Its out-of-sample error and the final-point law's, on the same splits.
    pub out_of_sample: String,
    pub final_out_of_sample: String,
}

#[derive(Serialize)]
pub struct ExtrapRow {
    pub group: String,
    pub held_out: String,
    pub mean: String,
    pub max: String,
}

#[derive(Serialize)]
pub struct TrialRow {
    pub id: String,
    pub short_id: String,
    pub status: String,
    pub language: String,
    pub arch: String,
    pub n_params: Cell,
    pub n_active: Cell,
    pub tokens: Cell,
    pub flops: Cell,
    pub lr: Cell,
    pub batch: Cell,
    pub warmup: Cell,
    pub val_loss: Cell,
    pub val_bpb: Cell,
    pub steps: Cell,
    pub wall: Cell,
}

/// A table cell: what is shown, and the raw number the sort script compares.
#[derive(Serialize)]
pub struct Cell {
    pub text: String,
    pub sort: String,
}

fn cell(v: f64, f: fn(f64) -> String) -> Cell {
    if v.is_finite() {
        Cell { text: f(v), sort: format!("{v:e}") }
    } else {
        Cell { text: "–".into(), sort: String::new() }
    }
}

fn opt_cell(v: Option<f64>) -> Cell {
    match v {
        Some(v) if v.is_finite() => Cell { text: format!("{v:.4}"), sort: format!("{v:e}") },
        _ => Cell { text: "–".into(), sort: String::new() },
    }
}

#[derive(Serialize)]
pub struct ExcludedRow {
    pub id: String,
    pub group: String,
    pub reason: String,
}

#[derive(Serialize)]
pub struct Kv {
    pub key: String,
    pub value: String,
}

#[derive(Serialize)]
pub struct ProvRow {
    pub id: String,
    pub host: String,
    pub backend: String,
    pub started: String,
    pub finished: String,
    pub commit: String,
}

pub fn build(input: &ReportInput, skipped: &[String], figure_errors: &[String]) -> Summary {
    let results = &input.results;
    let counts = status_counts(results);
    let done = results.iter().filter(|r| is_done(r)).count();
    let sections = input.fit.as_ref().map(fit_sections).unwrap_or_default();
    let infill = input.fim_fit.as_ref().map(fit_sections).unwrap_or_default();
    let (trials, unfinished) = trial_rows(results);
    let mut notes = input.notes.clone();
    notes.extend(skipped.iter().cloned());
    let (provenance, provenance_trials) = provenance(input);
    Summary {
        sweep: input.sweep.clone(),
        fit_name: input.fit.as_ref().map(|f| f.name.clone()),
        fit_created: input.fit.as_ref().map(|f| f.created.clone()).filter(|s| !s.is_empty()),
        n_col: input.fit.as_ref().map(|f| f.n_col.clone()).filter(|s| !s.is_empty()),
        missing: missing(input, &counts, done, figure_errors),
        counts: status_order(counts),
        total: results.len(),
        done,
        languages: languages(input),
        notes,
        warnings: sections.warnings,
        laws: sections.laws,
        plans: sections.plans,
        headline: sections.headline,
        hyper: sections.hyper,
        isoflop: sections.isoflop,
        extrapolation: sections.extrapolation,
        targets: sections.targets,
        curve_laws: sections.curve_laws,
        rolling: sections.rolling,
        infill_laws: infill.laws,
        infill_targets: infill.targets,
        fim_cost: crate::fim::cost(results),
        task: input.fit.as_ref().and_then(crate::task::section),
        languages_compared: crate::languages::compare(results, input.fit.as_ref()),
        finetune: crate::finetune::section(results),
        trials,
        unfinished,
        excluded: sections.excluded,
        provenance,
        provenance_trials,
        sweep_toml: input.sweep_toml.clone(),
    }
}

fn status_counts(results: &[codescale_core::ResultRow]) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in results {
        *counts.entry(r.status.as_str().to_string()).or_default() += 1;
    }
    counts
}

/// The languages of the results, or of the fit's groups when there are no results.
fn languages(input: &ReportInput) -> Vec<String> {
    let from_results: BTreeSet<String> = input.results.iter().map(|r| r.language.clone()).collect();
    if !from_results.is_empty() {
        return from_results.into_iter().collect();
    }
    let from_fit = input.fit.iter().flat_map(|f| &f.groups).map(|g| crate::data::language_of(&g.group).to_string());
    from_fit.collect::<BTreeSet<_>>().into_iter().collect()
}

/// What the report cannot show, and why: no results, nothing finished, unfinished trials, no
/// fit or groups without a law, figures that failed.
fn missing(
    input: &ReportInput,
    counts: &BTreeMap<String, usize>,
    done: usize,
    figure_errors: &[String],
) -> Vec<String> {
    let results = &input.results;
    let mut missing = Vec::new();
    if results.is_empty() {
        missing.push(
            "No trials in the results table: the sweep has not run yet, or results.parquet is empty. \
             Run `codescale sweep run` and then `codescale report` again."
                .to_string(),
        );
    } else if done == 0 {
        missing.push(format!(
            "None of the {} trials finished with a validation loss, so nothing can be fitted or plotted against N and D.",
            results.len()
        ));
    }
    let unfinished_n = results.len() - results.iter().filter(|r| r.status == Status::Done).count();
    if unfinished_n > 0 {
        let by: Vec<String> =
            counts.iter().filter(|(s, _)| s.as_str() != "done").map(|(s, n)| format!("{n} {s}")).collect();
        missing.push(format!(
            "{unfinished_n} of {} trials did not finish ({}); they are listed under “Trials that did not finish”.",
            results.len(),
            by.join(", ")
        ));
    }
    match &input.fit {
        None => missing.push(
            "No fit file: laws, compute-optimal allocation and residuals are left out. Run `codescale fit` on this sweep.".to_string(),
        ),
        Some(fit) => {
            if fit.groups.is_empty() {
                missing.push("The fit file has no groups: no group had enough finished trials.".into());
            }
            for g in fit.groups.iter().filter(|g| g.law.is_none()) {
                let why = g.message.as_deref().map_or("no reason recorded", |m| unfitted_reason(&g.group, m));
                missing.push(format!("No fit for {}: {why}.", g.group).replace("..", "."));
            }
        }
    }
    missing.extend(figure_errors.iter().cloned());
    missing
}

/// The report's sections that come from the fit file, group by group.
#[derive(Default)]
struct FitSections {
    warnings: Vec<String>,
    laws: Vec<LawRow>,
    plans: Vec<PlanRow>,
    headline: Vec<String>,
    hyper: Vec<HyperRow>,
    isoflop: Vec<IsoRow>,
    extrapolation: Vec<ExtrapRow>,
    targets: Vec<TargetRow>,
    curve_laws: Vec<CurveLawRow>,
    rolling: Vec<ExtrapRow>,
    excluded: Vec<ExcludedRow>,
}

fn fit_sections(fit: &codescale_fit::FitFile) -> FitSections {
    let mut s = FitSections::default();
    for g in &fit.groups {
        s.warnings.extend(g.warnings.iter().map(|w| format!("{}: {w}", g.group)));
        law_rows(g, &mut s.laws, &mut s.plans, &mut s.headline);
        s.hyper.extend(hyper_row(g));
        s.isoflop.extend(g.isoflop.as_ref().map(|i| IsoRow {
            group: g.group.clone(),
            a: est(&i.a, fmt_num),
            b: est(&i.b, fmt_num),
            budgets: i.budgets.len(),
        }));
        s.curve_laws.extend(g.curve_law.iter().map(|c| curve_law_row(g, c)));
        s.extrapolation.extend(g.extrapolation.iter().map(|e| extrap_row(g, e)));
        s.rolling.extend(g.rolling.iter().map(|e| extrap_row(g, e)));
        s.targets.extend(target_rows(g));
    }
    s.excluded = fit
        .excluded
        .iter()
        .map(|e| ExcludedRow { id: e.id.clone(), group: e.group.clone(), reason: e.reason.clone() })
        .collect();
    s
}

fn hyper_row(g: &GroupFit) -> Option<HyperRow> {
    let h = g.hyper.as_ref()?;
    let law = |p: &Option<codescale_fit::PowerLaw>, unit: &str| match p {
        Some(p) => format!("{} · C^{}{unit}", fmt_big(p.k.value), fmt_num(p.p.value)),
        None => "–".into(),
    };
    Some(HyperRow {
        group: g.group.clone(),
        lr_law: law(&h.lr_law, ""),
        batch_law: law(&h.batch_law, " tokens"),
        best: h
            .budgets
            .iter()
            .map(|b| {
                format!(
                    "C = {}: lr {}, batch {} tokens, warmup {} steps → loss {:.4} ({} within 0.25 %)",
                    fmt_pow10(b.flops),
                    fmt_num(b.best.lr),
                    crate::axes::fmt_count(b.best.batch_tokens),
                    fmt_num(b.best.warmup_steps),
                    b.best.loss,
                    b.near_best.len()
                )
            })
            .collect(),
    })
}

fn extrap_row(g: &GroupFit, e: &codescale_fit::Extrapolation) -> ExtrapRow {
    ExtrapRow {
        group: g.group.clone(),
        held_out: e.held_out_n.iter().map(|n| fmt_si(*n)).collect::<Vec<_>>().join(", "),
        mean: fmt_pct(100.0 * e.mean_abs_rel_error),
        max: fmt_pct(100.0 * e.max_abs_rel_error),
    }
}

fn curve_law_row(g: &GroupFit, c: &codescale_fit::curve::CurveLawFit) -> CurveLawRow {
    CurveLawRow {
        group: g.group.clone(),
        evaluations: c.evaluations,
        runs: c.runs,
        alpha_n: Est { unidentified: c.alpha_n.unidentified(), ..est(&c.alpha_n, fmt_num) },
        beta: Est { unidentified: c.alpha_d.unidentified(), ..est(&c.alpha_d, fmt_num) },
        l_inf: Est { unidentified: c.l_inf.unidentified() || c.l_inf_at_bound(), ..est(&c.l_inf, fmt_num) },
        out_of_sample: c
            .out_of_sample
            .map_or("–".into(), |x| format!("{} ({} splits)", fmt_pct(100.0 * x), c.splits)),
        final_out_of_sample: g
            .candidates
            .iter()
            .find(|c| c.chosen)
            .and_then(|c| c.out_of_sample)
            .map_or("–".into(), |x| fmt_pct(100.0 * x)),
    }
}

/// The group's held-out targets, by the final-point law and by the whole-curve law.
fn target_rows(g: &GroupFit) -> Vec<TargetRow> {
    let final_law = g.law.as_ref().map_or("–", |l| l.form.name());
    let curve_targets = g.curve_law.iter().flat_map(|c| c.targets.iter().map(|t| ("whole-curve", t)));
    g.targets
        .iter()
        .map(|t| (final_law, t))
        .chain(curve_targets)
        .map(|(law, t)| TargetRow {
            group: g.group.clone(),
            law: law.into(),
            id: t.id.chars().take(10).collect(),
            n: fmt_si(t.n),
            d: fmt_si(t.d),
            compute: format!("{}×", fmt_num(t.compute_ratio)),
            predicted: est(&t.predicted, |v| format!("{v:.4}")),
            measured: if t.runs > 1 {
                format!("{:.4} (mean of {} seeds)", t.measured, t.runs)
            } else {
                format!("{:.4}", t.measured)
            },
            error: format!("{:+.2} %", 100.0 * t.error),
            covered: t.covered,
            form_spread: t
                .form_spread
                .as_ref()
                .map_or(String::new(), |s| format!("{:.4}–{:.4} ({})", s.lo, s.hi, s.form_names())),
        })
        .collect()
}

/// Every trial, sorted by group, N and D, and those that did not finish.
fn trial_rows(results: &[codescale_core::ResultRow]) -> (Vec<TrialRow>, Vec<TrialRow>) {
    let trial_row = |r: &codescale_core::ResultRow| TrialRow {
        short_id: r.trial_id.chars().take(10).collect(),
        id: r.trial_id.clone(),
        status: r.status.as_str().to_string(),
        language: r.language.clone(),
        arch: r.arch.as_str().to_string(),
        n_params: cell(r.n_params, fmt_si),
        n_active: cell(r.n_params_active, fmt_si),
        tokens: cell(r.tokens, fmt_si),
        flops: cell(r.flops, fmt_pow10),
        lr: cell(r.lr, fmt_num),
        batch: cell(r.batch_size as f64, fmt_num),
        warmup: cell(r.warmup_steps as f64, fmt_num),
        val_loss: opt_cell(r.val_loss),
        val_bpb: opt_cell(r.val_bpb),
        steps: cell(r.steps as f64, |v| format!("{v}")),
        wall: cell(r.wall_s, |v| format!("{v:.0} s")),
    };
    let mut sorted: Vec<&codescale_core::ResultRow> = results.iter().collect();
    sorted.sort_by(|a, b| {
        group_of(a).cmp(&group_of(b)).then(a.n_params.total_cmp(&b.n_params)).then(a.tokens.total_cmp(&b.tokens))
    });
    let trials = sorted.iter().map(|r| trial_row(r)).collect();
    let unfinished = sorted.iter().filter(|r| r.status != Status::Done).map(|r| trial_row(r)).collect();
    (trials, unfinished)
}

/// Why a group has no law, without the group's name: the fitter's messages begin with it, and
/// the report already names the group.
pub(crate) fn unfitted_reason<'a>(group: &str, message: &'a str) -> &'a str {
    message.strip_prefix(group).and_then(|m| m.strip_prefix(": ")).unwrap_or(message)
}

/// Finished first, then the ways a trial can fall short, then whatever else a newer lab writes.
fn status_order(counts: BTreeMap<String, usize>) -> Vec<Count> {
    const ORDER: [&str; 6] = ["done", "running", "pending", "pruned", "diverged", "failed"];
    let mut v: Vec<Count> = counts.into_iter().map(|(status, n)| Count { status, n }).collect();
    v.sort_by_key(|c| ORDER.iter().position(|s| *s == c.status).unwrap_or(ORDER.len()));
    v
}

fn law_rows(g: &GroupFit, laws: &mut Vec<LawRow>, plans: &mut Vec<PlanRow>, headline: &mut Vec<String>) {
    let Some(l) = &g.law else { return };
    let alloc = g.allocation.as_ref();
    let u = &l.unidentified;
    laws.push(LawRow {
        group: g.group.clone(),
        n_points: g.n_points,
        form: l.form.name().into(),
        formula: l.form.formula().into(),
        law_choice: g.law_choice.clone().unwrap_or_else(|| "Chinchilla (a fit from before forms were chosen)".into()),
        candidates: g
            .candidates
            .iter()
            .map(|c| {
                format!(
                    "{}{} (Huber {}): out-of-sample {} over {} split(s), in-sample RMSE ln L {}",
                    if c.chosen { "→ " } else { "" },
                    c.form.name(),
                    c.huber,
                    c.out_of_sample.map_or("–".into(), |x| fmt_pct(100.0 * x)),
                    c.splits,
                    c.rmse_log.map_or("–".into(), fmt_num)
                )
            })
            .collect(),
        alpha_n: param(&l.alpha_n, fmt_num, "α_N", u),
        alpha_d: param(&l.alpha_d, fmt_num, "α_D", u),
        l_inf: param(&l.l_inf, fmt_num, "L_inf", u),
        n_c: est(&l.n_c, fmt_big),
        d_c: est(&l.d_c, fmt_big),
        a_exp: alloc.map(|a| est(&a.a, fmt_num)),
        b_exp: alloc.map(|a| est(&a.b, fmt_num)),
        rmse_log: fmt_num(l.rmse_log),
        additivity: g.additivity.map_or("–".into(), |a| match a.p_value {
            Some(_) if a.rejected() => "no".into(),
            Some(_) => "yes".into(),
            None => "untested".into(),
        }),
        additivity_p: g.additivity.and_then(|a| a.p_value).map_or_else(|| "one seed".into(), |p| format!("p = {}", fmt_num(p))),
        additivity_detail: g.additivity.map_or(String::new(), |a| match a.noise_floor {
            Some(floor) => format!("the configurations miss the best free surface f(N) + g(D) by {} RMS where seed noise explains {}", fmt_pct(100.0 * a.misfit), fmt_pct(100.0 * floor)),
            None => format!("the configurations miss the best free surface f(N) + g(D) by {} RMS; without seeds noise and interaction cannot be told apart", fmt_pct(100.0 * a.misfit)),
        }),
        not_additive: g.additivity.is_some_and(|a| a.rejected()),
        detail: format!(
            "E = {}, A = {}, B = {}, α = {}, β = {}; Huber {}, {} of {} starts converged, {} bootstrap resamples",
            fmt_num(l.e.value),
            fmt_big(l.a.value),
            fmt_big(l.b.value),
            fmt_num(l.alpha.value),
            fmt_num(l.beta.value),
            fmt_big(l.huber),
            l.converged_starts,
            l.starts,
            l.bootstrap_resamples
        ),
    });
    let Some(a) = alloc else { return };
    let interval = |e: &Estimate| match (e.lo, e.hi) {
        (Some(lo), Some(hi)) => format!(" [{} – {}]", fmt_si(lo), fmt_si(hi)),
        _ => String::new(),
    };
    let sentence = |b: &codescale_fit::BudgetPlan| {
        let plan = format!(
            "train {}{} parameters on {}{} tokens",
            fmt_si(b.n_opt.value),
            interval(&b.n_opt),
            fmt_si(b.d_opt.value),
            interval(&b.d_opt)
        );
        if b.extrapolated {
            format!(
                "For C = {} FLOPs, {plan} — extrapolated: {}× the largest fitted trial's compute.",
                fmt_pow10(b.flops),
                fmt_num(b.flops / g.max_flops)
            )
        } else {
            format!("For C = {} FLOPs, {plan}.", fmt_pow10(b.flops))
        }
    };
    for b in &a.budgets {
        plans.push(PlanRow {
            group: g.group.clone(),
            flops: fmt_pow10(b.flops),
            n_opt: est(&b.n_opt, fmt_si),
            d_opt: est(&b.d_opt, fmt_si),
            tokens_per_param: fmt_num(b.tokens_per_param.value),
            loss: est(&b.loss, |v| format!("{v:.3}")),
            sentence: sentence(b),
        });
    }
    // The headline speaks for the largest budget the data supports, never beyond it.
    let trusted = a.budgets.iter().filter(|b| !b.extrapolated).max_by(|x, y| x.flops.total_cmp(&y.flops));
    let flags =
        if u.is_empty() { String::new() } else { format!(" ({} not identified by these points)", u.join(", ")) };
    match trusted {
        Some(b) => headline.push(format!(
            "{}: for C = {} FLOPs, train {} parameters on {} tokens ({} tokens per parameter), predicted loss {:.3}{flags}.",
            g.group,
            fmt_pow10(b.flops),
            fmt_si(b.n_opt.value),
            fmt_si(b.d_opt.value),
            fmt_num(b.tokens_per_param.value),
            b.loss.value
        )),
        None => headline.push(format!("{}: no budget lies within the trust range of this ladder's compute; every allocation below is extrapolated{flags}.", g.group)),
    }
}

/// Distinct values across trials, most common first, with counts when they differ: a sweep run
/// from one commit on one machine reads as one line.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut m: BTreeMap<&str, usize> = BTreeMap::new();
    for v in values.filter(|v| !v.is_empty()) {
        *m.entry(v).or_default() += 1;
    }
    if m.is_empty() {
        return "not recorded".into();
    }
    if m.len() == 1 {
        return m.into_keys().next().unwrap_or_default().to_string();
    }
    let mut v: Vec<(&str, usize)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.iter().map(|(s, n)| format!("{s} ({n} trials)")).collect::<Vec<_>>().join("; ")
}

fn provenance(input: &ReportInput) -> (Vec<Kv>, Vec<ProvRow>) {
    let p = &input.provenance;
    if p.is_empty() {
        return (
            vec![Kv { key: "provenance".into(), value: "no trial records were given to the report".into() }],
            Vec::new(),
        );
    }
    let commits: Vec<String> = p
        .iter()
        .map(|(_, p)| if p.git_dirty { format!("{} (dirty)", p.git_commit) } else { p.git_commit.clone() })
        .collect();
    let devices: Vec<String> = p
        .iter()
        .map(|(_, p)| if p.device.is_empty() { p.backend.clone() } else { format!("{} on {}", p.backend, p.device) })
        .collect();
    let started = p.iter().map(|(_, p)| p.started.as_str()).filter(|s| !s.is_empty()).min().unwrap_or("");
    let finished = p.iter().filter_map(|(_, p)| p.finished.as_deref()).filter(|s| !s.is_empty()).max().unwrap_or("");
    let kv = |k: &str, v: String| Kv { key: k.into(), value: v };
    let summary = vec![
        kv("codescale version", distinct(p.iter().map(|(_, p)| p.codescale_version.as_str()))),
        kv("git commit", distinct(commits.iter().map(String::as_str))),
        kv("rustc", distinct(p.iter().map(|(_, p)| p.rustc.as_str()))),
        kv("corpus hash", distinct(p.iter().map(|(_, p)| p.corpus_hash.as_str()))),
        kv("tokenizer hash", distinct(p.iter().map(|(_, p)| p.tokenizer_hash.as_str()))),
        kv("backend / device", distinct(devices.iter().map(String::as_str))),
        kv("machine", distinct(p.iter().map(|(_, p)| p.host.as_str()))),
        kv("first start", if started.is_empty() { "not recorded".into() } else { started.to_string() }),
        kv("last finish", if finished.is_empty() { "not recorded".into() } else { finished.to_string() }),
        kv("trials with records", p.len().to_string()),
    ];
    let rows = p
        .iter()
        .map(|(id, p)| ProvRow {
            id: id.clone(),
            host: p.host.clone(),
            backend: format!("{} {} ×{}", p.backend, p.device, p.threads),
            started: p.started.clone(),
            finished: p.finished.clone().unwrap_or_else(|| "–".into()),
            commit: p.git_commit.chars().take(12).collect::<String>() + if p.git_dirty { "+dirty" } else { "" },
        })
        .collect();
    (summary, rows)
}
