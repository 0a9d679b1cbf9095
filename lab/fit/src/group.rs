//! Filtering points, grouping them, and running every analysis on one group.

use crate::Skipped;
use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::additivity::{additivity, Measurement};
use crate::allocation::{allocation_with_intervals, default_budgets};
use crate::approach3::{chinchilla_grid, fit_grid, fit_noise_matched, Data, Law};
use crate::bootstrap::{bootstrap_law, clusters, derive_seed, estimate};
use crate::extrapolate::{extrapolate, rolling};
use crate::forms::{self, Form};
use crate::hyper::{hyper_laws, HyperInput};
use crate::isoflop::{isoflop, line, IsoPoint};
use crate::schema::{Estimate, Excluded, FitPoint, GroupFit, LawFit, Replicates, TargetCheck};
use crate::select;
use crate::{distinct, FitOptions, Point};
use codescale_core::Status;

/// Free parameters of the law, hence the fewest points that can pin it down.
pub const MIN_POINTS: usize = 5;
pub const POOLED: &str = "pooled";

/// Why a point cannot be fitted, if it cannot.
fn exclusion(p: &Point) -> Option<String> {
    let bad = |what: &str, x: f64| {
        if x.is_nan() {
            Some(format!("{what} is NaN"))
        } else if !x.is_finite() {
            Some(format!("{what} is infinite"))
        } else if x <= 0.0 {
            Some(format!("{what} = {x} is not positive"))
        } else {
            None
        }
    };
    if p.status != Status::Done {
        return Some(format!("status is {:?}, not \"done\"", p.status.as_str()));
    }
    bad("loss", p.loss).or_else(|| bad("N", p.n)).or_else(|| bad("D", p.d))
}

pub(crate) fn fit_all(points: &[Point], opts: &FitOptions) -> (Vec<GroupFit>, Vec<Excluded>) {
    let mut excluded = vec![];
    let mut kept: Vec<&Point> = vec![];
    for p in points {
        match exclusion(p) {
            Some(reason) => excluded.push(Excluded { id: p.id.clone(), group: p.group.clone(), reason }),
            None => kept.push(p),
        }
    }
    let mut names: Vec<&str> = points.iter().map(|p| p.group.as_str()).collect();
    names.sort();
    names.dedup();
    let in_group = |g: &str, target: bool| {
        kept.iter().copied().filter(|p| p.group == g && p.target == target && !p.intermediate).collect::<Vec<&Point>>()
    };
    let mut jobs: Vec<(String, Vec<&Point>, Vec<&Point>)> =
        names.iter().map(|&g| (g.to_string(), in_group(g, false), in_group(g, true))).collect();
    // Languages pooled per architecture: dense and mixture-of-experts models follow different
    // laws, so pooling them would fit neither.
    let mut archs: Vec<&str> = names.iter().map(|g| arch_of(g)).collect();
    archs.sort();
    archs.dedup();
    for arch in archs.into_iter().filter(|_| opts.pool) {
        let of_arch = |g: &str| arch_of(g) == arch;
        if jobs.iter().filter(|(g, pts, _)| of_arch(g) && !pts.is_empty()).count() > 1 {
            let name = if arch.is_empty() { POOLED.to_string() } else { format!("{POOLED}/{arch}") };
            jobs.push((
                name,
                kept.iter().copied().filter(|p| !p.target && !p.intermediate && of_arch(&p.group)).collect(),
                vec![],
            ));
        }
    }
    let mut groups: Vec<GroupFit> = jobs.par_iter().map(|(g, pts, targets)| fit_group(g, pts, targets, opts)).collect();
    for g in &mut groups {
        g.intermediate = kept.iter().filter(|p| p.intermediate && p.group == g.group).count();
    }
    (groups, excluded)
}

/// The architecture part of a group name (`python/moe` → `moe`, `python` → ``).
fn arch_of(group: &str) -> &str {
    group.split_once('/').map_or("", |(_, arch)| arch)
}

/// Why the law cannot be fitted to these points at all.
fn too_few(group: &str, pts: &[&Point]) -> Option<String> {
    let ns = distinct(pts.iter().map(|p| p.n));
    let ds = distinct(pts.iter().map(|p| p.d));
    if ns.len() == 1 && ds.len() >= 3 && pts.len() > forms::Form::Data.n_params() {
        // One size on several budgets: a curve or a data ladder; the D-only form can fit it.
        None
    } else if pts.len() < MIN_POINTS {
        Some(format!("{group}: {} points, {MIN_POINTS} needed", pts.len()))
    } else if ns.len() < 2 {
        Some(format!("{group}: a single model size (N = {:.3e}); 2 or more needed to fit A and α", ns[0]))
    } else if ds.len() < 2 {
        Some(format!("{group}: a single data size (D = {:.3e}); 2 or more needed to fit B and β", ds[0]))
    } else {
        None
    }
}

/// Fits the law to `pts` and checks it against `targets` (held out: predicted, never fitted).
pub(crate) fn fit_group(group: &str, all: &[&Point], targets: &[&Point], opts: &FitOptions) -> GroupFit {
    let seed = derive_seed(opts.seed, group);
    let pts = &best_configurations(all);
    let mut out = GroupFit {
        group: group.to_string(),
        n_points: pts.len(),
        message: too_few(group, pts),
        warnings: vec![],
        law: None,
        allocation: None,
        isoflop: None,
        hyper: None,
        lr_rule: None,
        extrapolation: None,
        rolling: vec![],
        targets: vec![],
        tuned_out: all.len() - pts.len(),
        replicates: replicates(pts),
        // Pooled languages differ by more than any interaction: the check would only find that.
        additivity: if crate::results::language_of(group) == POOLED { None } else { additivity(&measurements(pts)) },
        max_flops: pts.iter().map(|p| compute(p)).fold(0.0, f64::max),
        points: pts.iter().map(|p| FitPoint { n: p.n, d: p.d, loss: p.loss, predicted: None }).collect(),
        candidates: vec![],
        law_choice: None,
        intermediate: 0,
        isoflop_skipped: None,
        curve_law: None,
        curve_law_skipped: None,
        task: None,
        task_skipped: None,
    };
    if out.message.is_none() {
        match fit_law(pts, targets, opts, seed, out.max_flops) {
            Ok(stage) => stage.apply(&mut out),
            Err(why) => out.message = Some(format!("{group}: {why}")),
        }
    }
    if let Some(a) = out.additivity.filter(|a| a.rejected()) {
        // Kaplan's form is not additive: it can express the interaction the check found.
        let consequence = if out.law.as_ref().is_some_and(|l| l.form.has_interaction()) {
            "the chosen (Kaplan) form has an N × D interaction, though not necessarily this one"
        } else {
            "the law's form cannot express that N × D interaction, and every extrapolation carries it"
        };
        out.warnings.push(format!(
            "the loss is not additive in N and D here (lack-of-fit p = {:.2e}): the configurations miss every surface f(N) + g(D) by {:.2} % RMS where seed noise explains {:.2} %; {consequence}",
            a.p_value.unwrap_or(f64::NAN),
            100.0 * a.misfit,
            100.0 * a.noise_floor.unwrap_or(f64::NAN)
        ));
    }
    if all.iter().any(|p| p.task.is_some()) {
        match crate::task::fit(pts, targets, &out.targets, opts.bootstrap, derive_seed(seed, "task"), opts.confidence) {
            Ok(law) => out.task = Some(law),
            Err(why) => out.task_skipped = Some(why.0),
        }
    }
    let iso: Vec<IsoPoint> = pts.iter().map(|p| IsoPoint { n: p.n, d: p.d, loss: p.loss, flops: p.flops }).collect();
    let mut notes = vec![];
    // Most sweeps are not IsoFLOP sweeps: the reason for a missing IsoFLOP fit is recorded, not
    // raised as a warning.
    match isoflop(&iso, opts.bootstrap, derive_seed(seed, "isoflop"), opts.confidence, &mut notes) {
        Ok(fit) => {
            out.isoflop = Some(fit);
            out.warnings.append(&mut notes);
        }
        Err(why) => out.isoflop_skipped = Some(why.0),
    }
    let hp: Vec<HyperInput> = all
        .iter()
        .filter_map(|p| {
            let (lr, bt) =
                (p.lr.filter(|x| x.is_finite() && *x > 0.0)?, p.batch_tokens.filter(|x| x.is_finite() && *x > 0.0)?);
            Some(HyperInput {
                n: p.n,
                d: p.d,
                flops: p.flops,
                lr,
                batch_tokens: bt,
                warmup_steps: p.warmup_steps.unwrap_or(0.0),
                loss: p.loss,
            })
        })
        .collect();
    let mut notes = vec![];
    out.hyper = hyper_laws(&hp, opts.bootstrap, derive_seed(seed, "hyper"), opts.confidence, &mut notes);
    if out.hyper.is_some() {
        out.warnings.append(&mut notes);
    }
    let mut notes = vec![];
    out.lr_rule = crate::lr_rule::lr_rule(&hp, &mut notes);
    if out.lr_rule.is_some() {
        out.warnings.append(&mut notes);
    }
    out
}

/// The points a law is fitted to. Where several configurations (learning rate, batch size,
/// warmup, …) were trained at one (N, D) of a language, only the best one's points are kept
/// (lowest mean loss over its replicates): a law describes a well-tuned model, so a sweep that
/// searches the rate at every size is fitted at each size's best rate, and the other
/// configurations inform only the hyperparameter laws.
fn best_configurations<'a>(pts: &[&'a Point]) -> Vec<&'a Point> {
    // A configuration: the sweep's config id, or for a table of your own its LR, batch and warmup.
    let config = |p: &Point| {
        p.config
            .clone()
            .unwrap_or_else(|| format!("{:?}", [p.lr, p.batch_tokens, p.warmup_steps].map(|x| x.map(f64::to_bits))))
    };
    let cell = |p: &Point| (p.group.clone(), p.n.to_bits(), p.d.to_bits());
    let mut sums: BTreeMap<_, (f64, usize)> = BTreeMap::new();
    for p in pts {
        let s = sums.entry((cell(p), config(p))).or_default();
        *s = (s.0 + p.loss, s.1 + 1);
    }
    let mut best: BTreeMap<_, (f64, String)> = BTreeMap::new();
    for ((cell, config), (sum, count)) in sums {
        let mean = sum / count as f64;
        if best.get(&cell).is_none_or(|b| mean < b.0) {
            best.insert(cell, (mean, config));
        }
    }
    pts.iter().copied().filter(|p| best[&cell(p)].1 == config(p)).collect()
}

/// The points as the additivity check reads them.
fn measurements<'a>(pts: &[&'a Point]) -> Vec<Measurement<'a>> {
    pts.iter()
        .map(|p| Measurement { n: p.n, d: p.d, loss: p.loss, config: p.config_key(), trunk: p.trunk.as_deref() })
        .collect()
}

/// Training compute of a point: recorded, or 6·N·D.
pub(crate) fn compute(p: &Point) -> f64 {
    p.flops.filter(|f| f.is_finite() && *f > 0.0).unwrap_or(6.0 * p.n * p.d)
}

/// The spread of every configuration measured more than once.
fn replicates(pts: &[&Point]) -> Vec<Replicates> {
    let keys: Vec<Option<&str>> = pts.iter().map(|p| p.config.as_deref()).collect();
    clusters(&keys)
        .into_iter()
        .filter(|m| m.len() > 1 && keys[m[0]].is_some())
        .map(|m| {
            let losses: Vec<f64> = m.iter().map(|&i| pts[i].loss).collect();
            let k = losses.len() as f64;
            let mean = losses.iter().sum::<f64>() / k;
            let sd = (losses.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (k - 1.0)).sqrt();
            Replicates {
                n: pts[m[0]].n,
                d: pts[m[0]].d,
                count: m.len(),
                mean,
                sd,
                min: losses.iter().copied().fold(f64::INFINITY, f64::min),
                max: losses.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            }
        })
        .collect()
}

/// Weights from the points' evaluation precision (see [`FitOptions::weight_by_se`]).
fn precision_weights(pts: &[&Point]) -> Vec<f64> {
    let rel: Vec<Option<f64>> =
        pts.iter().map(|p| p.loss_se.filter(|s| s.is_finite() && *s > 0.0).map(|s| s / p.loss)).collect();
    let mut known: Vec<f64> = rel.iter().flatten().copied().collect();
    if known.is_empty() {
        return vec![1.0; pts.len()];
    }
    known.sort_by(f64::total_cmp);
    let median = known[known.len() / 2];
    rel.iter().map(|r| r.map_or(1.0, |r| (median / r).powi(2).clamp(0.1, 10.0))).collect()
}

/// A fitted form with its bootstrap draws, whichever fitter made it.
struct Fitted {
    form: Form,
    params: Vec<f64>,
    boot: Vec<Vec<f64>>,
    resamples: usize,
    failed: usize,
    huber: f64,
    delta: f64,
    rmse_log: f64,
    starts: usize,
    converged_starts: usize,
    converged: bool,
}

/// Chinchilla through Approach 3's large grid (as before forms were chosen, so its fits are
/// unchanged); every other form through [`forms`]. Replicates of one configuration are resampled
/// together: they are repeated measurements of one point of the law, not independent points.
fn fit_form(
    form: Form,
    delta: Option<f64>,
    triples: &[(f64, f64, f64)],
    weights: Option<&[f64]>,
    members: &[Vec<usize>],
    opts: &FitOptions,
    seed: u64,
) -> Option<Fitted> {
    let seed = derive_seed(seed, "law");
    if form == Form::Chinchilla {
        let mut data = Data::new(triples);
        if let Some(w) = weights {
            data = data.with_weights(w);
        }
        let grid = chinchilla_grid();
        let (fit, delta) = match delta {
            Some(delta) => fit_grid(&data, delta, &grid).map(|fit| (fit, delta)),
            None => fit_noise_matched(&data, &grid),
        }?;
        let boot = bootstrap_law(&data, &fit, delta, opts.bootstrap, seed, members);
        let as_params = |l: &Law| vec![l.e, l.a, l.b, l.alpha, l.beta];
        return Some(Fitted {
            form,
            params: as_params(&fit.law),
            boot: boot.laws.iter().map(as_params).collect(),
            resamples: boot.resamples,
            failed: boot.failed,
            huber: fit.huber,
            delta,
            rmse_log: fit.rmse_log,
            starts: fit.starts,
            converged_starts: fit.converged_starts,
            converged: fit.converged,
        });
    }
    let mut points = forms::Points::new(triples);
    if let Some(w) = weights {
        points = points.with_weights(w);
    }
    let (fit, delta) = forms::fit_at(&points, form, delta)?;
    let boot = crate::bootstrap::bootstrap_form(&points, &fit, delta, opts.bootstrap, seed, members);
    Some(Fitted {
        form,
        failed: opts.bootstrap - boot.len(),
        resamples: opts.bootstrap,
        boot,
        huber: fit.huber,
        delta,
        rmse_log: fit.rmse_log,
        starts: fit.starts,
        converged_starts: fit.converged_starts,
        converged: fit.converged,
        params: fit.params,
    })
}

/// The additive view [E, A, B, α, β] of a form's parameters (see [`LawFit`]).
fn additive_view(form: Form, p: &[f64]) -> [f64; 5] {
    match form {
        Form::Chinchilla => [p[0], p[1], p[2], p[3], p[4]],
        Form::Gadre => [p[0], p[1], p[2], p[3], p[3]],
        Form::Kaplan => [p[0], p[1].powf(p[3]), p[2].powf(p[4]), p[3], p[4]],
        Form::Kaplan2020 => [0.0, p[0].powf(p[2]), p[1].powf(p[3]), p[2], p[3]],
        Form::Data => [p[0], 0.0, p[1], 0.0, p[2]],
    }
}

/// What the law stage gives a group ([`fit_law`]): the candidate forms and why one was chosen,
/// then, if it could be fitted, the law and what follows from it.
struct LawStage {
    candidates: Vec<select::Candidate>,
    law_choice: String,
    fitted: Result<FittedLaw, Skipped>,
}

/// A chosen form fitted, with what the group's fit reports of it.
struct FittedLaw {
    law: LawFit,
    allocation: Option<crate::schema::Allocation>,
    /// The law's prediction at each fitted point.
    predicted: Vec<f64>,
    warnings: Vec<String>,
    extrapolation: Option<crate::schema::Extrapolation>,
    rolling: Vec<crate::schema::Extrapolation>,
    targets: Vec<TargetCheck>,
}

impl LawStage {
    fn apply(self, out: &mut GroupFit) {
        out.candidates = self.candidates;
        out.law_choice = Some(self.law_choice);
        match self.fitted {
            Err(why) => out.message = Some(format!("{}: {why}", out.group)),
            Ok(f) => {
                for (fp, predicted) in out.points.iter_mut().zip(f.predicted) {
                    fp.predicted = Some(predicted);
                }
                out.law = Some(f.law);
                out.allocation = f.allocation;
                out.warnings.extend(f.warnings);
                out.extrapolation = f.extrapolation;
                out.rolling = f.rolling;
                out.targets = f.targets;
            }
        }
    }
}

/// Chooses the form (by out-of-sample error unless one is asked for), fits it with bootstrap
/// intervals, and checks it against `targets` (held out: predicted, never fitted): select →
/// fit → estimates → allocation → checks → targets, each step a function of the one before.
fn fit_law(
    pts: &[&Point],
    targets: &[&Point],
    opts: &FitOptions,
    seed: u64,
    max_flops: f64,
) -> Result<LawStage, Skipped> {
    let triples: Vec<(f64, f64, f64)> = pts.iter().map(|p| (p.n, p.d, p.loss)).collect();
    let selection = select::choose(&triples, opts.law, opts.delta)?;
    let weights = opts.weight_by_se.then(|| precision_weights(pts));
    let configs: Vec<&str> = pts.iter().map(|p| p.config_key()).collect();
    let fitted =
        fit_form(selection.form, selection.delta, &triples, weights.as_deref(), &clusters(&configs), opts, seed)
            .ok_or_else(|| Skipped("the objective was not finite from any start".into()))
            .map(|fitted| {
                let law = law_estimates(&fitted, opts.confidence);
                let mut warnings = fit_warnings(&fitted);
                warnings.extend(identifiability(pts, &law, opts.confidence));
                let (extrapolation, rolling) = out_of_sample_checks(&triples, &fitted, opts, &mut warnings);
                FittedLaw {
                    allocation: allocation_of(&fitted, &law, opts, max_flops),
                    predicted: triples.iter().map(|&(n, d, _)| fitted.form.predict(&fitted.params, n, d)).collect(),
                    targets: predict_targets(&fitted, &triples, targets, max_flops, opts.confidence, seed)
                        .into_iter()
                        .map(|t| TargetCheck {
                            form_spread: select::form_spread(&selection.candidates, t.n, t.d, t.predicted.value),
                            ..t
                        })
                        .collect(),
                    law,
                    warnings,
                    extrapolation,
                    rolling,
                }
            });
    Ok(LawStage { candidates: selection.candidates, law_choice: selection.reason, fitted })
}

/// What went wrong in the fit without stopping it: no start converged, many resamples failed.
fn fit_warnings(fitted: &Fitted) -> Vec<String> {
    let mut warnings = vec![];
    if !fitted.converged {
        warnings.push(format!("none of the {} starts converged; the best end point is reported", fitted.starts));
    }
    if fitted.failed * 20 > fitted.resamples {
        warnings.push(format!(
            "{} of {} bootstrap resamples did not converge and were left out",
            fitted.failed, fitted.resamples
        ));
    }
    warnings
}

/// The law's estimates with bootstrap intervals: its additive view (E, A, B, α, β), its
/// headline (α_N, α_D, L_inf) and scales (N_c, D_c), and which headline values the points
/// cannot pin down.
fn law_estimates(fitted: &Fitted, confidence: f64) -> LawFit {
    let (form, p, boot) = (fitted.form, &fitted.params, &fitted.boot);
    let est = |f: &dyn Fn(&[f64]) -> Option<f64>| match f(p) {
        Some(v) => estimate(v, &boot.iter().filter_map(|b| f(b)).collect::<Vec<f64>>(), confidence),
        None => Estimate { value: f64::NAN, lo: None, hi: None },
    };
    let view = |k: usize| move |q: &[f64]| Some(additive_view(form, q)[k]);
    let head = |k: usize| move |q: &[f64]| form.headline(q)[k];
    let scale = |k: usize| move |q: &[f64]| form.scales(q)[k];
    let mut law = LawFit {
        form,
        params: p.clone(),
        // Chinchilla's draws are `samples`, as in files from before forms were chosen.
        param_samples: if form == Form::Chinchilla {
            vec![]
        } else {
            boot.iter().filter(|b| b.iter().all(|x| x.is_finite())).take(crate::schema::BAND_SAMPLES).cloned().collect()
        },
        e: est(&view(0)),
        a: est(&view(1)),
        b: est(&view(2)),
        alpha: est(&view(3)),
        beta: est(&view(4)),
        alpha_n: est(&head(0)),
        alpha_d: est(&head(1)),
        l_inf: est(&head(2)),
        n_c: est(&scale(0)),
        d_c: est(&scale(1)),
        huber: fitted.huber,
        huber_delta: fitted.delta,
        rmse_log: fitted.rmse_log,
        starts: fitted.starts,
        converged_starts: fitted.converged_starts,
        bootstrap_resamples: boot.len(),
        unidentified: vec![],
        // JSON has no infinity: a law that overflowed is left out of the band.
        samples: if form == Form::Chinchilla {
            boot.iter()
                .map(|b| Law { e: b[0], a: b[1], b: b[2], alpha: b[3], beta: b[4] })
                .filter(|l| [l.e, l.a, l.b, l.alpha, l.beta].iter().all(|x| x.is_finite()))
                .take(crate::schema::BAND_SAMPLES)
                .collect()
        } else {
            vec![]
        },
    };
    law.unidentified = [("α_N", &law.alpha_n), ("α_D", &law.alpha_d), ("L_inf", &law.l_inf)]
        .into_iter()
        .filter(|(_, e)| e.unidentified())
        .map(|(name, _)| name.to_string())
        .collect();
    law
}

/// Compute-optimal allocation at the asked budgets (each marked extrapolated beyond the trust
/// range); none for a form without N.
fn allocation_of(
    fitted: &Fitted,
    law: &LawFit,
    opts: &FitOptions,
    max_flops: f64,
) -> Option<crate::schema::Allocation> {
    let (form, boot) = (fitted.form, &fitted.boot);
    let budgets = if opts.budgets.is_empty() { default_budgets() } else { opts.budgets.clone() };
    let mut allocation = match form {
        Form::Chinchilla | Form::Gadre => {
            let laws: Vec<Law> = boot
                .iter()
                .map(|b| additive_view(form, b))
                .map(|v| Law { e: v[0], a: v[1], b: v[2], alpha: v[3], beta: v[4] })
                .collect();
            Some(allocation_with_intervals(&law.law(), &laws, &budgets, opts.confidence))
        }
        Form::Kaplan | Form::Kaplan2020 => {
            Some(crate::allocation::numeric(form, &fitted.params, boot, &budgets, opts.confidence))
        }
        Form::Data => None,
    }?;
    for b in &mut allocation.budgets {
        b.extrapolated = b.flops > opts.trust_factor * max_flops;
    }
    Some(allocation)
}

/// The extrapolation check (fit the smaller sizes, predict the largest) and the rolling
/// splits, when asked for and the form has N; a check that cannot run says why in `warnings`.
fn out_of_sample_checks(
    triples: &[(f64, f64, f64)],
    fitted: &Fitted,
    opts: &FitOptions,
    warnings: &mut Vec<String>,
) -> (Option<crate::schema::Extrapolation>, Vec<crate::schema::Extrapolation>) {
    if !(opts.checks && fitted.form.has_n()) {
        return (None, vec![]);
    }
    let extrapolation = match extrapolate(triples, fitted.form, fitted.delta) {
        Ok(x) => Some(x),
        Err(why) => {
            warnings.push(format!("extrapolation check skipped: {why}"));
            None
        }
    };
    (extrapolation, rolling(triples, fitted.form, fitted.delta))
}

/// Each held-out target predicted with its prediction interval (bootstrap laws and the fitted
/// points' residuals) and compared with its measured loss.
fn predict_targets(
    fitted: &Fitted,
    triples: &[(f64, f64, f64)],
    targets: &[&Point],
    max_flops: f64,
    confidence: f64,
    seed: u64,
) -> Vec<TargetCheck> {
    let (form, p, boot) = (fitted.form, &fitted.params, &fitted.boot);
    let residuals: Vec<f64> = triples.iter().map(|&(n, d, l)| l.ln() - form.predict(p, n, d).ln()).collect();
    check_targets(targets, max_flops, |t| {
        let preds: Vec<f64> = boot.iter().map(|b| form.predict(b, t.n, t.d)).collect();
        crate::predict::interval(
            form.predict(p, t.n, t.d),
            &preds,
            &residuals,
            form.n_params(),
            confidence,
            derive_seed(seed, &t.id),
        )
    })
}

/// Held-out targets against a law's predictions (`predict` gives one with its interval). A
/// target's replicates (other seeds) measure one configuration: it is checked once, on their
/// mean loss.
pub(crate) fn check_targets(
    targets: &[&Point],
    max_flops: f64,
    predict: impl Fn(&Point) -> Estimate,
) -> Vec<TargetCheck> {
    let keys: Vec<&str> = targets.iter().map(|t| t.config_key()).collect();
    clusters(&keys)
        .into_iter()
        .map(|runs| {
            let t = targets[runs[0]];
            let measured = runs.iter().map(|&i| targets[i].loss).sum::<f64>() / runs.len() as f64;
            let predicted = predict(t);
            TargetCheck {
                id: t.id.clone(),
                n: t.n,
                d: t.d,
                compute_ratio: compute(t) / max_flops,
                measured,
                runs: runs.len(),
                covered: predicted.covers(measured),
                error: measured / predicted.value - 1.0,
                predicted,
                form_spread: None,
            }
        })
        .collect()
}

/// Warnings for parameters these points cannot pin down.
fn identifiability(pts: &[&Point], law: &LawFit, confidence: f64) -> Vec<String> {
    let mut w = vec![];
    let ln_n: Vec<f64> = pts.iter().map(|p| p.n.ln()).collect();
    let ln_d: Vec<f64> = pts.iter().map(|p| p.d.ln()).collect();
    if let Some((c0, s)) = line(&ln_n, &ln_d) {
        let resid = ln_n.iter().zip(&ln_d).map(|(x, y)| (y - c0 - s * x).powi(2)).sum::<f64>() / pts.len() as f64;
        if resid.sqrt() < 0.01 {
            w.push(format!(
                "D is a fixed power of N (D ∝ N^{s:.2}): the N and D terms are confounded, so α_N, α_D, N_c and D_c are not identifiable"
            ));
        }
    }
    let ns = distinct(pts.iter().map(|p| p.n));
    if ns.iter().all(|&n| distinct(pts.iter().filter(|p| p.n == n).map(|p| p.d)).len() == 1) {
        w.push("each model size was trained on a single D: α_N and α_D are separated only by how D/N varies".into());
    }
    let min_loss = pts.iter().map(|p| p.loss).fold(f64::INFINITY, f64::min);
    if law.e.value < 0.2 * min_loss {
        w.push(format!(
            "every point is far above the fitted irreducible loss (L_inf = {:.3}, lowest loss {:.3}): L_inf trades off against the exponents",
            law.e.value, min_loss
        ));
    }
    let pct = confidence * 100.0;
    let wide = |name: &str, e: &Estimate| {
        e.unidentified().then(|| {
            format!(
                "{name}: the {pct:.0} % interval [{:.3e}, {:.3e}] is wider than the estimate {:.3e}; not identifiable",
                e.lo.unwrap_or(f64::NAN),
                e.hi.unwrap_or(f64::NAN),
                e.value
            )
        })
    };
    w.extend(wide("α_N", &law.alpha_n));
    w.extend(wide("α_D", &law.alpha_d));
    w.extend(wide("L_inf", &law.l_inf));
    let spread = |name: &str, e: &Estimate| match (e.lo, e.hi) {
        (Some(lo), Some(hi)) if lo > 0.0 && hi / lo > 1e3 => {
            Some(format!("{name}: the {pct:.0} % interval [{lo:.3e}, {hi:.3e}] spans more than three decades"))
        }
        _ => None,
    };
    w.extend(spread("A", &law.a));
    w.extend(spread("B", &law.b));
    for (name, x) in [("α_N", law.alpha_n.value), ("α_D", law.alpha_d.value)] {
        if !(0.02..=3.0).contains(&x) {
            w.push(format!("{name} = {x:.3} is outside 0.02–3: the fit probably ran to a boundary"));
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(id: &str, status: Status, n: f64, d: f64, loss: f64) -> Point {
        Point { id: id.into(), group: "go".into(), status, n, d, loss, ..Default::default() }
    }

    #[test]
    fn exclusion_reasons() {
        assert!(exclusion(&point("a", Status::Done, 1e6, 1e8, 3.0)).is_none());
        assert!(exclusion(&point("a", Status::Failed, 1e6, 1e8, 3.0)).unwrap().contains("failed"));
        assert_eq!(exclusion(&point("a", Status::Done, 1e6, 1e8, f64::NAN)).unwrap(), "loss is NaN");
        assert!(exclusion(&point("a", Status::Done, 0.0, 1e8, 3.0)).unwrap().contains("N = 0"));
        assert!(exclusion(&point("a", Status::Done, 1e6, f64::INFINITY, 3.0)).unwrap().contains("D is infinite"));
    }
}
